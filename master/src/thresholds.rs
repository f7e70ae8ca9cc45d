//! k6-style thresholds: `"[scope/]metric" = "op value"`, evaluated on the summary's results at
//! the end, and (with `abort_on_fail`) on the cumulative results while the run goes. Scopes:
//! none (all requests), `arch:NAME/`, `target:NAME/`. Latency values take a unit (`500ms`, `1s`)
//! or are milliseconds.

use std::fmt;
use std::time::Duration;

use crate::aggregate::Aggregator;
use crate::scenario::ThresholdSpec;
use crate::summary::{Results, Summary};

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

    fn of(self, r: &Results) -> f64 {
        let l = &r.latency_ms;
        match self {
            Metric::Requests => r.requests as f64,
            Metric::Rps => r.rps,
            Metric::Ratio5xx => r.ratio_5xx,
            Metric::ErrorRatio => r.error_ratio,
            Metric::Min => l.min,
            Metric::Mean => l.mean,
            Metric::P50 => l.p50,
            Metric::P90 => l.p90,
            Metric::P95 => l.p95,
            Metric::P99 => l.p99,
            Metric::P999 => l.p999,
            Metric::Max => l.max,
            Metric::Dropped => 0.0,
        }
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

/// The outcome of one threshold, as the summary records it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Outcome {
    /// `key op value`, as written.
    pub expr: String,
    /// The measured value (ms for latency); null when the scope saw no requests.
    pub value: Option<f64>,
    pub pass: bool,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.pass { "pass" } else { "FAIL" };
        match self.value {
            Some(v) => write!(f, "{verdict}  {}  (measured {v:.4})", self.expr),
            None => write!(f, "{verdict}  {}  (no requests in scope)", self.expr),
        }
    }
}

impl Threshold {
    /// Parses `key = "expr"` (or the table form); the error says what was expected.
    pub fn parse(key: &str, spec: &ThresholdSpec) -> Result<Threshold, String> {
        let (scope, metric_name) = parse_scope(key)?;
        let metric = METRICS
            .iter()
            .find(|(name, _)| *name == metric_name)
            .map(|&(_, m)| m)
            .ok_or_else(|| {
                let names: Vec<&str> = METRICS.iter().map(|(n, _)| *n).collect();
                format!(
                    "unknown metric `{metric_name}`; expected one of {}",
                    names.join(", ")
                )
            })?;
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

    /// The measured value for `results` (this threshold's scope); `None` when the scope saw no
    /// requests (`dropped` is always measured).
    fn value(&self, results: Option<&Results>, dropped: u64) -> Option<f64> {
        if self.metric == Metric::Dropped {
            return Some(dropped as f64);
        }
        results
            .filter(|r| r.requests > 0)
            .map(|r| self.metric.of(r))
    }

    /// Evaluates against a summary; a scope with no requests fails.
    pub fn evaluate(&self, summary: &Summary) -> Outcome {
        let results = match &self.scope {
            Scope::All => Some(&summary.totals),
            Scope::Arch(a) => summary.by_arch.get(a),
            Scope::Target(t) => summary.by_target.get(t).map(|t| &t.results),
        };
        let value = self.value(results, summary.dropped);
        Outcome {
            expr: self.expr.clone(),
            value,
            pass: value.is_some_and(|v| self.op.holds(v, self.bound)),
        }
    }

    /// Judges the cumulative results `elapsed` into the run, for `abort_on_fail`: `Some(value)`
    /// when it fails now. Not judged before its delay, nor on a scope with no requests yet.
    pub fn fails_now(&self, agg: &Aggregator, elapsed: Duration) -> Option<f64> {
        if !self.abort_on_fail || elapsed < self.delay {
            return None;
        }
        let seconds = elapsed.as_secs_f64();
        let tally = match &self.scope {
            Scope::All => Some(agg.totals()),
            Scope::Arch(a) => agg.by_arch().remove(a),
            Scope::Target(t) => {
                let index = agg.targets().iter().position(|info| &info.name == t);
                index.and_then(|i| agg.by_target().into_iter().nth(i))
            }
        };
        let results = tally.map(|t| Results::from_tally(&t, seconds, false));
        let value = self.value(results.as_ref(), agg.dropped())?;
        (!self.op.holds(value, self.bound)).then_some(value)
    }
}

fn parse_scope(key: &str) -> Result<(Scope, &str), String> {
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

fn parse_op(expr: &str) -> Result<(Op, &str), String> {
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
