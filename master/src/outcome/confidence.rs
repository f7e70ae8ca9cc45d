//! Confidence on the summary's ratios: the steady window of the series, the batch means of each
//! arch's and target's per-interval figures in it (throughput, p50/p95/p99, 5XX and request
//! counts), and from them the 95% intervals the comparison records. Read from the series the
//! summary already holds, never from the per-interval histograms, so it costs next to nothing.
//! `compare` reads the same batch means of two summaries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::batch::{self, Batching, Interval, TooFew};
use super::series::{ArchPoint, SeriesPoint};
use super::summary::{Comparison, Summary};

/// The method, as the summary names it.
pub const METHOD: &str = "batch_means";
/// How the start of the window is found, as the summary says it.
pub const WARMUP: &str = "ramp end, then MSER-5";

/// The window and method behind a summary's intervals.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Window {
    pub method: String,
    /// Confidence level of every interval (0.95).
    pub level: f64,
    /// How the warm-up was cut.
    pub warmup: String,
    /// The steady window, seconds since the run started (0 when there is none).
    pub from_s: f64,
    pub to_s: f64,
    /// Series intervals in the window.
    pub intervals: usize,
    pub batches: usize,
    /// Length of one batch, seconds.
    pub batch_s: f64,
    /// Why there are no intervals, when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The intervals of one arch's figures against the baseline's, over the steady window.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RatioIntervals {
    /// Mean throughput over the baseline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps_ratio: Option<Interval>,
    /// Mean per-interval p50 over the baseline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ratio: Option<Interval>,
    /// Mean per-interval p99 over the baseline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ratio: Option<Interval>,
    /// This arch's 5XX ratio (5XX over requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_5xx: Option<Interval>,
    /// This arch's 5XX ratio minus the baseline's (a ratio of zeros says nothing; a
    /// difference does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_5xx_diff: Option<Interval>,
}

/// One target's throughput against the baseline arch's first target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetRatio {
    /// The target compared against.
    pub vs: String,
    pub rps_ratio: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps_ci: Option<Interval>,
}

/// One arch's batch means over the steady window.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchBatches {
    pub rps: Vec<f64>,
    /// Mean per-interval percentiles; `None` when a batch saw no answer.
    pub p50: Option<Vec<f64>>,
    pub p95: Option<Vec<f64>>,
    pub p99: Option<Vec<f64>>,
    /// 5XX answers and requests per batch (sums).
    pub s5xx: Vec<f64>,
    pub requests: Vec<f64>,
}

impl ArchBatches {
    /// The 5XX ratio of each batch (0 for a batch without requests).
    pub fn ratio_5xx(&self) -> Vec<f64> {
        self.s5xx
            .iter()
            .zip(&self.requests)
            .map(|(bad, n)| if *n > 0.0 { bad / n } else { 0.0 })
            .collect()
    }
}

/// The batch means of a whole summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Batches {
    pub batching: Batching,
    pub window: Window,
    pub by_arch: BTreeMap<String, ArchBatches>,
    /// Throughput per target.
    pub by_target: BTreeMap<String, Vec<f64>>,
}

/// Where the ramp ends: the first interval at the run's highest user count (closed model);
/// 0 when no users were reported (open model).
fn ramp_end(series: &[SeriesPoint]) -> usize {
    let top = series.iter().map(|p| p.users).max().unwrap_or(0);
    if top == 0 {
        return 0;
    }
    series.iter().position(|p| p.users >= top).unwrap_or(0)
}

/// One arch's figures in one interval.
fn point<'p>(p: &'p SeriesPoint, arch: &str) -> Option<&'p ArchPoint> {
    p.by_arch.get(arch)
}

/// A window with no intervals, saying why.
fn no_window(why: &TooFew) -> Window {
    Window {
        method: METHOD.to_owned(),
        level: batch::LEVEL,
        warmup: WARMUP.to_owned(),
        from_s: 0.0,
        to_s: 0.0,
        intervals: why.steady,
        batches: 0,
        batch_s: 0.0,
        note: Some(format!("no interval: {why}")),
    }
}

/// The batch means of a summary's series, or why there are none.
pub fn batches(summary: &Summary) -> Result<Batches, TooFew> {
    let arches: Vec<&str> = summary.by_arch.keys().map(String::as_str).collect();
    let targets: Vec<&str> = summary.by_target.keys().map(String::as_str).collect();
    batches_of(&summary.series, summary.interval_s, &arches, &targets)
}

