//! Think time between a user's requests, from the scenario's `wait`: none, constant,
//! uniform between two bounds, exponential (Poisson think time), constant pacing and constant
//! throughput. The user loop asks [`Wait::next`] once per iteration.

use std::time::Duration;

use rand::Rng;
use rand::distr::Uniform;
use rand_distr::{Distribution, Exp};
use stampede_proto::{self as proto, WaitKind};

use crate::EngineError;

/// Exponential samples are unbounded; no think time longer than this makes sense.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// A wait-time strategy.
#[derive(Debug, Clone)]
pub enum Wait {
    /// Next request at once.
    None,
    /// The same pause every time.
    Constant(Duration),
    /// Uniform in `[min, max]` µs.
    Between(Uniform<u64>),
    /// Exponential pauses (µs) with the configured mean: arrivals of one user form a Poisson process.
    Exponential(Exp<f64>),
    /// Each iteration (request + wait) lasts at least this long.
    Pacing(Duration),
}

impl Wait {
    /// Builds the strategy from the proto; bad parameters are errors, not silent defaults.
    pub fn from_proto(w: &proto::Wait) -> Result<Self, EngineError> {
        let kind = WaitKind::try_from(w.kind)
            .map_err(|_| EngineError::BadWait(format!("unknown wait kind {}", w.kind)))?;
        let a = Duration::from_micros(w.a_us);
        Ok(match kind {
            WaitKind::None => Wait::None,
            WaitKind::Constant => Wait::Constant(a),
            WaitKind::Between => {
                if w.b_us < w.a_us {
                    return Err(EngineError::BadWait(format!(
                        "between: max ({} µs) is below min ({} µs)",
                        w.b_us, w.a_us
                    )));
                }
                let uniform = Uniform::new_inclusive(w.a_us, w.b_us)
                    .map_err(|e| EngineError::BadWait(format!("between: {e}")))?;
                Wait::Between(uniform)
            }
            WaitKind::Exponential if w.a_us == 0 => Wait::None,
            WaitKind::Exponential => {
                let exp = Exp::new(1.0 / w.a_us as f64)
                    .map_err(|e| EngineError::BadWait(format!("exponential: {e}")))?;
                Wait::Exponential(exp)
            }
            WaitKind::Pacing => Wait::Pacing(a),
            WaitKind::Throughput => {
                if !(w.rate.is_finite() && w.rate > 0.0) {
                    return Err(EngineError::BadWait(format!(
                        "throughput: rate must be a positive number of iterations per second, got {}",
                        w.rate
                    )));
                }
                // Constant throughput is pacing at 1/rate.
                let period = Duration::try_from_secs_f64(1.0 / w.rate)
                    .map_err(|e| EngineError::BadWait(format!("throughput: {e}")))?;
                Wait::Pacing(period)
            }
        })
    }

    /// The pause before the next request, given how long this iteration's request took.
    pub fn next<R: Rng + ?Sized>(&self, elapsed: Duration, rng: &mut R) -> Duration {
        match self {
            Wait::None => Duration::ZERO,
            Wait::Constant(d) => *d,
            Wait::Between(u) => Duration::from_micros(u.sample(rng)),
            Wait::Exponential(exp) => Duration::try_from_secs_f64(exp.sample(rng) / 1e6)
                .map_or(MAX_WAIT, |d| d.min(MAX_WAIT)),
            Wait::Pacing(period) => period.saturating_sub(elapsed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn wait(kind: WaitKind, a_us: u64, b_us: u64, rate: f64) -> Result<Wait, EngineError> {
        Wait::from_proto(&proto::Wait {
            kind: kind as i32,
            a_us,
            b_us,
            rate,
        })
    }

    #[test]
    fn between_is_uniform_within_bounds() {
        let w = wait(WaitKind::Between, 500_000, 1_500_000, 0.0).unwrap();
        let mut rng = SmallRng::seed_from_u64(7);
        let n = 100_000;
        let samples: Vec<u64> = (0..n)
            .map(|_| w.next(Duration::ZERO, &mut rng).as_micros() as u64)
            .collect();
        assert!(samples.iter().all(|&s| (500_000..=1_500_000).contains(&s)));
        let mean = samples.iter().sum::<u64>() as f64 / n as f64;
        // Standard error of the mean is ~913 µs here; 10 ms is over 10 sigma.
        assert!((mean - 1_000_000.0).abs() < 10_000.0, "mean {mean}");
        // Each quarter of the range holds about a quarter of the samples.
        for q in 0..4 {
            let lo = 500_000 + q * 250_000;
            let in_q = samples
                .iter()
                .filter(|&&s| s >= lo && s < lo + 250_000)
                .count();
            let frac = in_q as f64 / n as f64;
            assert!((frac - 0.25).abs() < 0.01, "quarter {q}: {frac}");
        }
    }

    #[test]
    fn exponential_has_the_configured_mean() {
        let w = wait(WaitKind::Exponential, 100_000, 0, 0.0).unwrap();
        let mut rng = SmallRng::seed_from_u64(11);
        let n = 100_000;
        let total: f64 = (0..n)
            .map(|_| w.next(Duration::ZERO, &mut rng).as_secs_f64())
            .sum();
        let mean = total / n as f64;
        // Std error is mean/sqrt(n) ~ 0.3 ms; 3 ms is 10 sigma.
        assert!((mean - 0.1).abs() < 0.003, "mean {mean}");
    }

    #[test]
    fn pacing_and_throughput_subtract_the_request_time() {
        let mut rng = SmallRng::seed_from_u64(1);
        let pacing = wait(WaitKind::Pacing, 1_000_000, 0, 0.0).unwrap();
        assert_eq!(
            pacing.next(Duration::from_millis(300), &mut rng),
            Duration::from_millis(700)
        );
        assert_eq!(
            pacing.next(Duration::from_secs(2), &mut rng),
            Duration::ZERO
        );
        let throughput = wait(WaitKind::Throughput, 0, 0, 4.0).unwrap();
        assert_eq!(
            throughput.next(Duration::from_millis(50), &mut rng),
            Duration::from_millis(200)
        );
    }

    #[test]
    fn constant_and_none() {
        let mut rng = SmallRng::seed_from_u64(1);
        let c = wait(WaitKind::Constant, 250_000, 0, 0.0).unwrap();
        assert_eq!(
            c.next(Duration::from_secs(9), &mut rng),
            Duration::from_millis(250)
        );
        let none = wait(WaitKind::None, 0, 0, 0.0).unwrap();
        assert_eq!(none.next(Duration::ZERO, &mut rng), Duration::ZERO);
    }

    #[test]
    fn bad_parameters_are_errors() {
        assert!(wait(WaitKind::Between, 2, 1, 0.0).is_err());
        assert!(wait(WaitKind::Throughput, 0, 0, 0.0).is_err());
        assert!(wait(WaitKind::Throughput, 0, 0, f64::NAN).is_err());
        assert!(
            Wait::from_proto(&proto::Wait {
                kind: 42,
                ..Default::default()
            })
            .is_err()
        );
    }
}
