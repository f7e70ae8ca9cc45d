//! Reports sent (or made while the master was unreachable) and not yet acknowledged: kept so
//! they can be resent after a reconnect, within a bound on time covered and on bytes.

use std::collections::VecDeque;
use std::time::Duration;

use prost::Message;
use stampede_proto::Report;

/// How much measuring time the buffer covers at most.
pub(crate) const KEEP_FOR: Duration = Duration::from_secs(600);
/// Bytes of encoded reports kept at most.
pub(crate) const MAX_BYTES: usize = 64 * 1024 * 1024;
/// Reports kept at most, whatever the interval.
const MAX_REPORTS: usize = 36_000;
const MIN_REPORTS: usize = 16;

#[derive(Debug)]
pub(crate) struct Unacked {
    reports: VecDeque<Report>,
    bytes: usize,
    max_reports: usize,
    max_bytes: usize,
    /// Requests in reports that had to be forgotten (never counted by any master).
    pub(crate) forgotten_requests: u64,
}

impl Unacked {
    /// A buffer for reports made every `interval`.
    pub(crate) fn new(interval: Duration) -> Self {
        let per_interval = KEEP_FOR.as_millis() / interval.as_millis().max(1);
        let max_reports = usize::try_from(per_interval)
            .unwrap_or(MAX_REPORTS)
            .clamp(MIN_REPORTS, MAX_REPORTS);
        Self::with_limits(max_reports, MAX_BYTES)
    }

    pub(crate) fn with_limits(max_reports: usize, max_bytes: usize) -> Self {
        Self {
            reports: VecDeque::new(),
            bytes: 0,
            max_reports: max_reports.max(1),
            max_bytes,
            forgotten_requests: 0,
        }
    }

    /// Keeps a report; forgets the oldest ones beyond the bounds and returns how many requests
    /// they held.
    pub(crate) fn push(&mut self, report: Report) -> u64 {
        self.bytes += report.encoded_len();
        self.reports.push_back(report);
        let mut forgotten = 0;
        while self.reports.len() > self.max_reports
            || (self.bytes > self.max_bytes && self.reports.len() > 1)
        {
            let Some(old) = self.reports.pop_front() else {
                break;
            };
            self.bytes -= old.encoded_len();
            forgotten += old.series.iter().map(|s| s.count).sum::<u64>();
        }
        self.forgotten_requests += forgotten;
        forgotten
    }

    /// The master counted report `seq`.
    pub(crate) fn ack(&mut self, seq: u64) {
        if let Some(i) = self.reports.iter().position(|r| r.seq == seq)
            && let Some(r) = self.reports.remove(i)
        {
            self.bytes -= r.encoded_len();
        }
    }

    /// Every kept report, oldest first, for a resend.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Report> {
        self.reports.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.reports.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stampede_proto::Series;

    fn report(seq: u64, count: u64) -> Report {
        Report {
            seq,
            series: vec![Series {
                count,
                hdr: vec![0; 100],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn acks_remove_and_bounds_forget_the_oldest() {
        let mut u = Unacked::with_limits(3, usize::MAX);
        for seq in 1..=3 {
            assert_eq!(u.push(report(seq, 10)), 0);
        }
        u.ack(2);
        assert_eq!(u.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 3]);
        u.push(report(4, 10));
        assert_eq!(u.push(report(5, 7)), 10, "seq 1 forgotten");
        assert_eq!(u.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(u.forgotten_requests, 10);
    }

    #[test]
    fn the_byte_bound_holds() {
        let one = report(1, 1).encoded_len();
        let mut u = Unacked::with_limits(1000, one * 2);
        for seq in 1..=10 {
            u.push(report(seq, 1));
        }
        assert_eq!(u.len(), 2);
        assert_eq!(u.forgotten_requests, 8);
    }

    #[test]
    fn ten_minutes_of_reports_fit() {
        assert_eq!(Unacked::new(Duration::from_secs(1)).max_reports, 600);
        assert_eq!(Unacked::new(Duration::from_millis(100)).max_reports, 6000);
        assert_eq!(Unacked::new(Duration::from_secs(3600)).max_reports, 16);
    }
}
