//! What the swarm measured: reports sent and acknowledged, and the lag from an interval's end to
//! its Ack, per print window (to show a trend) and over the whole run.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

pub struct Stats {
    started: Instant,
    inner: Mutex<Inner>,
}

struct Inner {
    joined: u64,
    running: u64,
    sent: u64,
    acked: u64,
    /// Requests the sent and the acknowledged reports held.
    requests_sent: u64,
    requests_acked: u64,
    failed: u64,
    first_failure: Option<String>,
    /// The longest time between two heartbeats one session sent: this window and the run.
    /// Past the master's liveness timeout it is the swarm, not the master, that fell silent.
    beat_gap: Duration,
    beat_gap_total: Duration,
    /// Ack lag, µs: this window and the whole run.
    window: Histogram<u64>,
    total: Histogram<u64>,
}

fn lag_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds")
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            inner: Mutex::new(Inner {
                joined: 0,
                running: 0,
                sent: 0,
                acked: 0,
                requests_sent: 0,
                requests_acked: 0,
                failed: 0,
                first_failure: None,
                beat_gap: Duration::ZERO,
                beat_gap_total: Duration::ZERO,
                window: lag_histogram(),
                total: lag_histogram(),
            }),
        }
    }
}

impl Stats {
    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    pub fn joined(&self) {
        self.with(|s| s.joined += 1);
    }

    pub fn running(&self) {
        self.with(|s| s.running += 1);
    }

    /// A report holding `requests` requests went out.
    pub fn sent(&self, requests: u64) {
        self.with(|s| {
            s.sent += 1;
            s.requests_sent += requests;
        });
    }

    pub fn acked(&self, lag: Duration, requests: u64) {
        let us = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX).max(1);
        self.with(|s| {
            s.acked += 1;
            s.requests_acked += requests;
            s.window.saturating_record(us);
            s.total.saturating_record(us);
        });
    }

    /// A session sent a heartbeat `gap` after its previous one.
    pub fn beat(&self, gap: Duration) {
        self.with(|s| {
            s.beat_gap = s.beat_gap.max(gap);
            s.beat_gap_total = s.beat_gap_total.max(gap);
        });
    }

    pub fn failed(&self, why: &str) {
        self.with(|s| {
            s.failed += 1;
            s.first_failure.get_or_insert_with(|| why.to_owned());
        });
    }

    /// One progress line, and a new window.
    fn window_line(&self) -> String {
        let t = self.started.elapsed().as_secs();
        self.with(|s| {
            let line = format!(
                "swarm t={t}s joined={} running={} sent={} acked={} backlog={} failed={} lag_ms p50={} p99={} max={} beat_gap_max_ms={}",
                s.joined,
                s.running,
                s.sent,
                s.acked,
                s.sent - s.acked,
                s.failed,
                ms(s.window.value_at_quantile(0.5)),
                ms(s.window.value_at_quantile(0.99)),
                ms(s.window.max()),
                s.beat_gap.as_millis(),
            );
            s.window.reset();
            s.beat_gap = Duration::ZERO;
            line
        })
    }

    /// The summary the bench script reads.
    pub fn final_line(&self) -> String {
        self.with(|s| {
            let mut line = format!(
                "swarm total joined={} sent={} acked={} backlog={} requests_sent={} requests_acked={} failed={} lag_ms p50={} p99={} max={} beat_gap_max_ms={}",
                s.joined,
                s.sent,
                s.acked,
                s.sent - s.acked,
                s.requests_sent,
                s.requests_acked,
                s.failed,
                ms(s.total.value_at_quantile(0.5)),
                ms(s.total.value_at_quantile(0.99)),
                ms(s.total.max()),
                s.beat_gap_total.as_millis(),
            );
            if let Some(why) = &s.first_failure {
                line.push_str(&format!(" first_failure={why:?}"));
            }
            line
        })
    }
}

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

/// Prints a progress line every `every`.
pub async fn print_every(stats: std::sync::Arc<Stats>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        eprintln!("{}", stats.window_line());
    }
}
