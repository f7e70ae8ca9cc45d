//! Reconnect delays: exponential, capped, with jitter so that a fleet of workers that lost the
//! same master does not knock on the new one in lockstep.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The delay before the next attempt: half of `min(max, initial·2^n)` plus a random part
    /// up to the other half ("equal jitter": never zero, never above the cap).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }

    /// After a successful connection the next loss starts from the initial delay again.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        for (n, d) in delays.iter().enumerate() {
            let ceiling = (Duration::from_millis(100) * (1 << n)).min(Duration::from_secs(2));
            assert!(*d >= ceiling / 2 && *d <= ceiling, "attempt {n}: {d:?}");
        }
        // Jitter: not every capped delay is the same.
        let capped: Vec<Duration> = (0..20).map(|_| b.next_delay()).collect();
        assert!(capped.iter().any(|d| *d != capped[0]), "{capped:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
