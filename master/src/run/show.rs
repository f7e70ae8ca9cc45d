//! What the views are shown: a [`Snapshot`] built from the aggregator, the fleet and the
//! pacing, about once per report interval. The series travels as increments: each snapshot
//! carries only the points closed since the last one (without their histograms).

use std::time::Duration;

use super::fleet::Fleet;
use crate::outcome::SeriesPoint;
use crate::scenario::ValidLoad;
use crate::stats::{Aggregator, Tally};
use crate::view::{Ratio, Row, Snapshot, WorkerRow};

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
    pub notices: Vec<String>,
}

fn row(label: String, arch: String, rps_now: f64, t: &Tally) -> Row {
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

/// The series points after the first `shown`, without their histograms (views draw figures).
fn new_points(agg: &Aggregator, shown: usize) -> Vec<SeriesPoint> {
    agg.series()
        .iter()
        .skip(shown)
        .map(|p| {
            let mut p = p.clone();
            for a in p.by_arch.values_mut() {
                a.hdr = None;
            }
            p
        })
        .collect()
}

pub fn snapshot(
    progress: Progress,
    valid_load: &ValidLoad,
    agg: &Aggregator,
    fleet: &Fleet,
    shown: usize,
) -> Snapshot {
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
            limit_5xx: Some(valid_load.limit(arch)),
            ..row(arch.clone(), arch.clone(), arch_rps(arch), t)
        })
        .collect();
    let by_target = agg
        .targets()
        .iter()
        .zip(agg.by_target())
        .map(|(info, t)| {
            row(
                info.name.clone(),
                info.arch.clone(),
                target_rps(&info.name),
                &t,
            )
        })
        .collect();
    let rps_now = last.map_or(0.0, |p| p.rps);
    let workers: Vec<WorkerRow> = fleet
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
        totals: row("total".into(), String::new(), rps_now, &agg.totals()),
        ratios: Ratio::all(&by_arch),
        by_arch,
        by_target,
        workers,
        new_points: new_points(agg, shown),
        late_requests: agg.late_requests(),
        notices: progress.notices,
    }
}
