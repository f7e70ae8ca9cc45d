//! Confidence on the summary's ratios: the steady window of the series, the batch means of each
//! arch's and target's per-interval figures in it (throughput, p50/p95/p99, 5XX and request
//! counts), and from them the 95% intervals the comparison records. Read from the series the
//! summary already holds, never from the per-interval histograms, so it costs next to nothing.
//! `compare` reads the same batch means of two summaries.

use std::collections::BTreeMap;

use super::batch::{self, Batching, TooFew};
pub use super::intervals::{RatioIntervals, TargetRatio, Window};
use super::series::{ArchPoint, SeriesPoint};
use super::summary::{Comparison, Summary};

/// The method, as the summary names it.
pub const METHOD: &str = "batch_means";
/// How the start of the window is found, as the summary says it.
pub const WARMUP: &str = "ramp end, then MSER-5";

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
pub fn ci_text(i: &batch::Interval) -> String {
    format!("95% CI {:.2}–{:.2}", i.lo, i.hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::summary::{Results, TargetResults};

    /// A summary of `n` one-second intervals where arm64 serves `ratio`× amd64's throughput.
    fn summary(n: usize, ratio: f64) -> Summary {
        let arches = [("amd64", 100.0), ("arm64", 100.0 * ratio)];
        let mut s = Summary {
            interval_s: 1.0,
            ..Summary::default()
        };
        for (arch, rps) in arches {
            let r = Results {
                rps,
                requests: (rps * n as f64) as u64,
                ..Results::default()
            };
            let t = TargetResults {
                arch: arch.to_owned(),
                results: r.clone(),
            };
            s.by_target.insert(format!("t-{arch}"), t);
            s.by_arch.insert(arch.to_owned(), r);
        }
        s.series = (0..n)
            .map(|i| {
                let wobble = [0.97, 1.02, 1.0, 0.99, 1.03, 0.98][i % 6];
                let point = |rps: f64| ArchPoint {
                    rps: rps * wobble,
                    requests: (rps * wobble) as u64,
                    ratio_5xx: 0.01,
                    errors: 0,
                    p50_ms: 5.0 * wobble,
                    p95_ms: 8.0,
                    p99_ms: 10.0 * wobble,
                    failures: 0,
                    hdr: None,
                };
                SeriesPoint {
                    t: (i + 1) as f64,
                    users: 10,
                    rps: arches.iter().map(|(_, r)| r * wobble).sum(),
                    by_arch: arches
                        .iter()
                        .map(|&(a, r)| (a.to_owned(), point(r)))
                        .collect(),
                    by_target: arches
                        .iter()
                        .map(|&(a, r)| (format!("t-{a}"), r * wobble))
                        .collect(),
                }
            })
            .collect();
        s.comparison = Comparison::of(&s.by_arch);
        s
    }

    #[test]
    fn the_comparison_records_window_and_intervals() {
        let mut s = summary(62, 1.2);
        attach(&mut s);
        let c = s.comparison.unwrap();
        let w = c.window.unwrap();
        assert_eq!((w.method.as_str(), w.batches), (METHOD, 10));
        assert!(
            w.batch_s >= 4.0 && w.from_s >= 1.0 && w.to_s <= 61.0,
            "{w:?}"
        );
        assert_eq!(w.to_s - w.from_s, w.batch_s * 10.0);
        assert_eq!(w.note, None);
        let ci = c.by_arch["arm64"].ci.clone().unwrap();
        let rps = ci.rps_ratio.unwrap();
        // Both arches wobble together: the paired ratio is exact.
        assert!(
            (rps.estimate - 1.2).abs() < 1e-9 && !rps.covers(1.0),
            "{rps:?}"
        );
        assert!(ci.p99_ratio.unwrap().covers(1.0));
        // Counts are whole: 1% of 97 and of 117 requests round to one 5XX each.
        assert!(ci.ratio_5xx_diff.unwrap().estimate.abs() < 0.003);
        assert!((ci.ratio_5xx.unwrap().estimate - 0.01).abs() < 0.002);
        assert_eq!(c.by_arch["amd64"].ci, None);
        let t = &c.by_target["t-arm64"];
        assert_eq!(t.vs, "t-amd64");
        assert!((t.rps_ci.unwrap().estimate - 1.2).abs() < 1e-9);
    }

    #[test]
    fn a_short_run_says_it_has_no_interval() {
        let mut s = summary(15, 1.0);
        attach(&mut s);
        let c = s.comparison.unwrap();
        let note = c.window.unwrap().note.unwrap();
        assert!(note.contains("too few steady intervals (13"), "{note}");
        assert_eq!(c.by_arch["arm64"].ci, None);
        assert_eq!(c.by_target["t-arm64"].rps_ci, None);
    }
}
