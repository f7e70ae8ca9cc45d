//! Batch means: 95% intervals from an autocorrelated series of per-interval figures. The
//! warm-up is cut with MSER-5, the steady rest is cut into 10 or 20 equal batches, and the
//! batch means (close to independent once a batch is longer than the series' memory) give
//! Student-t intervals: of a mean, of a ratio of two paired means (delta method), of a paired
//! difference, and of the change between two independent runs (Welch). `docs/confidence.md`
//! says why each choice.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The confidence level of every interval.
pub const LEVEL: f64 = 0.95;
/// Steady intervals needed for an interval at all: 10 batches of at least 2 intervals.
pub const MIN_INTERVALS: usize = 20;
/// From this many steady intervals on, 20 batches instead of 10.
const MANY_INTERVALS: usize = 200;
/// MSER's batch size: the warm-up is cut in steps of 5 intervals.
const MSER_BATCH: usize = 5;

/// An estimate and its 95% interval.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Interval {
    pub estimate: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// Whether `value` (1 for a ratio, 0 for a difference) lies inside.
    pub fn covers(&self, value: f64) -> bool {
        self.lo <= value && value <= self.hi
    }

    fn around(estimate: f64, half: f64) -> Interval {
        Interval {
            estimate,
            lo: estimate - half,
            hi: estimate + half,
        }
    }
}

/// Which points of a series are steady and how they are batched: `batches` batches of `len`
/// points each, from point `start` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    pub start: usize,
    pub batches: usize,
    pub len: usize,
    /// Points cut as warm-up by MSER-5 (after the skipped ones).
    pub warmup: usize,
}

impl Batching {
    /// One past the last point used.
    pub fn end(&self) -> usize {
        self.start + self.batches * self.len
    }

    /// The means of `values` (aligned with the series) per batch; `None` when a batch has no
    /// value at all (an arch that served nothing for a whole batch has no p99 there).
    pub fn means(&self, values: &[Option<f64>]) -> Option<Vec<f64>> {
        (0..self.batches)
            .map(|b| {
                let from = self.start + b * self.len;
                let got: Vec<f64> = values
                    .get(from..from + self.len)?
                    .iter()
                    .flatten()
                    .copied()
                    .collect();
                (!got.is_empty()).then(|| got.iter().sum::<f64>() / got.len() as f64)
            })
            .collect()
    }

    /// The sums of `values` per batch (counts).
    pub fn sums(&self, values: &[f64]) -> Option<Vec<f64>> {
        (0..self.batches)
            .map(|b| {
                let from = self.start + b * self.len;
                values.get(from..from + self.len).map(|v| v.iter().sum())
            })
            .collect()
    }
}

/// Why a series gives no interval.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too few steady intervals ({steady} after the warm-up; at least {MIN_INTERVALS} needed)")]
pub struct TooFew {
    pub steady: usize,
}

/// The steady window of a series and its batches. `marker` is the figure the warm-up is judged
/// on (the run's total throughput per interval); the first `skip` points are left out before
/// (the ramp; at least the first interval). The last interval is always left out: the run
/// starts and stops inside the first and the last.
pub fn batching(marker: &[f64], skip: usize) -> Result<Batching, TooFew> {
    let skip = skip.max(1);
    let inner = marker
        .get(skip..marker.len().saturating_sub(1))
        .unwrap_or(&[]);
    let warmup = mser5(inner);
    let steady = inner.len() - warmup;
    if steady < MIN_INTERVALS {
        return Err(TooFew { steady });
    }
    let batches = if steady >= MANY_INTERVALS { 20 } else { 10 };
    let len = steady / batches;
    // The remainder is dropped at the start, the end nearer the warm-up.
    let start = skip + warmup + (steady - batches * len);
    Ok(Batching {
        start,
        batches,
        len,
        warmup,
    })
}

/// MSER-5 (White 1997): group the series in 5s, and cut the `d` groups that minimise the
/// variance of the mean of what is left. `d` is at most a quarter of the groups (not the usual
/// half): on a series already steady, a cut chosen for low variance narrows the interval, and
/// with half the coverage of iid data fell to 92%. Returns points cut.
fn mser5(x: &[f64]) -> usize {
    let groups: Vec<f64> = x
        .chunks_exact(MSER_BATCH)
        .map(|c| c.iter().sum::<f64>() / MSER_BATCH as f64)
        .collect();
    let m = groups.len();
    if m < 2 {
        return 0;
    }
    let mut best = (f64::INFINITY, 0);
    for d in 0..=m / 4 {
        let rest = &groups[d..];
        let n = rest.len() as f64;
        let mean = rest.iter().sum::<f64>() / n;
        let ss: f64 = rest.iter().map(|z| (z - mean).powi(2)).sum();
        let stat = ss / (n * n);
        // Strictly smaller: of equal statistics the shortest cut wins.
        if stat < best.0 {
            best = (stat, d);
        }
    }
    best.1 * MSER_BATCH
}

