//! A tally of requests: counts by outcome class and one latency histogram. Tallies merge
//! exactly, so per-target, per-arch and total figures all come from the same data.

use hdrhistogram::Histogram;
use stampede_proto::{Outcome, hdr};

use crate::latencies::Latencies;

/// Transport error kinds, as named in the summary.
pub const ERROR_KINDS: [&str; 5] = ["connect", "reset", "timeout", "other", "tls"];

/// The outcome of one request, as the master classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// An HTTP response; the status class 1..=5.
    Status(u8),
    /// A transport error; index into [`ERROR_KINDS`].
    Error(usize),
}

impl Class {
    /// Maps the wire enum; `None` for values this master does not know.
    pub fn from_wire(value: i32) -> Option<Class> {
        let outcome = Outcome::try_from(value).ok()?;
        Some(match outcome {
            Outcome::Unspecified => return None,
            Outcome::Status1xx => Class::Status(1),
            Outcome::Status2xx => Class::Status(2),
            Outcome::Status3xx => Class::Status(3),
            Outcome::Status4xx => Class::Status(4),
            Outcome::Status5xx => Class::Status(5),
            Outcome::ErrorConnect => Class::Error(0),
            Outcome::ErrorReset => Class::Error(1),
            Outcome::ErrorTimeout => Class::Error(2),
            Outcome::ErrorOther => Class::Error(3),
            Outcome::ErrorTls => Class::Error(4),
        })
    }
}

/// An empty latency histogram with the bounds every stampede histogram shares.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that satisfy hdrhistogram's preconditions, so this cannot fail.
    Histogram::new_with_bounds(hdr::LOWEST_US, hdr::HIGHEST_US, hdr::SIGFIG)
        .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"))
}

/// Counts and latency of a group of requests.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Every attempt that got a response or an error.
    pub requests: u64,
    /// Responses by status class; index 0 is 1xx.
    pub status: [u64; 5],
    /// Transport errors by kind, in [`ERROR_KINDS`] order.
    pub errors: [u64; 5],
    /// Requests whose outcome was not what the scenario expected (errors included).
    pub failures: u64,
    /// The unexpected responses among `status`, by status class (index 0 is 1xx).
    pub unexpected: [u64; 5],
    /// Latency of requests that got a response, µs. Transport errors are counted, not timed:
    /// the time to a refused connection says nothing about the server.
    pub latency: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            requests: 0,
            status: [0; 5],
            errors: [0; 5],
            failures: 0,
            unexpected: [0; 5],
            latency: new_histogram(),
        }
    }
}

impl Tally {
    /// Adds `count` requests of one class whose latencies are in `hist`.
    pub fn record(&mut self, class: Class, unexpected: bool, count: u64, hist: &Histogram<u64>) {
        self.record_latencies(class, unexpected, count, &Latencies::from(hist));
    }

    /// [`Tally::record`] for latencies as reports carry them (only the non-empty buckets), which
    /// costs the buckets a series fills rather than the whole histogram.
    pub fn record_latencies(&mut self, class: Class, unexpected: bool, count: u64, l: &Latencies) {
        self.requests += count;
        if unexpected {
            self.failures += count;
        }
        match class {
            Class::Status(c) => {
                let i = usize::from(c.clamp(1, 5) - 1);
                self.status[i] += count;
                if unexpected {
                    self.unexpected[i] += count;
                }
                l.add_to(&mut self.latency);
            }
            Class::Error(kind) => self.errors[kind.min(ERROR_KINDS.len() - 1)] += count,
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.failures += other.failures;
        for (a, b) in self.status.iter_mut().zip(other.status) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        for (a, b) in self.unexpected.iter_mut().zip(other.unexpected) {
            *a += b;
        }
        let _ = self.latency.add(&other.latency);
    }

    pub fn count_5xx(&self) -> u64 {
        self.status[4]
    }

    pub fn error_count(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// 5XX responses over all requests (0 when there are none).
    pub fn ratio_5xx(&self) -> f64 {
        ratio(self.count_5xx(), self.requests)
    }

    /// Failed requests (unexpected status or transport error) over all requests.
    pub fn error_ratio(&self) -> f64 {
        ratio(self.failures, self.requests)
    }

    /// Latency quantile in milliseconds; 0 when nothing was timed.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        us_to_ms(self.latency.value_at_quantile(q))
    }

    pub fn max_ms(&self) -> f64 {
        if self.latency.is_empty() {
            0.0
        } else {
            us_to_ms(self.latency.max())
        }
    }
}

pub fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist_of(values: &[u64]) -> Histogram<u64> {
        let mut h = new_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn record_splits_statuses_and_errors() {
        let mut t = Tally::default();
        t.record(Class::Status(2), false, 3, &hist_of(&[1000, 2000, 3000]));
        t.record(Class::Status(5), true, 1, &hist_of(&[4000]));
        t.record(Class::Error(2), true, 2, &hist_of(&[10, 20]));
        assert_eq!(t.requests, 6);
        assert_eq!(t.status, [0, 3, 0, 0, 1]);
        assert_eq!(t.errors, [0, 0, 2, 0, 0]);
        assert_eq!(t.failures, 3);
        assert_eq!(t.unexpected, [0, 0, 0, 0, 1]);
        // Errors are counted but not timed.
        assert_eq!(t.latency.len(), 4);
        assert!((t.ratio_5xx() - 1.0 / 6.0).abs() < 1e-12);
        // HDR reports the highest value equivalent to 4000 µs at 3 figures.
        assert!((t.max_ms() - 4.0).abs() < 0.005, "{}", t.max_ms());
    }

    #[test]
    fn merge_equals_recording_together() {
        let mut a = Tally::default();
        a.record(Class::Status(2), false, 2, &hist_of(&[100, 200]));
        let mut b = Tally::default();
        b.record(Class::Status(2), false, 1, &hist_of(&[300]));
        b.record(Class::Error(0), true, 1, &hist_of(&[1]));
        a.merge(&b);
        let mut all = Tally::default();
        all.record(Class::Status(2), false, 3, &hist_of(&[100, 200, 300]));
        all.record(Class::Error(0), true, 1, &hist_of(&[1]));
        assert_eq!(a.requests, all.requests);
        assert_eq!(a.status, all.status);
        assert_eq!(a.errors, all.errors);
        assert_eq!(a.latency, all.latency);
    }

    #[test]
    fn every_wire_outcome_maps() {
        for v in 1..=5 {
            assert_eq!(Class::from_wire(v), Some(Class::Status(v as u8)));
        }
        assert_eq!(Class::from_wire(12), Some(Class::Error(2)));
        assert_eq!(Class::from_wire(0), None);
        assert_eq!(Class::from_wire(99), None);
    }
}