/// The batch means of a series (intervals of `interval_s`) for these arches and targets: what
/// the summary records, and what the live view shows while the run goes.
pub fn batches_of(
    series: &[SeriesPoint],
    interval_s: f64,
    arches: &[&str],
    targets: &[&str],
) -> Result<Batches, TooFew> {
    let marker: Vec<f64> = series.iter().map(|p| p.rps).collect();
    let b = batch::batching(&marker, ramp_end(series))?;
    let window = Window {
        method: METHOD.to_owned(),
        level: batch::LEVEL,
        warmup: WARMUP.to_owned(),
        from_s: series.get(b.start).map_or(0.0, |p| p.t - interval_s),
        to_s: series.get(b.end() - 1).map_or(0.0, |p| p.t),
        intervals: b.batches * b.len,
        batches: b.batches,
        batch_s: b.len as f64 * interval_s,
        note: None,
    };
    let by_arch = arches
        .iter()
        .map(|&arch| {
            let answered = |f: fn(&ArchPoint) -> f64| -> Vec<Option<f64>> {
                series
                    .iter()
                    .map(|p| point(p, arch).filter(|a| a.requests > 0).map(f))
                    .collect()
            };
            let rps: Vec<Option<f64>> = series
                .iter()
                .map(|p| Some(point(p, arch).map_or(0.0, |a| a.rps)))
                .collect();
            let requests: Vec<f64> = series
                .iter()
                .map(|p| point(p, arch).map_or(0.0, |a| a.requests as f64))
                .collect();
            let s5xx: Vec<f64> = series
                .iter()
                .map(|p| point(p, arch).map_or(0.0, |a| (a.ratio_5xx * a.requests as f64).round()))
                .collect();
            let figures = ArchBatches {
                rps: b.means(&rps).unwrap_or_default(),
                p50: b.means(&answered(|a| a.p50_ms)),
                p95: b.means(&answered(|a| a.p95_ms)),
                p99: b.means(&answered(|a| a.p99_ms)),
                s5xx: b.sums(&s5xx).unwrap_or_default(),
                requests: b.sums(&requests).unwrap_or_default(),
            };
            (arch.to_owned(), figures)
        })
        .collect();
    let by_target = targets
        .iter()
        .map(|&name| {
            let rps: Vec<Option<f64>> = series
                .iter()
                .map(|p| Some(p.by_target.get(name).copied().unwrap_or(0.0)))
                .collect();
            (name.to_owned(), b.means(&rps).unwrap_or_default())
        })
        .collect();
    Ok(Batches {
        batching: b,
        window,
        by_arch,
        by_target,
    })
}

/// Intervals of `arch` against `base`.
pub fn ratio_intervals(arch: &ArchBatches, base: &ArchBatches) -> RatioIntervals {
    let paired = |a: &Option<Vec<f64>>, b: &Option<Vec<f64>>| match (a, b) {
        (Some(a), Some(b)) => batch::ratio_interval(a, b),
        _ => None,
    };
    RatioIntervals {
        rps_ratio: batch::ratio_interval(&arch.rps, &base.rps),
        p50_ratio: paired(&arch.p50, &base.p50),
        p99_ratio: paired(&arch.p99, &base.p99),
        ratio_5xx: batch::ratio_interval(&arch.s5xx, &arch.requests),
        ratio_5xx_diff: batch::difference_interval(&arch.ratio_5xx(), &base.ratio_5xx()),
    }
}

/// The target each other target is compared against: the first (by name) of the baseline arch.
fn baseline_target<'a>(summary: &'a Summary, arch: &str) -> Option<&'a str> {
    summary
        .by_target
        .iter()
        .find(|(_, t)| t.arch == arch)
        .map(|(name, _)| name.as_str())
}

/// Fills the comparison's window, intervals and per-target ratios from the summary's series.
pub fn attach(summary: &mut Summary) {
    let Some(baseline) = summary.comparison.as_ref().map(|c| c.baseline.clone()) else {
        return;
    };
    let batches = batches(summary);
    let base_target = baseline_target(summary, &baseline).map(str::to_owned);
    let target_ratios: BTreeMap<String, TargetRatio> = match &base_target {
        Some(vs) => summary
            .by_target
            .iter()
            .filter(|(name, _)| *name != vs)
            .map(|(name, t)| {
                let base_rps = summary.by_target[vs].results.rps;
                let ratio = if base_rps > 0.0 {
                    t.results.rps / base_rps
                } else {
                    0.0
                };
                let ci = batches.as_ref().ok().and_then(|b| {
                    batch::ratio_interval(b.by_target.get(name)?, b.by_target.get(vs)?)
                });
                let entry = TargetRatio {
                    vs: vs.clone(),
                    rps_ratio: ratio,
                    rps_ci: ci,
                };
                (name.clone(), entry)
            })
            .collect(),
        None => BTreeMap::new(),
    };
    let Some(cmp) = summary.comparison.as_mut() else {
        return;
    };
    cmp.by_target = target_ratios;
    match batches {
        Err(why) => cmp.window = Some(no_window(&why)),
        Ok(b) => {
            fill(cmp, &b);
            cmp.window = Some(b.window);
        }
    }
}

fn fill(cmp: &mut Comparison, b: &Batches) {
    let Some(base) = b.by_arch.get(&cmp.baseline) else {
        return;
    };
    for (arch, ratios) in cmp.by_arch.iter_mut() {
        if *arch == cmp.baseline {
            continue;
        }
        if let Some(figures) = b.by_arch.get(arch) {
            ratios.ci = Some(ratio_intervals(figures, base));
        }
    }
}

/// "95% CI 0.97–1.03", for a ratio's interval.
pub fn ci_text(i: &Interval) -> String {
    format!("95% CI {:.2}–{:.2}", i.lo, i.hi)
}
