//! A latency histogram as the master merges it: one counter per bucket of a histogram at
//! stampede's bounds, added to by bucket index. Merging a report's series is then one addition
//! per non-empty bucket (hdrhistogram's `record_n` works out each bucket from its value again,
//! which cost the master a tenth of its time at a thousand workers). The figures are read from
//! an hdrhistogram built from these counts, so they are exactly hdrhistogram's.

use hdrhistogram::Histogram;
use stampede_proto::hdr::new_histogram;

use super::latencies::{COUNTS_LEN, Latencies, value_for};

/// Counts by bucket index; no memory until the first count.
#[derive(Debug, Clone, Default)]
pub struct Dense {
    counts: Vec<u64>,
    total: u64,
    /// The non-empty buckets lie in `low..high` (empty: `high == 0`).
    low: usize,
    high: usize,
}

impl Dense {
    /// Requests counted.
    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn widen(&mut self, low: usize, high: usize) {
        if self.counts.is_empty() {
            self.counts = vec![0; COUNTS_LEN];
            self.low = low;
            self.high = high;
        } else {
            self.low = self.low.min(low);
            self.high = self.high.max(high);
        }
    }

    /// Adds a report's latencies (bucket indexes below `COUNTS_LEN`, as decoding checks).
    pub fn add(&mut self, l: &Latencies) {
        let (Some(first), Some(last)) = (l.buckets().first(), l.buckets().last()) else {
            return;
        };
        self.widen(first.0 as usize, last.0 as usize + 1);
        for &(index, count) in l.buckets() {
            if let Some(c) = self.counts.get_mut(index as usize) {
                *c = c.saturating_add(count);
            }
        }
        self.total = self.total.saturating_add(l.len());
    }

    pub fn merge(&mut self, other: &Dense) {
        if other.is_empty() {
            return;
        }
        self.widen(other.low, other.high);
        let (mine, theirs) = (
            &mut self.counts[other.low..other.high],
            &other.counts[other.low..other.high],
        );
        for (a, b) in mine.iter_mut().zip(theirs) {
            *a = a.saturating_add(*b);
        }
        self.total = self.total.saturating_add(other.total);
    }

    /// The same counts as an hdrhistogram, to read figures from or to serialize.
    pub fn histogram(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        if !self.is_empty() {
            for (index, &count) in self.counts[self.low..self.high].iter().enumerate() {
                if count > 0 {
                    let _ = h.record_n(value_for(self.low + index), count);
                }
            }
        }
        h
    }
}

impl PartialEq for Dense {
    fn eq(&self, other: &Dense) -> bool {
        let at = |d: &Dense, i: usize| d.counts.get(i).copied().unwrap_or(0);
        self.total == other.total
            && (0..COUNTS_LEN.min(self.high.max(other.high))).all(|i| at(self, i) == at(other, i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latencies(values: &[u64]) -> Latencies {
        let mut h = new_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        Latencies::from(&h)
    }

    /// The oracle is hdrhistogram itself: adding and merging by index gives the histogram that
    /// recording every value gives.
    #[test]
    fn adding_and_merging_by_index_equals_recording_the_values() {
        let a_values = [1, 2, 999, 1_000, 1_024, 20_000, 20_001, 3_600_000_000];
        let b_values = [5, 999, 123_456, 7_000_000];
        let mut a = Dense::default();
        a.add(&latencies(&a_values));
        let mut b = Dense::default();
        b.add(&latencies(&b_values));
        b.add(&latencies(&[5]));
        a.merge(&b);
        let mut want = new_histogram();
        for v in a_values.iter().chain(&b_values).chain(&[5]) {
            want.record(*v).unwrap();
        }
        assert_eq!(a.histogram(), want);
        assert_eq!(a.len(), 13);
        assert!(Dense::default().histogram().is_empty());
        let mut empty = Dense::default();
        empty.merge(&Dense::default());
        assert_eq!(empty, Dense::default());
        assert_ne!(a, b);
    }
}
