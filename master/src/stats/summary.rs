//! The summary of a run from what was counted: results per group from the aggregator's tallies,
//! with the facts only the run knows (times, workers, the scenario as run, the capacity search)
//! and the cost. Also the `abort_on_fail` check, which judges a threshold on the cumulative
//! results while the run goes.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::Aggregator;
use super::phases::figures;
use crate::outcome::{
    self, CapacityReport, Comparison, Delays, Latency, MasterLoad, RequestResults, Results, SCHEMA,
    Summary, TargetResults, WorkerRecord,
};
use crate::scenario::{self, Scenario, Scope, Threshold};

/// What the summary is built from, besides the aggregate.
pub struct RunFacts<'a> {
    pub scenario: &'a Scenario,
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
    /// How long load was applied.
    pub duration: Duration,
    pub workers: Vec<WorkerRecord>,
    pub capacity: Option<CapacityReport>,
    /// Why the run stopped before its plan ended.
    pub aborted: Option<String>,
    /// How far behind the master was in counting.
    pub master: Option<MasterLoad>,
}

/// The summary of everything counted so far, thresholds not yet judged.
pub fn summary(agg: &Aggregator, facts: RunFacts) -> Summary {
    let d = facts.duration.as_secs_f64();
    let scenario_json = scenario::redacted(&facts.scenario.file);
    let series = agg.series().to_vec();
    let phases = agg.phases();
    let mut totals = agg.totals().results(d, true);
    totals.rps_peak = series.iter().map(|p| p.rps).reduce(f64::max);
    totals.phases_ms = figures(&phases.totals());
    let mut phases_by_arch = phases.by_arch();
    let by_arch: BTreeMap<String, Results> = agg
        .by_arch()
        .iter()
        .map(|(arch, t)| {
            let mut r = t.results(d, true);
            r.rps_peak = series
                .iter()
                .filter_map(|p| p.by_arch.get(arch).map(|a| a.rps))
                .reduce(f64::max);
            if let Some(set) = phases_by_arch.remove(arch) {
                r.phases_ms = figures(&set);
            }
            (arch.clone(), r)
        })
        .collect();
    let by_target = agg
        .targets()
        .iter()
        .zip(agg.by_target())
        .zip(phases.by_target(agg.targets().len()))
        .map(|((info, t), set)| {
            let mut results = t.results(d, true);
            results.phases_ms = figures(&set);
            let entry = TargetResults {
                arch: info.arch.clone(),
                results,
            };
            (info.name.clone(), entry)
        })
        .collect();
    let names: Vec<&str> = agg.targets().iter().map(|t| t.name.as_str()).collect();
    let failures = phases.failures(&names);
    let requests = &facts.scenario.file.requests;
    let by_request = agg
        .by_request_arch()
        .iter()
        .map(|((request, arch), t)| {
            let r = requests.get(*request as usize);
            RequestResults {
                request: r.map(|r| r.name.clone()).unwrap_or_default(),
                method: r.map(|r| r.method.clone()).unwrap_or_default(),
                arch: arch.clone(),
                results: t.results(d, true),
            }
        })
        .collect();
    let mut summary = Summary {
        schema: SCHEMA.to_owned(),
        run_id: agg.run_id().to_owned(),
        name: facts.scenario.name().to_owned(),
        started_at: humantime::format_rfc3339_millis(facts.started_at).to_string(),
        ended_at: humantime::format_rfc3339_millis(facts.ended_at).to_string(),
        duration_s: d,
        scenario: scenario_json,
        totals,
        comparison: Comparison::of(&by_arch),
        by_arch,
        by_target,
        series,
        workers: facts.workers,
        thresholds: Vec::new(),
        dropped: agg.dropped(),
        aborted: facts.aborted,
        interval_s: agg.interval_ms() as f64 / 1000.0,
        by_request,
        capacity: facts.capacity,
        cost: None,
        send_lag_ms: agg.send_lag().map(|h| Delays {
            count: h.len(),
            ms: Latency::of(h),
        }),
        late_requests: agg.late_requests(),
        master: facts.master,
        ended: None,
        outages: Vec::new(),
        recovered: None,
        failures,
    };
    summary.cost = (facts.scenario.file.cost.as_ref()).map(|c| outcome::cost_of(c, &summary));
    outcome::confidence::attach(&mut summary);
    summary
}

/// Judges an `abort_on_fail` threshold on the cumulative results `elapsed` into the run:
/// `Some(value)` when it fails now. Not judged before its delay, nor on a scope with no
/// requests yet.
pub fn fails_now(t: &Threshold, agg: &Aggregator, elapsed: Duration) -> Option<f64> {
    if !t.abort_on_fail || elapsed < t.delay {
        return None;
    }
    let seconds = elapsed.as_secs_f64();
    let tally = match &t.scope {
        Scope::All => Some(agg.totals()),
        Scope::Arch(a) => agg.by_arch().remove(a),
        Scope::Target(name) => {
            let index = agg.targets().iter().position(|info| &info.name == name);
            index.and_then(|i| agg.by_target().into_iter().nth(i))
        }
    };
    let results = tally.map(|t| t.results(seconds, false));
    let value = outcome::measured(t, results.as_ref(), agg.dropped())?;
    (!t.op.holds(value, t.bound)).then_some(value)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use stampede_proto::hdr::new_histogram;

    use super::*;
    use crate::stats::{Class, Latencies, Report, Series, TargetInfo};

    const SCENARIO: &str = r#"
name = "late"
run_time = "10s"
[[target]]
name = "arm"
url = "http://127.0.0.1:1"
arch = "arm64"
[[request]]
name = "r"
[load]
users = 1
"#;

    fn report(seq: u64, end_ms: u64, n: u64) -> Report {
        let mut h = new_histogram();
        h.record_n(1000, n).unwrap();
        Report {
            run_id: "run".into(),
            worker_id: "w".into(),
            seq,
            start_ms: end_ms - 1000,
            end_ms,
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
                count: n,
                hist: Latencies::from(&h),
            }],
            send_lag: None,
            phases: Vec::new(),
            reasons: Vec::new(),
        }
    }

    /// A report that comes after its interval closed is counted in the totals and said to be
    /// late in the summary, instead of dropping out of the series silently.
    #[test]
    fn late_requests_reach_the_summary() {
        let target = TargetInfo {
            name: "arm".into(),
            arch: "arm64".into(),
        };
        let mut agg = Aggregator::new("run".into(), 1000, vec![target], 1);
        agg.worker_started("w", 0);
        agg.ingest("w", &report(2, 2000, 5)).unwrap();
        agg.close_intervals(3500);
        // Interval 1 is closed by now: its report is late.
        agg.ingest("w", &report(1, 1000, 3)).unwrap();
        agg.close_all();
        let scenario = crate::scenario::parse(Path::new("late.toml"), SCENARIO, &[]).unwrap();
        let summary = summary(
            &agg,
            RunFacts {
                scenario: &scenario,
                started_at: SystemTime::now(),
                ended_at: SystemTime::now(),
                duration: Duration::from_secs(2),
                workers: Vec::new(),
                capacity: None,
                aborted: None,
                master: None,
            },
        );
        assert_eq!(summary.totals.requests, 8);
        assert_eq!(summary.late_requests, 3);
        let in_series: u64 = summary
            .series
            .iter()
            .flat_map(|p| p.by_arch.values())
            .map(|a| a.requests)
            .sum();
        assert_eq!(in_series + summary.late_requests, summary.totals.requests);
    }
}
