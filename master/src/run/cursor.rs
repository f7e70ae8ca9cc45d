//! A plan being walked as the run goes: which step the run is in, since when, and the level
//! due now; a `requests` step ends when its count is sent (or at its time limit).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scenario::{Plan, StepKind};

/// Where the run is in its plan at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    /// Step number, 1-based.
    pub stage: usize,
    /// The level now.
    pub level: f64,
    /// The level the step is heading for.
    pub heading: f64,
    /// A `requests` step: how many.
    pub requests: Option<u64>,
}

/// A plan being walked: which step the run is in and since when.
#[derive(Debug, Clone)]
pub struct Cursor {
    plan: Plan,
    index: usize,
    /// Run time at which the current step started.
    started: Duration,
}

impl Cursor {
    pub fn new(plan: Plan) -> Cursor {
        Cursor {
            plan,
            index: 0,
            started: Duration::ZERO,
        }
    }

    /// Moves past the steps that have ended by `now` and returns the goal then, or `None` when
    /// the plan is over. `sent(stage)` says whether a `requests` step's count has been sent in
    /// full.
    pub fn advance(&mut self, now: Duration, sent: impl Fn(usize) -> bool) -> Option<Goal> {
        if self.plan.cap.is_some_and(|cap| now >= cap) {
            if self.index < self.plan.steps.len() {
                self.started = self.plan.cap.unwrap_or(now).min(now);
            }
            self.index = self.plan.steps.len();
            return None;
        }
        while let Some(step) = self.plan.steps.get(self.index) {
            let limit = step.duration.map(|d| self.started + d);
            let ended = match step.kind {
                StepKind::Requests { .. } if sent(self.index + 1) => Some(now),
                _ => limit.filter(|&end| now >= end),
            };
            let Some(end) = ended else { break };
            if let (StepKind::Requests { count, .. }, Some(limit)) = (step.kind, limit)
                && end == limit
                && !sent(self.index + 1)
            {
                tracing::warn!(
                    stage = self.index + 1,
                    "time limit reached before all {count} requests were sent"
                );
            }
            self.started = end.min(now);
            self.index += 1;
        }
        let step = self.plan.steps.get(self.index)?;
        Some(Goal {
            stage: self.index + 1,
            level: step.level_at(now.saturating_sub(self.started)),
            heading: step.end_level(),
            requests: match step.kind {
                StepKind::Requests { count, .. } => Some(count),
                _ => None,
            },
        })
    }

    /// Which step the run is in and when it started: what a journal keeps.
    pub fn position(&self) -> (usize, Duration) {
        (self.index, self.started)
    }

    /// Puts the cursor back where a journal says it stood.
    pub fn set_position(&mut self, index: usize, started: Duration) {
        self.index = index.min(self.plan.steps.len());
        self.started = started;
    }

    /// Stage k of n (k = n + 1 once the plan is over).
    pub fn stage(&self) -> (usize, usize) {
        (self.index + 1, self.plan.steps.len())
    }

