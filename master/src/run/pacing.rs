//! The pacing of a run: which level is due now and how it is shared out. It walks the plan
//! (stages, ramps at the spawn rate, `requests` stages' shares, the live view's adjustment) or,
//! in a capacity search, follows each arch's search; either way it turns the level into one row
//! of absolute per-target loads per running worker.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use stampede_proto as pb;

use super::capacity::CapacityDriver;
use super::cursor::{Cursor, Goal};
use super::dispatch::{self, Quotas, Ramp};
use super::fleet::Lost;
use crate::outcome::{CapacityReport, SeriesPoint};
use crate::scenario::{Load, Model, Scenario, Stage};

/// The live view's `+`/`-` move the goal by this fraction of the scenario's peak level.
const STEP_FRACTION: f64 = 0.1;
/// The most the live view may add on top of the plan.
const MAX_SHIFT: i64 = 1_000_000;

/// What to send this round: a row of loads per running worker, and the stage they belong to.
pub type Round = (Vec<Vec<pb::TargetLoad>>, u32);

/// Where the pacing stands, as the journal keeps it.
#[derive(Serialize, Deserialize)]
pub struct PacingState {
    step: usize,
    step_started_ms: u64,
    goal: Option<Goal>,
    quotas: Option<Quotas>,
    shift: i64,
    capacity: Option<CapacityDriver>,
}

pub struct Pacing {
    model: Model,
    weights: Vec<u32>,
    cursor: Cursor,
    /// Where the plan was at the last round.
    goal: Option<Goal>,
    /// The current `requests` stage's shares, fixed when it started.
    quotas: Option<Quotas>,
    ramp: Ramp,
    /// Level added to the plan's from the live view (negative: removed).
    shift: i64,
    /// What one `+`/`-` adds or removes.
    step: u32,
    /// Per-arch levels from a capacity search, instead of the plan's.
    capacity: Option<CapacityDriver>,
    /// `run_time`: caps a capacity search too.
    cap: Option<Duration>,
    /// Lines worth telling the user, taken by the controller.
    pub notices: Vec<String>,
}

impl Pacing {
    pub fn new(s: &Scenario) -> Pacing {
        let spawn_rate = s.load.spawn_rate();
        let capacity = s.capacity.as_ref().map(|spec| {
            let driver = CapacityDriver::new(
                spec,
                s.model(),
                s.targets(),
                s.file.report_interval,
                spawn_rate,
                Duration::ZERO,
            );
            match s.load {
                Load::Open { arrivals, .. } => driver.with_arrivals(arrivals),
                Load::Closed { .. } => driver,
            }
        });
        Pacing {
            model: s.model(),
            weights: s.targets().iter().map(|t| t.weight).collect(),
            cursor: Cursor::new(s.plan.clone()),
            goal: None,
            quotas: None,
            ramp: Ramp::new(spawn_rate),
            shift: 0,
            step: step_of(s),
            capacity,
            cap: s.file.run_time,
            notices: Vec::new(),
        }
    }

    /// The loads due `now` into the run, `dt_s` seconds after the last round, for `running`
    /// workers (ids, in row order); `None` once the run is over. `completed(workers, stage)`
    /// says whether those workers have sent their shares of `requests` stage `stage`.
    pub fn round(
        &mut self,
        now: Duration,
        dt_s: f64,
        running: &[String],
        completed: impl Fn(&[String], usize) -> bool,
    ) -> Option<Round> {
        if let Some(c) = self.capacity.as_mut() {
            // A capacity search ends when every arch is done, or at run_time as a cap.
            if c.done() || self.cap.is_some_and(|cap| now >= cap) {
                return None;
            }
            let rows = dispatch::spread_levels(self.model, &c.levels(dt_s), running.len());
            return Some((rows, 1));
        }
        let quotas = &self.quotas;
        let sent = |stage: usize| {
            quotas
                .as_ref()
                .filter(|q| q.stage == stage)
                .is_some_and(|q| completed(&q.workers, stage))
        };
        let Some(goal) = self.cursor.advance(now, sent) else {
            self.goal = None;
            return None;
        };
        if self.goal.is_none_or(|g| g.stage != goal.stage) {
            self.enter_stage(&goal, running);
        }
        self.goal = Some(goal);
        let wanted = self.shifted(goal.level);
        let level = match self.model {
            Model::Closed => f64::from(self.ramp.advance(wanted, dt_s)),
            Model::Open => wanted,
        };
        let rows = dispatch::loads(
            self.model,
            level,
            &self.weights,
            running,
            self.quotas.as_ref(),
        );
        Some((rows, goal.stage as u32))
    }