/// The two-sided 95% Student-t quantile with `df` degrees of freedom.
pub fn t_quantile(df: f64) -> f64 {
    match StudentsT::new(0.0, 1.0, df.max(1.0)) {
        Ok(t) => t.inverse_cdf(0.5 + LEVEL / 2.0),
        // Only a non-finite df gets here: the normal quantile is its limit.
        Err(_) => 1.959_963_984_540_054,
    }
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

/// Sample variance (n − 1).
fn variance(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() as f64 - 1.0)
}

/// The mean of batch means and its interval.
pub fn mean_interval(x: &[f64]) -> Option<Interval> {
    if x.len() < 2 {
        return None;
    }
    let k = x.len() as f64;
    let half = t_quantile(k - 1.0) * (variance(x) / k).sqrt();
    Some(Interval::around(mean(x), half))
}

/// The ratio of the means of paired batches, ā / b̄, with the delta method's interval: the
/// residuals (aᵢ − R·bᵢ) / b̄ have the ratio's variance to first order. `None` when b̄ is 0.
pub fn ratio_interval(a: &[f64], b: &[f64]) -> Option<Interval> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let (ma, mb) = (mean(a), mean(b));
    if mb <= 0.0 || !mb.is_finite() {
        return None;
    }
    let r = ma / mb;
    let residuals: Vec<f64> = a.iter().zip(b).map(|(x, y)| (x - r * y) / mb).collect();
    let k = a.len() as f64;
    let half = t_quantile(k - 1.0) * (variance(&residuals) / k).sqrt();
    Some(Interval::around(r, half))
}

/// The mean of paired differences aᵢ − bᵢ and its interval.
pub fn difference_interval(a: &[f64], b: &[f64]) -> Option<Interval> {
    if a.len() != b.len() {
        return None;
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    mean_interval(&d)
}

/// Welch's degrees of freedom for two independent variances of means `v1`, `v2`.
fn welch_df(v1: f64, k1: f64, v2: f64, k2: f64) -> f64 {
    let denominator = v1 * v1 / (k1 - 1.0) + v2 * v2 / (k2 - 1.0);
    if denominator > 0.0 {
        (v1 + v2).powi(2) / denominator
    } else {
        k1 + k2 - 2.0
    }
}

/// The relative change c̄ / b̄ − 1 between two independent runs' batch means, with an interval
/// on the log ratio (the delta method, Welch's degrees of freedom) mapped back, so it stays
/// above −100%. `None` when either mean is not positive.
pub fn change_interval(base: &[f64], cand: &[f64]) -> Option<Interval> {
    if base.len() < 2 || cand.len() < 2 {
        return None;
    }
    let (mb, mc) = (mean(base), mean(cand));
    if mb <= 0.0 || mc <= 0.0 {
        return None;
    }
    let (kb, kc) = (base.len() as f64, cand.len() as f64);
    let vb = variance(base) / (kb * mb * mb);
    let vc = variance(cand) / (kc * mc * mc);
    let log_r = (mc / mb).ln();
    let half = t_quantile(welch_df(vb, kb, vc, kc)) * (vb + vc).sqrt();
    Some(Interval {
        estimate: mc / mb - 1.0,
        lo: (log_r - half).exp() - 1.0,
        hi: (log_r + half).exp() - 1.0,
    })
}

/// The difference c̄ − b̄ between two independent runs' batch means (Welch).
pub fn shift_interval(base: &[f64], cand: &[f64]) -> Option<Interval> {
    if base.len() < 2 || cand.len() < 2 {
        return None;
    }
    let (kb, kc) = (base.len() as f64, cand.len() as f64);
    let vb = variance(base) / kb;
    let vc = variance(cand) / kc;
    let half = t_quantile(welch_df(vb, kb, vc, kc)) * (vb + vc).sqrt();
    Some(Interval::around(mean(cand) - mean(base), half))
}

#[cfg(test)]
mod tests;
