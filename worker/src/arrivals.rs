//! Open-model arrival spacing: Poisson (independent arrivals: exponential gaps, via rand_distr)
//! or uniform (equal gaps).

use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, Exp1};
use stampede_proto::Arrivals;
use tokio::time::Instant;

/// No gap is longer than this, whatever the rate: a rate change is picked up within it.
const MAX_GAP: Duration = Duration::from_secs(3600);

/// How the gaps between arrivals are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gaps {
    pub kind: Arrivals,
}

impl Gaps {
    /// The gap before the next arrival at `rate` arrivals per second (`rate` > 0).
    pub(crate) fn next<R: Rng + ?Sized>(&self, rate: f64, rng: &mut R) -> Duration {
        let unit: f64 = match self.kind {
            Arrivals::Uniform => 1.0,
            // Exp(1) / rate is Exp(rate).
            Arrivals::Poisson => Exp1.sample(rng),
        };
        seconds(unit / rate)
    }

    /// Where the first gap of a schedule starting at `now` is counted from. A Poisson process
    /// is memoryless: from now. Uniform streams start at `phase` (0..=1) of their period, so
    /// that several streams (one per engine thread) interleave instead of arriving together.
    pub(crate) fn start(&self, now: Instant, rate: f64, phase: f64) -> Instant {
        match self.kind {
            Arrivals::Uniform => now
                .checked_sub(seconds((1.0 - phase.clamp(0.0, 1.0)) / rate))
                .unwrap_or(now),
            Arrivals::Poisson => now,
        }
    }

    /// Whether a rate change redraws the pending gap from now (Poisson: memoryless, and
    /// redrawing from the last arrival would add arrivals) rather than from the last arrival
    /// (uniform: the spacing carries on at the new rate).
    pub(crate) fn redraw_from_now(&self) -> bool {
        self.kind == Arrivals::Poisson
    }
}

fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).map_or(MAX_GAP, |d| d.min(MAX_GAP))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn gaps(kind: Arrivals, rate: f64, n: usize) -> Vec<f64> {
        let g = Gaps { kind };
        let mut rng = SmallRng::seed_from_u64(42);
        (0..n)
            .map(|_| g.next(rate, &mut rng).as_secs_f64())
            .collect()
    }

    fn mean_sd(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var.sqrt())
    }

    #[test]
    fn poisson_gaps_are_exponential_with_mean_one_over_rate() {
        let n = 200_000;
        let v = gaps(Arrivals::Poisson, 500.0, n);
        let (mean, sd) = mean_sd(&v);
        // Mean 2 ms; its standard error is 2 ms / sqrt(n) = 4.5 µs; 5 sigma.
        assert!(
            (mean - 0.002).abs() < 5.0 * 0.002 / (n as f64).sqrt(),
            "{mean}"
        );
        // Exponential: sd equals the mean (coefficient of variation 1).
        assert!((sd / mean - 1.0).abs() < 0.02, "cv {}", sd / mean);
        // P(gap > mean) = 1/e.
        let above = v.iter().filter(|&&g| g > 0.002).count() as f64 / n as f64;
        assert!((above - (-1.0f64).exp()).abs() < 0.005, "{above}");
    }

    #[test]
    fn poisson_counts_have_variance_equal_to_their_mean() {
        // Arrivals per 1 s window at 50/s: Poisson(50), so variance / mean = 1.
        let g = Gaps {
            kind: Arrivals::Poisson,
        };
        let mut rng = SmallRng::seed_from_u64(7);
        let windows = 4000;
        let mut counts = vec![0f64; windows];
        let mut t = 0.0;
        loop {
            t += g.next(50.0, &mut rng).as_secs_f64();
            let w = t as usize;
            if w >= windows {
                break;
            }
            counts[w] += 1.0;
        }
        let (mean, sd) = mean_sd(&counts);
        assert!((mean - 50.0).abs() < 0.6, "{mean}");
        let dispersion = sd * sd / mean;
        assert!((dispersion - 1.0).abs() < 0.1, "{dispersion}");
    }

    #[test]
    fn uniform_gaps_are_equal_and_phased() {
        let v = gaps(Arrivals::Uniform, 400.0, 1000);
        assert!(v.iter().all(|&g| (g - 0.0025).abs() < 1e-9));
        let g = Gaps {
            kind: Arrivals::Uniform,
        };
        let now = Instant::now();
        // Half a period in: the first arrival comes half a period from now.
        let from = g.start(now, 100.0, 0.5);
        let mut rng = SmallRng::seed_from_u64(1);
        assert_eq!(
            from + g.next(100.0, &mut rng),
            now + Duration::from_millis(5)
        );
        assert!(!g.redraw_from_now());
    }

    #[test]
    fn tiny_rates_are_bounded() {
        let g = Gaps {
            kind: Arrivals::Uniform,
        };
        let mut rng = SmallRng::seed_from_u64(1);
        assert_eq!(g.next(1e-12, &mut rng), MAX_GAP);
    }
}
