//! A point-in-time picture of the run, built by the controller for the views (the TUI and the
//! headless printer), so that no view ever touches the aggregator itself.

use std::time::Duration;

use crate::aggregate::{Aggregator, SeriesPoint};
use crate::registry::Registry;
use crate::summary::PREFERRED_BASELINE;
use crate::tally::Tally;
use crate::valid_load::{Limit, ValidLoad};

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
            limit_5xx: None,
        }
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
        let Some(base) = by_arch
            .iter()
            .find(|r| r.label == PREFERRED_BASELINE)
            .or_else(|| by_arch.first())
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
    pub stage_target: u32,
    pub users_goal: u32,
    pub users_shift: i64,
    pub users_step: u32,
    pub valid_load: ValidLoad,
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
        let by_arch: Vec<Row> = arches
            .iter()
            .map(|(arch, t)| Row {
                limit_5xx: Some(progress.valid_load.limit(arch)),
                ..Row::from_tally(arch.clone(), arch.clone(), arch_rps(arch), t)
            })
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
                rps: w.rps,
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
            stage_target: progress.stage_target,
            users_goal: progress.users_goal,
            users_running: workers.iter().map(|w| w.users).sum(),
            users_shift: progress.users_shift,
            users_step: progress.users_step,
            rps_now,
            totals: Row::from_tally("total".into(), String::new(), rps_now, &agg.totals()),
            ratios: Ratio::all(&by_arch),
            by_arch,
            by_target,
            workers,
            series: agg.series().to_vec(),
            notices: progress.notices,
        }
    }
}
