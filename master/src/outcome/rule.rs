//! `compare --fail-on` rules: the threshold grammar's scope and metric (`arch:arm64/p99`),
//! an operator and a change in percent (`> +5%`). A rule fires on a row whose change satisfies
//! it and is significant (its 95% interval leaves out no change); a row without an interval is
//! judged on its change alone, and says so.

use serde::Serialize;

use crate::scenario::{self, Metric, Op, Scope};

/// What a rule can name besides the threshold metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figure {
    Metric(Metric),
    /// The capacity search's max sustainable throughput.
    Knee,
    /// Cost per million requests.
    CostPerMillion,
}

impl Figure {
    pub fn named(name: &str) -> Result<Figure, String> {
        match name {
            "knee" => Ok(Figure::Knee),
            "cost_per_million" => Ok(Figure::CostPerMillion),
            _ => Metric::named(name)
                .map(Figure::Metric)
                .map_err(|e| format!("{e}, knee, cost_per_million")),
        }
    }

    /// Its name, as rows and rules write it.
    pub fn name(self) -> &'static str {
        match self {
            Figure::Metric(m) => m.name(),
            Figure::Knee => "knee",
            Figure::CostPerMillion => "cost_per_million",
        }
    }
}

/// One parsed `--fail-on` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// As written.
    pub text: String,
    pub scope: Scope,
    pub figure: Figure,
    pub op: Op,
    /// The change, as a fraction (`+5%` is 0.05); for ratios (`5xx_ratio`, `error_ratio`) a
    /// change in percentage points (`+0.5%` is 0.005).
    pub bound: f64,
}

impl Rule {
    /// Parses `[scope/]metric op ±N%`; the error says what was expected.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let bad = |why: String| format!("--fail-on `{text}`: {why}");
        let trimmed = text.trim();
        let split = trimmed
            .find(['<', '>', '=', '!'])
            .ok_or_else(|| bad("expected `METRIC OP CHANGE%`, e.g. \"p99 > +5%\"".to_owned()))?;
        let (key, expr) = trimmed.split_at(split);
        let (scope, name) = scenario::parse_scope(key.trim()).map_err(bad)?;
        let figure = Figure::named(name).map_err(bad)?;
        let (op, rest) = scenario::parse_op(expr).map_err(bad)?;
        let number = rest.trim().strip_suffix('%').ok_or_else(|| {
            bad(format!(
                "`{}`: expected a change in percent, e.g. +5% or -10%",
                rest.trim()
            ))
        })?;
        let bound = number
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| bad(format!("`{number}`: expected a number of percent")))?;
        Ok(Rule {
            text: trimmed.to_owned(),
            scope,
            figure,
            op,
            bound: bound / 100.0,
        })
    }

    /// Whether the rule speaks of a row of `scope` (`arch:NAME` / `target:NAME`, either run's
    /// name) showing `figure`. A rule without a scope speaks of every arch.
    pub fn applies(&self, kind: &str, names: [&str; 2], figure: &str) -> bool {
        if self.figure.name() != figure {
            return false;
        }
        match &self.scope {
            Scope::All => kind == "arch",
            Scope::Arch(a) => kind == "arch" && names.contains(&a.as_str()),
            Scope::Target(t) => kind == "target" && names.contains(&t.as_str()),
        }
    }
}

/// How a rule went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleOutcome {
    pub rule: String,
    /// It found a significant change past its bound: a regression.
    pub fired: bool,
    /// The rows it fired on (`arch:arm64 p99 +12.3%`), or why it could not judge.
    pub detail: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_like_thresholds_with_a_change() {
        let r = Rule::parse("p99 > +5%").unwrap();
        assert_eq!(
            (r.scope.clone(), r.figure, r.op),
            (Scope::All, Figure::Metric(Metric::P99), Op::Gt)
        );
        assert!((r.bound - 0.05).abs() < 1e-12);
        let r = Rule::parse("arch:arm64/rps < -10%").unwrap();
        assert_eq!(r.scope, Scope::Arch("arm64".into()));
        assert!((r.bound + 0.10).abs() < 1e-12);
        assert!(r.applies("arch", ["arm64", "graviton4"], "rps"));
        assert!(!r.applies("arch", ["amd64", "amd64"], "rps"));
        assert!(!r.applies("target", ["arm64", "arm64"], "rps"));
        let r = Rule::parse("target:arm/knee<=-5%").unwrap();
        assert_eq!(
            (r.scope, r.figure),
            (Scope::Target("arm".into()), Figure::Knee)
        );
    }

    #[test]
    fn bad_rules_say_what_was_expected() {
        for (text, says) in [
            ("p99", "expected `METRIC OP CHANGE%`"),
            ("p98 > 5%", "unknown metric `p98`"),
            ("zone:a/p99 > 5%", "unknown scope"),
            ("p99 > 5ms", "change in percent"),
            ("p99 > lots%", "number of percent"),
        ] {
            let err = Rule::parse(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
            assert!(err.contains(text), "{text}: {err}");
        }
    }
}
