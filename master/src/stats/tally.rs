//! A tally of requests: counts by outcome class and one latency histogram. Tallies merge
//! exactly, so per-target, per-arch and total figures all come from the same data.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use stampede_proto::Outcome;

use super::dense::Dense;
use super::latencies::Latencies;
use crate::outcome::{self, ERROR_KINDS, Latency, Results, StatusCounts};

/// The outcome of one request, as the master classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// An HTTP response; the status class 1..=5.
    Status(u8),
    /// A transport error; index into [`ERROR_KINDS`].
    Error(usize),
}

impl Class {
    /// The wire enum's value of this class (what [`Class::from_wire`] reads).
    pub fn to_wire(self) -> i32 {
        let outcome = match self {
            Class::Status(1) => Outcome::Status1xx,
            Class::Status(2) => Outcome::Status2xx,
            Class::Status(3) => Outcome::Status3xx,
            Class::Status(4) => Outcome::Status4xx,
            Class::Status(_) => Outcome::Status5xx,
            Class::Error(0) => Outcome::ErrorConnect,
            Class::Error(1) => Outcome::ErrorReset,
            Class::Error(2) => Outcome::ErrorTimeout,
            Class::Error(3) => Outcome::ErrorOther,
            Class::Error(_) => Outcome::ErrorTls,
        };
        outcome as i32
    }

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

/// Counts and latency of a group of requests.
#[derive(Debug, Clone, Default)]
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
    pub latency: Dense,
}

impl Tally {
    /// Adds `count` requests of one class whose latencies are in `l`: as reports carry them,
    /// only the non-empty buckets, which costs the buckets a series fills rather than the
    /// whole histogram.
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
                self.latency.add(l);
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
        self.latency.merge(&other.latency);
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
}

impl Tally {
    /// The summary's figures of this tally over `duration_s` seconds; `with_hdr` embeds the
    /// histogram.
    pub fn results(&self, duration_s: f64, with_hdr: bool) -> Results {
        let latency = self.latency.histogram();
        let errors: BTreeMap<String, u64> = ERROR_KINDS
            .iter()
            .zip(self.errors)
            .map(|(k, n)| ((*k).to_owned(), n))
            .collect();
        let failures_by = (1..=5)
            .zip(self.unexpected)
            .map(|(class, n)| (format!("{class}xx"), n))
            .chain(errors.clone())
            .filter(|(_, n)| *n > 0)
            .collect();
        Results {
            requests: self.requests,
            rps: if duration_s > 0.0 {
                self.requests as f64 / duration_s
            } else {
                0.0
            },
            rps_peak: None,
            status: StatusCounts {
                s1xx: self.status[0],
                s2xx: self.status[1],
                s3xx: self.status[2],
                s4xx: self.status[3],
                s5xx: self.status[4],
            },
            errors,
            failures: self.failures,
            failures_by,
            ratio_5xx: self.ratio_5xx(),
            error_ratio: self.error_ratio(),
            latency_ms: Latency::of(&latency),
            hdr: with_hdr.then(|| outcome::hdr::encode(&latency)),
            // Phases are kept beside the tallies; the summary adds them.
            phases_ms: Default::default(),
        }
    }
}

/// A latency quantile of `h` (µs) in milliseconds; 0 when nothing was timed.
pub fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    us_to_ms(h.value_at_quantile(q))
}

/// The highest latency of `h` (µs) in milliseconds; 0 when nothing was timed.
pub fn max_ms(h: &Histogram<u64>) -> f64 {
    if h.is_empty() { 0.0 } else { us_to_ms(h.max()) }
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
    use stampede_proto::hdr::new_histogram;

    /// A series' latencies as reports carry them.
    fn hist_of(values: &[u64]) -> Latencies {
        let mut h = new_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        Latencies::from(&h)
    }

    #[test]
    fn record_splits_statuses_and_errors() {
        let mut t = Tally::default();
        t.record_latencies(Class::Status(2), false, 3, &hist_of(&[1000, 2000, 3000]));
        t.record_latencies(Class::Status(5), true, 1, &hist_of(&[4000]));
        t.record_latencies(Class::Error(2), true, 2, &hist_of(&[10, 20]));
        assert_eq!(t.requests, 6);
        assert_eq!(t.status, [0, 3, 0, 0, 1]);
        assert_eq!(t.errors, [0, 0, 2, 0, 0]);
        assert_eq!(t.failures, 3);
        assert_eq!(t.unexpected, [0, 0, 0, 0, 1]);
        // Errors are counted but not timed.
        assert_eq!(t.latency.len(), 4);
        assert!((t.ratio_5xx() - 1.0 / 6.0).abs() < 1e-12);
        // HDR reports the highest value equivalent to 4000 µs at 3 figures.
        let max = max_ms(&t.latency.histogram());
        assert!((max - 4.0).abs() < 0.005, "{max}");
    }

    #[test]
    fn merge_equals_recording_together() {
        let mut a = Tally::default();
        a.record_latencies(Class::Status(2), false, 2, &hist_of(&[100, 200]));
        let mut b = Tally::default();
        b.record_latencies(Class::Status(2), false, 1, &hist_of(&[300]));
        b.record_latencies(Class::Error(0), true, 1, &hist_of(&[1]));
        a.merge(&b);
        let mut all = Tally::default();
        all.record_latencies(Class::Status(2), false, 3, &hist_of(&[100, 200, 300]));
        all.record_latencies(Class::Error(0), true, 1, &hist_of(&[1]));
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
        for v in [1, 2, 3, 4, 5, 10, 11, 12, 13, 14] {
            assert_eq!(Class::from_wire(v).map(Class::to_wire), Some(v));
        }
        assert_eq!(Class::from_wire(12), Some(Class::Error(2)));
        assert_eq!(Class::from_wire(0), None);
        assert_eq!(Class::from_wire(99), None);
    }
}
