//! A point-in-time picture of the run, built by the run (`run::show`) for the views, so that
//! no view ever touches the aggregator or the controller.

use std::time::Duration;

use crate::outcome::{self, FailureRow, PhaseFigures, SeriesPoint};
use crate::scenario::Limit;

/// One line of the comparison table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    pub label: String,
    /// The arch: the serving arch for arch rows, the declared one for target rows.
    pub arch: String,
    /// Requests per second in the last closed interval.
    pub rps_now: f64,
    pub requests: u64,
    pub s2xx: u64,
    pub s5xx: u64,
    pub ratio_5xx: f64,
    /// Transport errors.
    pub errors: u64,
    /// Responses by status class; index 0 is 1xx.
    pub status: [u64; 5],
    /// Transport errors by kind, in `tally::ERROR_KINDS` order.
    pub error_kinds: [u64; 5],
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// The 5XX limit of valid load, on arch rows.
    pub limit_5xx: Option<Limit>,
}

impl Row {
    /// Whether the load on this arch is valid (5XX under its limit); `None` on other rows.
    pub fn valid_load(&self) -> Option<bool> {
        self.limit_5xx.map(|l| l.holds(self.ratio_5xx))
    }
}

/// One arch against the baseline (amd64 when present, as in the summary's comparison).
#[derive(Debug, Clone, PartialEq)]
pub struct Ratio {
    pub arch: String,
    pub baseline: String,
    /// Throughput over the run so far, this arch's over the baseline's; `None` while the
    /// baseline has no requests.
    pub rps: Option<f64>,
    /// p99 over the baseline's (lower is better); `None` while the baseline has none.
    pub p99: Option<f64>,
}

impl Ratio {
    /// Every non-baseline arch row against the baseline row.
    pub fn all(by_arch: &[Row]) -> Vec<Ratio> {
        let Some(base) = outcome::baseline(by_arch.iter().map(|r| r.label.as_str()))
            .and_then(|b| by_arch.iter().find(|r| r.label == b))
        else {
            return Vec::new();
        };
        let div = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        by_arch
            .iter()
            .filter(|r| r.label != base.label)
            .map(|r| Ratio {
                arch: r.label.clone(),
                baseline: base.label.clone(),
                rps: div(r.requests as f64, base.requests as f64),
                p99: div(r.p99_ms, base.p99_ms),
            })
            .collect()
    }
}

/// One worker as the views show it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRow {
    pub id: String,
    pub arch: String,
    pub hostname: String,
    pub users: u32,
    /// Requests per second in its last report.
    pub rps: f64,
    pub cpu_percent: f32,
    pub heartbeat_age: Duration,
    pub state: &'static str,
}

/// One phase of one arch (target empty) or one (target, arch), so far.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PhaseRow {
    pub target: String,
    pub arch: String,
    /// One of `outcome::PHASES`.
    pub phase: &'static str,
    pub figures: PhaseFigures,
}

/// `phase`'s p99 (ms) of `arch` among arch rows; `None` while it has not happened.
pub fn phase_p99(rows: &[PhaseRow], arch: &str, phase: &str) -> Option<f64> {
    rows.iter()
        .find(|r| r.target.is_empty() && r.arch == arch && r.phase == phase)
        .map(|r| r.figures.p99)
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub name: String,
    pub elapsed: Duration,
    pub duration: Duration,
    /// Stage k of n.
    pub stage: (usize, usize),
    /// The level the current stage is heading for.
    pub stage_target: u32,
    /// The plan's level now (users), including the live adjustment.
    pub users_goal: u32,
    pub users_running: u32,
    /// Users added (or removed, when negative) from the live view.
    pub users_shift: i64,
    /// Users one `+`/`-` adds or removes.
    pub users_step: u32,
    pub rps_now: f64,
    pub totals: Row,
    pub by_arch: Vec<Row>,
    pub by_target: Vec<Row>,
    /// Each arch against the baseline.
    pub ratios: Vec<Ratio>,
    pub workers: Vec<WorkerRow>,
    /// The series points closed since the previous snapshot (histograms left out): views that
    /// chart the run keep them.
    pub new_points: Vec<SeriesPoint>,
    /// Requests counted after their interval had closed: in the totals, not in the series.
    pub late_requests: u64,
    /// The longest a report waited in the master to be counted since the last snapshot.
    pub master_wait: Duration,
    /// Lines worth telling the user about (a worker left, a report was rejected).
    pub notices: Vec<String>,
    /// Phases so far: per serving arch (target empty), then per (target, arch).
    pub phases: Vec<PhaseRow>,
    /// Failed requests by (target, kind, reason) so far, largest first within a target.
    pub failures: Vec<FailureRow>,
}
