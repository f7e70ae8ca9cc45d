//! A point-in-time picture of the run, built by the controller for the views (the TUI and the
//! headless printer), so that no view ever touches the aggregator itself.

use std::time::Duration;

use crate::aggregate::{Aggregator, SeriesPoint};
use crate::registry::Registry;
use crate::tally::Tally;

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
    pub error_kinds: [u64; 4],
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Row {
    fn from_tally(label: String, arch: String, rps_now: f64, t: &Tally) -> Row {
        Row {
            label,
            arch,
            rps_now,
            requests: t.requests,
            s2xx: t.status[1],
            s5xx: t.count_5xx(),
            ratio_5xx: t.ratio_5xx(),
            errors: t.error_count(),
            status: t.status,
            error_kinds: t.errors,
            p50_ms: t.quantile_ms(0.5),
            p95_ms: t.quantile_ms(0.95),
            p99_ms: t.quantile_ms(0.99),
            max_ms: t.max_ms(),
        }
    }
}

/// One worker as the views show it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerRow {
    pub id: String,
    pub arch: String,
    pub hostname: String,
    pub users: u32,
    pub cpu_percent: f32,
    pub heartbeat_age: Duration,
    pub state: &'static str,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub name: String,
    pub elapsed: Duration,
    pub duration: Duration,
    /// Stage k of n.
    pub stage: (usize, usize),
    pub users_goal: u32,
    pub users_running: u32,
    pub rps_now: f64,
    pub totals: Row,
    pub by_arch: Vec<Row>,
    pub by_target: Vec<Row>,
    pub workers: Vec<WorkerRow>,
    pub series: Vec<SeriesPoint>,
    /// Lines worth telling the user about (a worker left, a report was rejected).
    pub notices: Vec<String>,
}

/// The parts of a snapshot that come from the controller's own state.
pub struct Progress {
    pub name: String,
    pub elapsed: Duration,
    pub duration: Duration,
    pub stage: (usize, usize),
    pub users_goal: u32,
    pub notices: Vec<String>,
}

impl Snapshot {
    pub fn build(progress: Progress, agg: &Aggregator, registry: &Registry) -> Snapshot {
        let last = agg.series().last();
        let arch_rps = |arch: &str| {
            last.and_then(|p| p.by_arch.get(arch))
                .map_or(0.0, |a| a.rps)
        };
        let target_rps = |name: &str| {
            last.and_then(|p| p.by_target.get(name))
                .copied()
                .unwrap_or(0.0)
        };
        // Declared arches show from the start, even before their first request.
        let mut arches = agg.by_arch();
        for t in agg.targets() {
            arches.entry(t.arch.clone()).or_default();
        }
        let by_arch = arches
            .iter()
            .map(|(arch, t)| Row::from_tally(arch.clone(), arch.clone(), arch_rps(arch), t))
            .collect();
        let by_target = agg
            .targets()
            .iter()
            .zip(agg.by_target())
            .map(|(info, t)| {
                Row::from_tally(
                    info.name.clone(),
                    info.arch.clone(),
                    target_rps(&info.name),
                    &t,
                )
            })
            .collect();
        let rps_now = last.map_or(0.0, |p| p.rps);
        let workers: Vec<WorkerRow> = registry
            .live()
            .map(|w| WorkerRow {
                id: w.id.clone(),
                arch: w.arch.clone(),
                hostname: w.hostname.clone(),
                users: w.users,
                cpu_percent: w.cpu_percent,
                heartbeat_age: w.last_seen.elapsed(),
                state: w.state.label(),
            })
            .collect();
        Snapshot {
            name: progress.name,
            elapsed: progress.elapsed,
            duration: progress.duration,
            stage: progress.stage,
            users_goal: progress.users_goal,
            users_running: workers.iter().map(|w| w.users).sum(),
            rps_now,
            totals: Row::from_tally("total".into(), String::new(), rps_now, &agg.totals()),
            by_arch,
            by_target,
            workers,
            series: agg.series().to_vec(),
            notices: progress.notices,
        }
    }
}
