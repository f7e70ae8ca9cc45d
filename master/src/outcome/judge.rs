//! Thresholds judged on results: the measured value of a parsed [`Threshold`] in a group's
//! results, and every threshold's outcome on the finished summary.

use super::summary::{Results, Summary};
use super::thresholds::Outcome;
use crate::scenario::{Metric, Scope, Threshold};

/// A metric's value in a group's results (latencies in ms).
fn metric_of(metric: Metric, r: &Results) -> f64 {
    let l = &r.latency_ms;
    match metric {
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

/// The measured value of `t` in `results` (its scope's); `None` when the scope saw no requests
/// (`dropped` is always measured).
pub fn measured(t: &Threshold, results: Option<&Results>, dropped: u64) -> Option<f64> {
    if t.metric == Metric::Dropped {
        return Some(dropped as f64);
    }
    results
        .filter(|r| r.requests > 0)
        .map(|r| metric_of(t.metric, r))
}

/// Judges `t` on a summary; a scope with no requests fails.
pub fn evaluate(t: &Threshold, summary: &Summary) -> Outcome {
    let results = match &t.scope {
        Scope::All => Some(&summary.totals),
        Scope::Arch(a) => summary.by_arch.get(a),
        Scope::Target(name) => summary.by_target.get(name).map(|t| &t.results),
    };
    let value = measured(t, results, summary.dropped);
    Outcome {
        expr: t.expr.clone(),
        value,
        pass: value.is_some_and(|v| t.op.holds(v, t.bound)),
    }
}

/// Judges every threshold on the summary and records the outcomes in it; returns the failed
/// ones (a run an `abort_on_fail` threshold stopped failed, whatever the final figures say).
pub fn judge_all(summary: &mut Summary, thresholds: &[Threshold]) -> Vec<String> {
    summary.thresholds = thresholds.iter().map(|t| evaluate(t, summary)).collect();
    let mut failed: Vec<String> = summary
        .thresholds
        .iter()
        .filter(|t| !t.pass)
        .map(|t| t.expr.clone())
        .collect();
    if let Some(why) = &summary.aborted
        && failed.is_empty()
    {
        failed.push(why.clone());
    }
    failed
}