    /// When the run will end, if that is known now.
    pub fn expected_end(&self) -> Option<Duration> {
        let mut at = self.started;
        for step in &self.plan.steps[self.index.min(self.plan.steps.len())..] {
            match (step.kind, step.duration) {
                (StepKind::Requests { .. }, _) | (_, None) => return self.plan.cap,
                (_, Some(d)) => at += d,
            }
        }
        Some(self.plan.cap.map_or(at, |cap| cap.min(at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{ScenarioFile, parse};
    use std::path::Path;

    fn scenario(extra: &str) -> ScenarioFile {
        let text = format!(
            r#"
name = "p"
{extra}
[[target]]
name = "a"
url = "http://127.0.0.1:1"
arch = "arm64"
[[request]]
name = "r"
"#
        );
        parse(Path::new("p.toml"), &text, &[]).unwrap().file
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn never(_: usize) -> bool {
        false
    }

    #[test]
    fn without_stages_users_hold_for_run_time() {
        let plan = Plan::of(&scenario("run_time = \"10s\"\n[load]\nusers = 8"));
        assert_eq!(plan.duration(), Some(secs(10.0)));
        let mut c = Cursor::new(plan);
        let g = c.advance(secs(3.0), never).unwrap();
        assert_eq!((g.stage, g.level, g.requests), (1, 8.0, None));
        assert_eq!(c.advance(secs(10.0), never), None);
    }

    #[test]
    fn stages_ramp_linearly_from_the_previous_level() {
        let plan = Plan::of(&scenario(
            "[load]\n[[stage]]\nduration = \"10s\"\nusers = 10\n[[stage]]\nduration = \"10s\"\nusers = 10\n[[stage]]\nduration = \"5s\"\nusers = 0",
        ));
        assert_eq!(plan.duration(), Some(secs(25.0)));
        let mut c = Cursor::new(plan);
        assert_eq!(c.advance(secs(5.0), never).unwrap().level, 5.0);
        let g = c.advance(secs(15.0), never).unwrap();
        assert_eq!((g.stage, g.level, g.heading), (2, 10.0, 10.0));
        let g = c.advance(secs(22.5), never).unwrap();
        assert_eq!(g.stage, 3);
        assert!((g.level - 5.0).abs() < 1e-9);
        assert_eq!(c.advance(secs(25.0), never), None);
        assert_eq!(c.stage(), (4, 3));
    }

    #[test]
    fn run_time_caps_stages() {
        let plan = Plan::of(&scenario(
            "run_time = \"3s\"\n[load]\n[[stage]]\nduration = \"10s\"\nusers = 10",
        ));
        assert_eq!(plan.duration(), Some(secs(3.0)));
        let mut c = Cursor::new(plan);
        assert!(c.advance(secs(2.9), never).is_some());
        assert_eq!(c.advance(secs(3.0), never), None);
    }

    #[test]
    fn open_model_rates_ramp_like_users() {
        let plan = Plan::of(&scenario(
            "[load]\nmodel = \"open\"\n[[stage]]\nduration = \"4s\"\nrate = 400\n[[stage]]\nduration = \"2s\"\nrate = 100",
        ));
        let mut c = Cursor::new(plan);
        assert_eq!(c.advance(secs(1.0), never).unwrap().level, 100.0);
        assert_eq!(c.advance(secs(5.0), never).unwrap().level, 250.0);
    }

    #[test]
    fn requests_steps_last_until_sent_and_pauses_hold_zero() {
        let plan = Plan::of(&scenario(
            "[load]\nusers = 10\n[[stage]]\nrequests = 1000\n[[stage]]\nduration = \"60s\"\npause = true\n[[stage]]\nrequests = 1500\nusers = 20",
        ));
        assert_eq!(plan.duration(), None);
        assert_eq!(plan.longest(), None);
        let mut c = Cursor::new(plan);
        let g = c.advance(secs(100.0), never).unwrap();
        assert_eq!((g.stage, g.level, g.requests), (1, 10.0, Some(1000)));
        // Stage 1 is seen sent at 100.5 s: the pause runs 100.5..160.5 s.
        let sent = |k: usize| k == 1;
        let g = c.advance(secs(100.5), sent).unwrap();
        assert_eq!((g.stage, g.level, g.requests), (2, 0.0, None));
        assert_eq!(c.expected_end(), None);
        let g = c.advance(secs(160.4), sent).unwrap();
        assert_eq!(g.stage, 2);
        let g = c.advance(secs(160.5), sent).unwrap();
        assert_eq!((g.stage, g.level, g.requests), (3, 20.0, Some(1500)));
        assert_eq!(c.advance(secs(170.0), |k| k <= 3), None);
    }

    #[test]
    fn a_requests_time_limit_ends_the_step() {
        let plan = Plan::of(&scenario(
            "[load]\nusers = 2\n[[stage]]\nrequests = 10\nduration = \"5s\"\n[[stage]]\nduration = \"5s\"\nusers = 2",
        ));
        assert_eq!(plan.longest(), Some(secs(10.0)));
        let mut c = Cursor::new(plan);
        assert_eq!(c.advance(secs(4.0), never).unwrap().stage, 1);
        assert_eq!(c.advance(secs(6.0), never).unwrap().stage, 2);
        assert_eq!(c.expected_end(), Some(secs(10.0)));
    }
}