    /// A new stage: a `requests` stage shares its count out among the workers running now.
    fn enter_stage(&mut self, goal: &Goal, running: &[String]) {
        tracing::info!(stage = goal.stage, "stage started");
        self.quotas = goal.requests.map(|count| {
            Quotas::new(
                goal.stage,
                count,
                self.model,
                goal.heading,
                &self.weights,
                running.to_vec(),
            )
        });
    }

    /// Feeds a capacity search the intervals closed so far, `now` into the run.
    pub fn observe(&mut self, series: &[SeriesPoint], now: Duration) {
        if let Some(c) = self.capacity.as_mut() {
            for line in c.observe(series, now) {
                tracing::info!("{line}");
                self.notices.push(line);
            }
        }
    }

    /// A worker left: its users leave the level (the survivors take them on at the spawn
    /// rate), and a share of a `requests` stage it had not sent is said to be lost with it.
    pub fn worker_lost(&mut self, lost: &Lost) {
        self.ramp.shed(lost.users);
        if !lost.unfinished {
            return;
        }
        let share = self.quotas.as_ref().and_then(|q| {
            let n: u64 = q.of(&lost.id)?.iter().sum();
            (n > 0 && (lost.completed_stage as usize) < q.stage).then_some((q.stage, n))
        });
        if let Some((stage, n)) = share {
            let why = format!(
                "stage {stage}: worker {} left before sending all of its {n} requests; the stage sends fewer than its count",
                lost.id
            );
            tracing::warn!("{why}");
            self.notices.push(why);
        }
    }

    /// Moves the goal by `steps` steps of the live view's size (negative: fewer).
    pub fn shift(&mut self, steps: i32) {
        let delta = i64::from(steps) * i64::from(self.step);
        self.shift = (self.shift + delta).clamp(-MAX_SHIFT, MAX_SHIFT);
        tracing::info!(shift = self.shift, "users goal adjusted");
    }

    /// A plan level with the view's adjustment, never below zero.
    fn shifted(&self, level: f64) -> f64 {
        (level + self.shift as f64).max(0.0)
    }

    /// Stage k of n (n + 1 once the plan is over).
    pub fn stage(&self) -> (usize, usize) {
        self.cursor.stage()
    }

    /// When the run will end, if that is known now.
    pub fn expected_end(&self) -> Option<Duration> {
        self.cursor.expected_end()
    }

    /// The level the current stage heads for and the level due now, with the adjustment.
    pub fn levels_now(&self) -> (f64, f64) {
        let (heading, level) = self.goal.map_or((0.0, 0.0), |g| (g.heading, g.level));
        (self.shifted(heading), self.shifted(level))
    }

    /// The live view's adjustment and its step.
    pub fn adjustment(&self) -> (i64, u32) {
        (self.shift, self.step)
    }

    /// Where it stands, for the journal.
    pub fn state(&self) -> PacingState {
        let (step, started) = self.cursor.position();
        PacingState {
            step,
            step_started_ms: u64::try_from(started.as_millis()).unwrap_or(u64::MAX),
            goal: self.goal,
            quotas: self.quotas.clone(),
            shift: self.shift,
            capacity: self.capacity.clone(),
        }
    }

    /// Takes up where a journal's state stood, after an outage, `run_now` into the run: the
    /// users ramp up again from zero; a capacity search measures its levels afresh.
    pub fn restore(&mut self, state: PacingState, run_now: Duration) {
        self.cursor
            .set_position(state.step, Duration::from_millis(state.step_started_ms));
        self.goal = state.goal;
        self.quotas = state.quotas;
        self.shift = state.shift;
        self.ramp.reset();
        if let Some(mut c) = state.capacity {
            c.resume(run_now);
            self.capacity = Some(c);
        }
    }

    /// The capacity search's results, when the run is one.
    pub fn capacity_report(&self) -> Option<CapacityReport> {
        self.capacity.as_ref().map(CapacityDriver::report)
    }
}

