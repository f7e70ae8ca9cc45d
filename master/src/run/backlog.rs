//! How far behind the master is in counting: how long each report waited between coming off
//! its worker's stream and being counted (and acknowledged). When the wait passes one report
//! interval the master is behind: it says so (a notice, the status views, `/metrics`, the
//! summary) while acknowledgements come later and workers keep their reports until then; no
//! worker is taken for silent meanwhile (their connections' liveness is apart).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use stampede_proto::hdr::new_histogram;

use crate::outcome::{Delays, Latency, MasterLoad};

/// A clock tick this late means the runtime is short of CPU.
const BUSY_TICK: Duration = Duration::from_millis(500);

pub struct Backlog {
    /// Past this wait the master is behind.
    limit: Duration,
    /// Every report's wait, µs.
    waits: Histogram<u64>,
    /// The longest wait since the last look.
    window: Duration,
    behind: bool,
    /// Looks at which it was behind, and the time they cover.
    behind_windows: u64,
    behind_s: f64,
    /// The last moment the master was seen busy beyond keeping up (a late tick, a full queue,
    /// a long wait).
    busy_at: Instant,
    /// Lines worth telling the user, taken by the controller.
    pub notices: Vec<String>,
}

impl Backlog {
    pub fn new(report_interval: Duration) -> Backlog {
        Backlog {
            limit: report_interval,
            waits: new_histogram(),
            window: Duration::ZERO,
            behind: false,
            behind_windows: 0,
            behind_s: 0.0,
            busy_at: Instant::now(),
            notices: Vec::new(),
        }
    }

    /// A report waited `wait` before it was counted.
    pub fn queued(&mut self, wait: Duration) {
        let us = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        self.waits.saturating_record(us.max(1));
        self.window = self.window.max(wait);
        if wait > self.limit {
            self.busy_at = Instant::now();
        }
    }

    /// The controller's clock ticked `late` after it was due, with `queued` of `capacity`
    /// events waiting: either says the runtime is short of CPU.
    pub fn ticked(&mut self, late: Duration, queued: usize, capacity: usize) {
        if late > BUSY_TICK || queued * 2 > capacity {
            self.busy_at = Instant::now();
        }
    }

    /// How long the master has kept up.
    pub fn calm_for(&self) -> Duration {
        self.busy_at.elapsed()
    }

    /// Closes the window of the last `span`: returns its longest wait, and says when the
    /// master falls behind or catches up.
    pub fn look(&mut self, span: Duration) -> Duration {
        let worst = std::mem::take(&mut self.window);
        let behind = worst > self.limit;
        if behind {
            self.behind_windows += 1;
            self.behind_s += span.as_secs_f64();
        }
        if behind != self.behind {
            let line = if behind {
                format!(
                    "master behind: reports wait up to {:.1} s to be counted; acknowledgements come later, workers keep their reports",
                    worst.as_secs_f64()
                )
            } else {
                "master caught up: reports are counted as they come".to_owned()
            };
            tracing::warn!("{line}");
            self.notices.push(line);
            self.behind = behind;
        }
        worst
    }

    pub fn report(&self) -> MasterLoad {
        MasterLoad {
            queue_ms: Delays {
                count: self.waits.len(),
                ms: Latency::of(&self.waits),
            },
            behind_s: self.behind_s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_past_one_interval_are_said_once_and_summed() {
        let mut b = Backlog::new(Duration::from_secs(1));
        b.queued(Duration::from_millis(20));
        assert_eq!(b.look(Duration::from_secs(1)), Duration::from_millis(20));
        assert!(b.notices.is_empty());
        b.queued(Duration::from_millis(1500));
        b.look(Duration::from_secs(1));
        b.queued(Duration::from_millis(2500));
        b.look(Duration::from_secs(1));
        b.queued(Duration::from_millis(5));
        b.look(Duration::from_secs(1));
        assert_eq!(b.notices.len(), 2, "{:?}", b.notices);
        assert!(b.notices[0].starts_with("master behind"));
        assert!(b.notices[1].starts_with("master caught up"));
        let r = b.report();
        assert_eq!(r.queue_ms.count, 4);
        assert_eq!(r.behind_s, 2.0);
        assert!((r.queue_ms.ms.max - 2500.0).abs() < 5.0);
    }
}
