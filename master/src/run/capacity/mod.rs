//! Capacity search per arch: one [`Search`] per declared arch, fed the closed intervals of the
//! time series, turned into per-target levels for dispatch (users in the closed model, req/s
//! in the open one). Each arch climbs on its own; one that has found its knee holds it (or
//! stops) while the others go on.

mod search;

use std::collections::BTreeMap;
use std::time::Duration;

use search::{Interval, KeepUp, Rules, Search};
use serde::{Deserialize, Serialize};

use super::dispatch::{Ramp, split_weighted};
use crate::outcome::{
    self, ArchCapacity, CapacityComparison, CapacityReport, KneeUncertainty, SeriesPoint,
};
use crate::scenario::{After, Arrivals, CapacitySpec, Model, Target};

/// Open model: the share of a level's offered requests that may go unanswered (beyond chance)
/// and the level still pass.
const KEEP_UP_TOLERANCE: f64 = 0.03;

/// One arch under search and the targets its level is split over.
#[derive(Clone, Serialize, Deserialize)]
struct ArchSearch {
    arch: String,
    search: Search,
    /// The confirmation of the knee, once every arch has one.
    confirm: Option<Search>,
    ramp: Ramp,
    targets: Vec<usize>,
    weights: Vec<u32>,
}

/// Drives the searches and turns them into per-target levels. Its state is journaled, so a
/// resumed run searches on where it stood.
#[derive(Clone, Serialize, Deserialize)]
pub struct CapacityDriver {
    spec: CapacitySpec,
    model: Model,
    rules: Rules,
    confirming: bool,
    arches: Vec<ArchSearch>,
    target_count: usize,
    interval_s: f64,
    /// Series points already fed to the searches.
    seen: usize,
}