/// Users (or requests per second) one `+`/`-` moves: a tenth of the scenario's peak level, at
/// least one.
fn step_of(s: &Scenario) -> u32 {
    let peak = s
        .file
        .load
        .level()
        .into_iter()
        .chain(s.file.stages.iter().filter_map(Stage::level))
        .fold(0.0, f64::max);
    ((peak * STEP_FRACTION).round() as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario(body: &str) -> Scenario {
        let text = format!(
            r#"
name = "p"
{body}
[[target]]
name = "a"
url = "http://127.0.0.1:1"
arch = "arm64"
[[target]]
name = "b"
url = "http://127.0.0.1:2"
arch = "amd64"
[[request]]
name = "r"
"#
        );
        crate::scenario::parse(Path::new("p.toml"), &text, &[]).unwrap()
    }

    fn ids(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("w{i}")).collect()
    }

    fn users(round: &Round) -> Vec<Vec<u32>> {
        round
            .0
            .iter()
            .map(|row| row.iter().map(|l| l.users).collect())
            .collect()
    }

    #[test]
    fn the_plan_ramps_at_the_spawn_rate_and_the_view_shifts_it() {
        let s = scenario("run_time = \"10s\"\n[load]\nusers = 20\nspawn_rate = 10");
        let mut p = Pacing::new(&s);
        let never = |_: &[String], _: usize| false;
        let r = p
            .round(Duration::from_millis(500), 0.5, &ids(2), never)
            .unwrap();
        // 5 users after half a second at 10/s, over 2 targets and 2 workers.
        assert_eq!(users(&r).iter().flatten().sum::<u32>(), 5);
        assert_eq!(r.1, 1);
        p.shift(1);
        assert_eq!(p.adjustment(), (2, 2), "a step is a tenth of 20 users");
        assert_eq!(p.levels_now(), (22.0, 22.0), "the goal with the shift");
        let r = p
            .round(Duration::from_secs(4), 3.5, &ids(2), never)
            .unwrap();
        assert_eq!(users(&r).iter().flatten().sum::<u32>(), 22);
        assert!(
            p.round(Duration::from_secs(10), 0.1, &ids(2), never)
                .is_none()
        );
    }

    #[test]
    fn a_requests_stage_ends_when_its_workers_have_sent_it() {
        let s = scenario(
            "[load]\nusers = 4\n[[stage]]\nrequests = 100\n[[stage]]\nduration = \"5s\"\nusers = 2",
        );
        let mut p = Pacing::new(&s);
        let r = p.round(Duration::ZERO, 0.0, &ids(2), |_, _| false).unwrap();
        assert_eq!(r.1, 1);
        let shares: u64 = r.0.iter().flatten().map(|l| l.requests).sum();
        assert_eq!(shares, 100);
        let r = p
            .round(Duration::from_secs(1), 1.0, &ids(2), |w, stage| {
                stage == 1 && w.len() == 2
            })
            .unwrap();
        assert_eq!(r.1, 2);
    }

    #[test]
    fn a_lost_workers_unsent_share_is_said() {
        let s = scenario("[load]\nusers = 4\n[[stage]]\nrequests = 100");
        let mut p = Pacing::new(&s);
        p.round(Duration::ZERO, 0.0, &ids(2), |_, _| false);
        let lost = Lost {
            id: "w1".into(),
            instance: "i".into(),
            reason: "connection lost".into(),
            users: 2,
            completed_stage: 0,
            unfinished: true,
        };
        p.worker_lost(&lost);
        assert_eq!(p.notices.len(), 1, "{:?}", p.notices);
        assert!(p.notices[0].contains("w1 left before sending all of its 50"));
    }

    #[test]
    fn a_capacity_search_on_the_open_model_sends_rates() {
        let s = scenario(
            "[load]\nmodel = \"open\"\n[capacity]\nstart = 40\nstep = 40\nmax = 400\nhold = \"2s\"",
        );
        let mut p = Pacing::new(&s);
        let r = p.round(Duration::ZERO, 0.1, &ids(2), |_, _| false).unwrap();
        // 40 req/s per arch, one target each, split over 2 workers.
        for row in &r.0 {
            assert_eq!((row[0].rate, row[1].rate), (20.0, 20.0));
            assert!(row.iter().all(|l| l.users == 0));
        }
        assert_eq!(p.capacity_report().unwrap().unit, "req/s");
    }
}
