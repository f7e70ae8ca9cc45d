//! The threshold grammar, k6-style: `"[scope/]metric" = "op value"`. Scopes: none (all
//! requests), `arch:NAME/`, `target:NAME/`. Latency values take a unit (`500ms`, `1s`) or are
//! milliseconds. Parsed once when the scenario loads; judged on results by `outcome`.

use std::time::Duration;

use super::ThresholdSpec;

#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    All,
    Arch(String),
    Target(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Requests,
    Rps,
    Ratio5xx,
    ErrorRatio,
    Min,
    Mean,
    P50,
    P90,
    P95,
    P99,
    P999,
    Max,
    /// Open-model arrivals that found no free slot (whole run only).
    Dropped,
}

const METRICS: &[(&str, Metric)] = &[
    ("requests", Metric::Requests),
    ("rps", Metric::Rps),
    ("5xx_ratio", Metric::Ratio5xx),
    ("error_ratio", Metric::ErrorRatio),
    ("min", Metric::Min),
    ("mean", Metric::Mean),
    ("p50", Metric::P50),
    ("p90", Metric::P90),
    ("p95", Metric::P95),
    ("p99", Metric::P99),
    ("p999", Metric::P999),
    ("max", Metric::Max),
    ("dropped", Metric::Dropped),
];

impl Metric {
    /// The metric a threshold key names (`p99`, `5xx_ratio`, ...); the error lists them all.
    pub fn named(name: &str) -> Result<Metric, String> {
        METRICS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, m)| m)
            .ok_or_else(|| {
                let names: Vec<&str> = METRICS.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown metric `{name}`; expected one of {}",
                    names.join(", ")
                )
            })
    }

    /// Its name in threshold keys.
    pub fn name(self) -> &'static str {
        METRICS
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("?", |(n, _)| n)
    }

    fn is_latency(self) -> bool {
        !matches!(
            self,
            Metric::Requests
                | Metric::Rps
                | Metric::Ratio5xx
                | Metric::ErrorRatio
                | Metric::Dropped
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub key: String,
    pub expr: String,
    pub scope: Scope,
    pub metric: Metric,
    pub op: Op,
    /// Bound, in milliseconds for latency metrics.
    pub bound: f64,
    /// Stop the run as soon as the cumulative results fail it.
    pub abort_on_fail: bool,
    /// How far into the run the abort check starts.
    pub delay: Duration,
}

impl Threshold {
    /// Parses `key = "expr"` (or the table form); the error says what was expected.
    pub fn parse(key: &str, spec: &ThresholdSpec) -> Result<Threshold, String> {
        let (scope, metric_name) = parse_scope(key)?;
        let metric = Metric::named(metric_name)?;
        if metric == Metric::Dropped && scope != Scope::All {
            return Err(
                "`dropped` is counted for the whole run: use it without an arch: or target: scope"
                    .to_owned(),
            );
        }
        if !spec.abort_on_fail() && !spec.delay().is_zero() {
            return Err("`delay` only applies with abort_on_fail = true".to_owned());
        }
        let expr = spec.expr();
        let (op, rest) = parse_op(expr.trim())?;
        let bound = parse_bound(rest.trim(), metric)?;
        Ok(Threshold {
            key: key.to_owned(),
            expr: format!("{key} {}", expr.trim()),
            scope,
            metric,
            op,
            bound,
            abort_on_fail: spec.abort_on_fail(),
            delay: spec.delay(),
        })
    }
}

/// `arch:NAME/metric`, `target:NAME/metric` or `metric`: the scope and the metric's name.
pub fn parse_scope(key: &str) -> Result<(Scope, &str), String> {
    let Some((scope, metric)) = key.rsplit_once('/') else {
        return Ok((Scope::All, key));
    };
    let scope = if let Some(arch) = scope.strip_prefix("arch:") {
        Scope::Arch(arch.to_owned())
    } else if let Some(target) = scope.strip_prefix("target:") {
        Scope::Target(target.to_owned())
    } else {
        return Err(format!(
            "unknown scope `{scope}`; expected arch:NAME/ or target:NAME/"
        ));
    };
    Ok((scope, metric))
}

/// The comparison operator at the start of `expr`, and what follows it.
pub fn parse_op(expr: &str) -> Result<(Op, &str), String> {
    // Two-character operators first, so `<=` is not read as `<`.
    for (text, op) in [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ] {
        if let Some(rest) = expr.strip_prefix(text) {
            return Ok((op, rest));
        }
    }
    Err(format!(
        "`{expr}`: expected an operator (<, <=, >, >=, ==, !=) and a value, e.g. \"< 0.01\""
    ))
}

fn parse_bound(text: &str, metric: Metric) -> Result<f64, String> {
    if let Ok(v) = text.parse::<f64>()
        && v.is_finite()
    {
        return Ok(v);
    }
    if metric.is_latency() {
        return humantime::parse_duration(text)
            .map(|d: Duration| d.as_secs_f64() * 1000.0)
            .map_err(|e| format!("`{text}`: expected a number of ms or a duration: {e}"));
    }
    Err(format!("`{text}`: expected a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(key: &str, expr: &str) -> Result<Threshold, String> {
        Threshold::parse(key, &ThresholdSpec::Expr(expr.to_owned()))
    }

    #[test]
    fn parses_scopes_metrics_and_units() {
        let t = parse("arch:arm64/p99", "< 500ms").unwrap();
        assert_eq!(t.scope, Scope::Arch("arm64".into()));
        assert_eq!(t.metric, Metric::P99);
        assert_eq!(t.op, Op::Lt);
        assert_eq!(t.bound, 500.0);
        let t = parse("5xx_ratio", "<= 0.01").unwrap();
        assert_eq!((t.scope, t.op, t.bound), (Scope::All, Op::Le, 0.01));
        let t = parse("target:arm/max", "< 1.5s").unwrap();
        assert_eq!(t.bound, 1500.0);
        assert_eq!(parse("p50", "< 20").unwrap().bound, 20.0);
    }

    #[test]
    fn bad_thresholds_say_what_was_expected() {
        assert!(parse("p98", "< 1").unwrap_err().contains("unknown metric"));
        assert!(
            parse("zone:x/p99", "< 1")
                .unwrap_err()
                .contains("unknown scope")
        );
        assert!(parse("p99", "about 5").unwrap_err().contains("operator"));
        assert!(parse("rps", "> fast").unwrap_err().contains("number"));
    }
}