impl CapacityDriver {
    /// A search per declared arch of `targets`, starting now (`now` into the run), in levels of
    /// `model`: users, or requests per second.
    pub fn new(
        spec: &CapacitySpec,
        model: Model,
        targets: &[Target],
        interval: Duration,
        spawn_rate: Option<f64>,
        now: Duration,
    ) -> CapacityDriver {
        let rules = Rules {
            start: spec.start,
            step: spec.step(),
            fine_step: spec.fine_step(),
            max: spec.max,
            hold_s: spec.hold.as_secs_f64(),
            settle_s: spec.settle.as_secs_f64(),
            ramp_per_s: spawn_rate,
            slo_5xx: spec.slo_5xx,
            slo_p99_ms: spec.slo_p99.map(|d| d.as_secs_f64() * 1000.0),
            consecutive: spec.consecutive,
            // A rate is sustained only if it is answered: in the open model, load the servers
            // cannot keep up with queues up silently until the queue is full.
            keep_up: (model == Model::Open).then_some(KeepUp {
                tolerance: KEEP_UP_TOLERANCE,
                poisson: true,
            }),
        };
        let mut arches: Vec<ArchSearch> = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            let at = match arches.iter().position(|a| a.arch == t.arch) {
                Some(at) => at,
                None => {
                    arches.push(ArchSearch {
                        arch: t.arch.clone(),
                        search: Search::new(rules.clone(), now.as_secs_f64()),
                        confirm: None,
                        ramp: Ramp::new(spawn_rate),
                        targets: Vec::new(),
                        weights: Vec::new(),
                    });
                    arches.len() - 1
                }
            };
            arches[at].targets.push(i);
            arches[at].weights.push(t.weight);
        }
        CapacityDriver {
            spec: spec.clone(),
            model,
            rules,
            confirming: false,
            arches,
            target_count: targets.len(),
            interval_s: interval.as_secs_f64(),
            seen: 0,
        }
    }

    /// Open model: how the arrivals are spaced (Poisson unless told), for how much their count
    /// may fall short of the rate by chance alone.
    pub fn with_arrivals(mut self, arrivals: Arrivals) -> CapacityDriver {
        let poisson = arrivals == Arrivals::Poisson;
        if let Some(k) = self.rules.keep_up.as_mut() {
            k.poisson = poisson;
        }
        for a in &mut self.arches {
            a.search.set_keep_up(self.rules.keep_up);
        }
        self
    }

    /// Feeds the intervals closed since the last call, `now` into the run; returns what is
    /// worth telling.
    pub fn observe(&mut self, series: &[SeriesPoint], now: Duration) -> Vec<String> {
        let now_s = now.as_secs_f64();
        let mut said = Vec::new();
        for point in series.iter().skip(self.seen) {
            for a in &mut self.arches {
                let iv = interval_of(point, &a.arch, self.interval_s);
                let search = a.confirm.as_mut().unwrap_or(&mut a.search);
                if let Some(line) = search.observe(&iv, now_s) {
                    said.push(format!("capacity {}: {line}", a.arch));
                }
            }
            if self.should_confirm() {
                self.confirming = true;
                for a in &mut self.arches {
                    a.confirm = a
                        .search
                        .knee()
                        .map(|k| Search::confirm(self.rules.clone(), k.level, now_s.max(point.t)));
                }
                said.push("capacity: every arch has its knee; confirming them together".into());
            }
        }
        self.seen = series.len();
        said
    }

    fn should_confirm(&self) -> bool {
        self.spec.confirm
            && !self.confirming
            && self.arches.iter().all(|a| a.search.is_done())
            && self.arches.iter().any(|a| a.search.knee().is_some())
    }

    /// The level per target now: users after `dt_s` seconds of ramping toward the searches'
    /// levels (closed model), or requests per second split by weight (open model).
    pub fn levels(&mut self, dt_s: f64) -> Vec<f64> {
        let mut out = vec![0.0; self.target_count];
        for a in &mut self.arches {
            let goal = match (self.confirming, a.search.is_done(), self.spec.after) {
                (true, _, _) => a.confirm.as_ref().map_or(0.0, Search::level),
                (false, true, After::Stop) => 0.0,
                _ => a.search.level(),
            };
            let shares: Vec<f64> = match self.model {
                Model::Closed => {
                    let users = a.ramp.advance(goal.round(), dt_s);
                    split_weighted(users, &a.weights)
                        .into_iter()
                        .map(f64::from)
                        .collect()
                }
                Model::Open => {
                    let sum: f64 = a.weights.iter().map(|&w| f64::from(w)).sum();
                    a.weights
                        .iter()
                        .map(|&w| {
                            if sum > 0.0 {
                                goal * f64::from(w) / sum
                            } else {
                                0.0
                            }
                        })
                        .collect()
                }
            };
            for (&t, share) in a.targets.iter().zip(shares) {
                out[t] = share;
            }
        }
        out
    }

    /// After a master outage, `now` into the run: every arch measures its level afresh, its
    /// load ramping up again from zero (the workers stopped theirs).
    pub fn resume(&mut self, now: Duration) {
        let now_s = now.as_secs_f64();
        for a in &mut self.arches {
            a.search.resume(now_s);
            if let Some(c) = a.confirm.as_mut() {
                c.resume(now_s);
            }
            a.ramp.reset();
        }
    }

    /// Whether every arch has finished its search (and the confirmation, if any, is over).
    pub fn done(&self) -> bool {
        if !self.arches.iter().all(|a| a.search.is_done()) {
            return false;
        }
        if self.confirming {
            return self
                .arches
                .iter()
                .all(|a| a.confirm.as_ref().is_none_or(Search::is_done));
        }
        !self.should_confirm()
    }

    /// The results; searches still going are marked unfinished.
    pub fn report(&self) -> CapacityReport {
        let by_arch: BTreeMap<String, ArchCapacity> = self
            .arches
            .iter()
            .map(|a| {
                let mut search = a.search.clone();
                search.cut();
                let breach = search
                    .steps()
                    .iter()
                    .filter(|s| !s.passed)
                    .min_by(|x, y| x.level.total_cmp(&y.level))
                    .cloned();
                let confirmed = a.confirm.as_ref().and_then(|c| c.steps().first().cloned());
                let mut steps = search.steps().to_vec();
                steps.extend(confirmed.clone());
                let knee = search.knee().cloned();
                let uncertainty = KneeUncertainty::of(
                    knee.as_ref(),
                    confirmed.as_ref(),
                    breach.as_ref(),
                    self.rules.fine_step,
                );
                let result = ArchCapacity {
                    end: search.end(),
                    knee,
                    max_sustainable_rps: confirmed
                        .as_ref()
                        .map(|c| c.ok_rps)
                        .or(search.max_sustainable_rps()),
                    uncertainty,
                    breach,
                    confirmed,
                    steps,
                };
                (a.arch.clone(), result)
            })
            .collect();
        CapacityReport {
            unit: self.model.unit().to_owned(),
            rules: self.spec.clone(),
            comparison: compare(&by_arch),
            by_arch,
        }
    }
}

