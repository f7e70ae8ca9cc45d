//! What the views are shown: a [`Snapshot`] built from the aggregator, the fleet and the
//! pacing, about once per report interval. The series travels as increments: each snapshot
//! carries only the points closed since the last one (without their histograms).

use std::time::Duration;

use super::fleet::Fleet;
use crate::outcome::{PHASES, PhaseFigures, SeriesPoint};
use crate::scenario::ValidLoad;
use crate::stats::{Aggregator, PhaseSet, Tally, max_ms, quantile_ms};
use crate::view::{PhaseRow, Ratio, Row, Snapshot, WorkerRow};

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
    let latency = t.latency.histogram();
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
        p50_ms: quantile_ms(&latency, 0.5),
        p95_ms: quantile_ms(&latency, 0.95),
        p99_ms: quantile_ms(&latency, 0.99),
        max_ms: max_ms(&latency),
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

/// The rows of one phase set: phases that happened, in `PHASES` order.
fn phase_rows(target: &str, arch: &str, set: &PhaseSet) -> impl Iterator<Item = PhaseRow> {
    PHASES
        .iter()
        .zip(set)
        .filter(|(_, l)| !l.is_empty())
        .map(move |(phase, l)| PhaseRow {
            target: target.to_owned(),
            arch: arch.to_owned(),
            phase,
            figures: PhaseFigures::of(&l.histogram()),
        })
}

/// Phases per arch, then per (target, arch), as the views show them.
fn phases(agg: &Aggregator) -> Vec<PhaseRow> {
    let book = agg.phases();
    let mut rows: Vec<PhaseRow> = book
        .by_arch()
        .iter()
        .flat_map(|(arch, set)| phase_rows("", arch, set).collect::<Vec<_>>())
        .collect();
    for (target, arch, set) in book.cells() {
        let name = agg.targets().get(target as usize).map_or("?", |t| &t.name);
        rows.extend(phase_rows(name, arch, set));
    }
    rows
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
        .map(|w| {
            let (users, cpu_percent) = w.liveness.reported();
            WorkerRow {
                id: w.id.clone(),
                arch: w.arch.clone(),
                hostname: w.hostname.clone(),
                users,
                rps: w.rps,
                cpu_percent,
                heartbeat_age: w.liveness.silence(),
                state: w.state.label(),
            }
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
        master_wait: Duration::ZERO,
        notices: progress.notices,
        phases: phases(agg),
        failures: {
            let names: Vec<&str> = agg.targets().iter().map(|t| t.name.as_str()).collect();
            agg.phases().failures(&names)
        },
    }
}

#[cfg(test)]
mod tests {
    use stampede_proto::hdr::new_histogram;

    use super::*;
    use crate::stats::{Class, Latencies, Report, Series, TargetInfo};

    fn progress() -> Progress {
        Progress {
            name: "r".into(),
            elapsed: Duration::ZERO,
            duration: Duration::ZERO,
            stage: (1, 1),
            stage_target: 0,
            users_goal: 0,
            users_shift: 0,
            users_step: 1,
            notices: Vec::new(),
        }
    }

    fn report(seq: u64) -> Report {
        let mut h = new_histogram();
        h.record_n(1000, 10).unwrap();
        Report {
            run_id: "run".into(),
            worker_id: "w".into(),
            seq,
            start_ms: (seq - 1) * 1000,
            end_ms: seq * 1000,
            users: 1,
            is_final: false,
            dropped: 0,
            completed_stage: 0,
            series: vec![Series {
                target: 0,
                request: 0,
                arch: "arm64".into(),
                class: Class::Status(2),
                unexpected: false,
                count: 10,
                hist: Latencies::from(&h),
            }],
            send_lag: None,
            phases: Vec::new(),
            reasons: Vec::new(),
        }
    }

    /// The views are given each point once, without its histogram; the summary keeps it.
    #[test]
    fn snapshots_carry_only_the_new_points_without_histograms() {
        let target = TargetInfo {
            name: "arm".into(),
            arch: "arm64".into(),
        };
        let mut agg = Aggregator::new("run".into(), 1000, vec![target], 1);
        let fleet = Fleet::new(Default::default(), Duration::from_secs(3));
        let valid = ValidLoad::default();
        for seq in 1..=3 {
            agg.ingest("w", &report(seq)).unwrap();
        }
        agg.close_intervals(3500);
        let first = snapshot(progress(), &valid, &agg, &fleet, 0);
        assert_eq!(first.new_points.len(), 2);
        let shown = agg.series().len();
        agg.close_all();
        let second = snapshot(progress(), &valid, &agg, &fleet, shown);
        assert_eq!(second.new_points.len(), 1);
        assert_eq!(second.new_points[0].t, 3.0);
        let points = first.new_points.iter().chain(&second.new_points);
        assert!(
            points
                .flat_map(|p| p.by_arch.values())
                .all(|a| a.hdr.is_none())
        );
        assert!(
            agg.series()
                .iter()
                .all(|p| p.by_arch["arm64"].hdr.is_some())
        );
        assert_eq!(second.totals.requests, 30);
    }
}
