//! How far behind the master is in counting: how long each report waited between coming off
//! its worker's stream and being counted (and acknowledged), and how much later than usual it
//! came off the stream at all (a master short of CPU reads its sockets late: that wait is in the
//! transport, where no queue of ours sees it). When either passes one report interval the master
//! is behind: it says so (a notice, the status views, `/metrics`, the summary) while
//! acknowledgements come later and workers keep their reports until then. Silence is judged
//! only while the master is calm: nothing waited, and the runtime had idle time (so every
//! connection with something to read was read).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use stampede_proto::hdr::new_histogram;

use crate::outcome::{Delays, Latency, MasterLoad};

/// A clock tick this late means the runtime is short of CPU.
const BUSY_TICK: Duration = Duration::from_millis(500);
/// A runtime busy this share of a look's time had no idle moment to spare: sockets wait.
const SATURATED: f64 = 0.9;
/// How often the runtime's busy time is looked at.
const BUSY_LOOK: Duration = Duration::from_secs(1);

pub struct Backlog {
    /// Past this wait the master is behind.
    limit: Duration,
    /// Every report's wait, µs.
    waits: Histogram<u64>,
    /// How much later than its connection's earliest each report came off the stream, µs.
    transport: Histogram<u64>,
    /// Per connection: the least (master's run time - report's end) seen, ms; its worker's
    /// clock offset plus the network's least delay.
    offsets: HashMap<u64, i64>,
    /// The runtime's busy time at the last look, and when that was.
    busy_seen: (Duration, Instant),
    saturated_s: f64,
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
            transport: new_histogram(),
            offsets: HashMap::new(),
            busy_seen: (runtime_busy(), Instant::now()),
            saturated_s: 0.0,
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

    /// A report of connection `conn` whose interval ended at `end_ms` (the worker's clock) came
    /// off the stream at `at_ms` (the run's clock): how much later than the connection's
    /// earliest it came is time it spent in the transport, unread.
    pub fn arrived(&mut self, conn: u64, at_ms: u64, end_ms: u64) {
        let offset = i64::try_from(at_ms).unwrap_or(i64::MAX) - i64::try_from(end_ms).unwrap_or(0);
        let least = self.offsets.entry(conn).or_insert(offset);
        *least = (*least).min(offset);
        let late = Duration::from_millis(u64::try_from(offset - *least).unwrap_or(0));
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        self.transport.saturating_record(us.max(1));
        self.window = self.window.max(late);
        if late > self.limit {
            self.busy_at = Instant::now();
        }
    }

    /// A connection ended: its offset goes with it.
    pub fn gone(&mut self, conn: u64) {
        self.offsets.remove(&conn);
    }

    /// The controller's clock ticked `late` after it was due, with `queued` of `capacity`
    /// events waiting: either says the runtime is short of CPU, as does a runtime that was
    /// busy nearly all the time since the last look.
    pub fn ticked(&mut self, late: Duration, queued: usize, capacity: usize) {
        if late > BUSY_TICK || queued * 2 > capacity {
            self.busy_at = Instant::now();
        }
        let (busy_then, then) = self.busy_seen;
        let span = then.elapsed();
        if span >= BUSY_LOOK {
            let busy = runtime_busy();
            let share = busy.saturating_sub(busy_then).as_secs_f64() / span.as_secs_f64();
            self.busy_seen = (busy, Instant::now());
            if share >= SATURATED {
                self.busy_at = Instant::now();
                self.saturated_s += span.as_secs_f64();
            }
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
            transport_ms: Some(Delays {
                count: self.transport.len(),
                ms: Latency::of(&self.transport),
            }),
            saturated_s: self.saturated_s,
        }
    }
}

/// The runtime's busy time so far, per worker thread (its mean: the share of one thread's time,
/// whatever their number).
fn runtime_busy() -> Duration {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return Duration::ZERO;
    };
    let metrics = handle.metrics();
    let workers = metrics.num_workers().max(1);
    let total: Duration = (0..workers)
        .map(|w| metrics.worker_total_busy_duration(w))
        .sum();
    total / u32::try_from(workers).unwrap_or(u32::MAX)
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

    #[test]
    fn reports_later_than_their_connections_earliest_put_the_master_behind() {
        let mut b = Backlog::new(Duration::from_secs(1));
        // Connection 1's worker started 200 ms after the run: its reports come 200 ms "late"
        // by its clock, which is no lateness at all.
        b.arrived(1, 1_205, 1_000);
        b.arrived(1, 2_210, 2_000);
        assert_eq!(b.look(Duration::from_secs(1)), Duration::from_millis(5));
        // Then one arrives 1.8 s later than that: it sat unread in the transport.
        b.arrived(1, 5_000, 3_000);
        assert!(b.calm_for() < Duration::from_millis(100));
        b.look(Duration::from_secs(1));
        assert!(b.notices[0].starts_with("master behind"), "{:?}", b.notices);
        let r = b.report();
        let t = r.transport_ms.unwrap();
        assert_eq!(t.count, 3);
        assert!((t.ms.max - 1795.0).abs() < 10.0, "{t:?}");
        b.gone(1);
        // A new connection starts from its own earliest.
        b.arrived(1, 9_000, 1_000);
        assert_eq!(b.look(Duration::from_secs(1)), Duration::ZERO);
    }
}