/// One arch's view of a series point; an arch absent from it served nothing.
fn interval_of(point: &SeriesPoint, arch: &str, length_s: f64) -> Interval {
    match point.by_arch.get(arch) {
        Some(p) => Interval {
            end_s: point.t,
            length_s,
            requests: p.requests,
            bad: (p.ratio_5xx * p.requests as f64).round() as u64 + p.errors,
            p50_ms: p.p50_ms,
            p99_ms: p.p99_ms,
        },
        None => Interval {
            end_s: point.t,
            length_s,
            ..Interval::default()
        },
    }
}

fn compare(by_arch: &BTreeMap<String, ArchCapacity>) -> Option<CapacityComparison> {
    let baseline = outcome::baseline(by_arch.keys().map(String::as_str))?;
    let base = by_arch[baseline].max_sustainable_rps.filter(|r| *r > 0.0)?;
    let rps_ratio = by_arch
        .iter()
        .filter_map(|(arch, c)| Some((arch.clone(), c.max_sustainable_rps? / base)))
        .collect();
    Some(CapacityComparison {
        baseline: baseline.to_owned(),
        rps_ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{ArchPoint, End, Phase};

    fn target(name: &str, arch: &str, weight: u32) -> Target {
        Target {
            name: name.into(),
            url: "http://127.0.0.1:1".into(),
            arch: arch.into(),
            weight,
            ..Default::default()
        }
    }

    /// The closed model's levels as whole users.
    fn users_of(d: &mut CapacityDriver, dt_s: f64) -> Vec<u32> {
        d.levels(dt_s).iter().map(|&l| l as u32).collect()
    }

    fn spec() -> CapacitySpec {
        CapacitySpec {
            enabled: true,
            start: 2.0,
            step: Some(2.0),
            fine_step: Some(1.0),
            max: 50.0,
            hold: Duration::from_secs(2),
            settle: Duration::ZERO,
            slo_5xx: 0.01,
            slo_p99: None,
            consecutive: 1,
            after: After::Hold,
            confirm: false,
        }
    }

    /// One series point where each arch serves 10 req/s per user and fails above its capacity.
    fn point(t: f64, users: &BTreeMap<&str, u32>, capacity: &BTreeMap<&str, u32>) -> SeriesPoint {
        let by_arch = users
            .iter()
            .map(|(arch, &u)| {
                let over = u > capacity[arch];
                let p = ArchPoint {
                    rps: f64::from(u) * 10.0,
                    requests: u64::from(u) * 10,
                    ratio_5xx: if over { 0.5 } else { 0.0 },
                    errors: 0,
                    p50_ms: 1.0,
                    p95_ms: 1.0,
                    p99_ms: 1.0,
                    failures: 0,
                    hdr: None,
                };
                ((*arch).to_owned(), p)
            })
            .collect();
        SeriesPoint {
            t,
            users: 0,
            rps: 0.0,
            by_arch,
            by_target: BTreeMap::new(),
        }
    }

    #[test]
    fn each_arch_searches_on_its_own_and_levels_split_by_weight() {
        let targets = vec![
            target("arm-a", "arm64", 1),
            target("amd", "amd64", 1),
            target("arm-b", "arm64", 3),
        ];
        let mut d = CapacityDriver::new(
            &spec(),
            Model::Closed,
            &targets,
            Duration::from_secs(1),
            None,
            Duration::ZERO,
        );
        let capacity = BTreeMap::from([("arm64", 9), ("amd64", 4)]);
        let mut series = Vec::new();
        for second in 1..200 {
            let users = users_of(&mut d, 1.0);
            if second == 1 {
                assert_eq!(users, vec![1, 2, 1], "arm64's 2 users split 1:3 by weight");
            }
            if d.done() {
                // Both hold their knees.
                assert_eq!(users[1], 4);
                assert_eq!(users[0] + users[2], 9);
                break;
            }
            let per_arch = BTreeMap::from([("arm64", users[0] + users[2]), ("amd64", users[1])]);
            series.push(point(f64::from(second), &per_arch, &capacity));
            d.observe(&series, Duration::from_secs(series.len() as u64));
        }
        assert!(d.done());
        let r = d.report();
        assert_eq!(r.by_arch["arm64"].knee.as_ref().unwrap().level, 9.0);
        assert_eq!(r.by_arch["amd64"].knee.as_ref().unwrap().level, 4.0);
        assert_eq!(r.by_arch["amd64"].breach.as_ref().unwrap().level, 5.0);
        let c = r.comparison.unwrap();
        assert_eq!(c.baseline, "amd64");
        assert!((c.rps_ratio["arm64"] - 90.0 / 40.0).abs() < 1e-9);
    }

    #[test]
    fn knees_are_confirmed_together_at_the_end() {
        let mut s = spec();
        s.confirm = true;
        let targets = vec![target("arm", "arm64", 1), target("amd", "amd64", 1)];
        let mut d = CapacityDriver::new(
            &s,
            Model::Closed,
            &targets,
            Duration::from_secs(1),
            None,
            Duration::ZERO,
        );
        let capacity = BTreeMap::from([("arm64", 6), ("amd64", 3)]);
        let mut series = Vec::new();
        let mut confirming_levels = None;
        for second in 1..200 {
            let users = users_of(&mut d, 1.0);
            if d.done() {
                break;
            }
            if d.confirming {
                confirming_levels = Some(users.clone());
            }
            let per_arch = BTreeMap::from([("arm64", users[0]), ("amd64", users[1])]);
            series.push(point(f64::from(second), &per_arch, &capacity));
            d.observe(&series, Duration::from_secs(series.len() as u64));
        }
        assert_eq!(confirming_levels, Some(vec![6, 3]), "both at their knees");
        let r = d.report();
        for (arch, knee) in [("arm64", 6.0), ("amd64", 3.0)] {
            let c = r.by_arch[arch].confirmed.as_ref().unwrap();
            assert_eq!((c.phase, c.level, c.passed), (Phase::Confirm, knee, true));
            assert_eq!(r.by_arch[arch].max_sustainable_rps, Some(knee * 10.0));
            // Both confirmations cover the same intervals.
            assert_eq!(
                c.ended_s,
                r.by_arch["arm64"].confirmed.as_ref().unwrap().ended_s
            );
            // Known to a fine step below the breach; two steady one-second windows behind it.
            let u = r.by_arch[arch].uncertainty.as_ref().unwrap();
            assert_eq!((u.fine_step, u.breach_level), (1.0, Some(knee + 1.0)));
            let w = u.windows;
            assert_eq!((w.count, w.min, w.max), (2, knee * 10.0, knee * 10.0));
        }
    }

    #[test]
    fn a_finished_arch_stops_when_told() {
        let mut s = spec();
        s.after = After::Stop;
        s.max = 2.0;
        let targets = vec![target("amd", "amd64", 1)];
        let mut d = CapacityDriver::new(
            &s,
            Model::Closed,
            &targets,
            Duration::from_secs(1),
            None,
            Duration::ZERO,
        );
        assert_eq!(users_of(&mut d, 1.0), vec![2]);
        let cap = BTreeMap::from([("amd64", 10)]);
        let users = BTreeMap::from([("amd64", 2)]);
        let series = vec![point(1.0, &users, &cap), point(2.0, &users, &cap)];
        d.observe(&series, Duration::from_secs(series.len() as u64));
        assert!(d.done());
        assert_eq!(d.report().by_arch["amd64"].end, End::MaxReached);
        assert_eq!(users_of(&mut d, 1.0), vec![0]);
    }

    #[test]
    fn open_model_levels_are_rates_split_by_weight() {
        let mut s = spec();
        s.start = 30.0;
        let targets = vec![
            target("arm-a", "arm64", 1),
            target("amd", "amd64", 1),
            target("arm-b", "arm64", 2),
        ];
        let mut d = CapacityDriver::new(
            &s,
            Model::Open,
            &targets,
            Duration::from_secs(1),
            None,
            Duration::ZERO,
        );
        // Each arch starts at 30 req/s, arm64's split 1:2 over its two targets.
        assert_eq!(d.levels(0.1), vec![10.0, 30.0, 20.0]);
        assert_eq!(d.report().unit, "req/s");
    }
}
