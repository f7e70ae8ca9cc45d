//! The load plan: the goal level over time, from `[load]` and the `[[stage]]`s (Locust's
//! LoadTestShape as data). Stages ramp linearly from the previous stage's level.

use std::time::Duration;

use crate::scenario::Scenario;

#[derive(Debug, Clone, PartialEq)]
struct Segment {
    start: Duration,
    end: Duration,
    from: f64,
    to: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    segments: Vec<Segment>,
    duration: Duration,
}

impl Plan {
    pub fn from_scenario(s: &Scenario) -> Plan {
        let mut segments = Vec::new();
        if s.stages.is_empty() {
            let users = f64::from(s.load.users.unwrap_or(0));
            let end = s.run_time.unwrap_or_default();
            segments.push(Segment {
                start: Duration::ZERO,
                end,
                from: users,
                to: users,
            });
        } else {
            let mut start = Duration::ZERO;
            let mut level = 0.0;
            for stage in &s.stages {
                let to = f64::from(stage.users.unwrap_or(0));
                let end = start + stage.duration;
                segments.push(Segment {
                    start,
                    end,
                    from: level,
                    to,
                });
                start = end;
                level = to;
            }
        }
        let natural = segments.last().map_or(Duration::ZERO, |s| s.end);
        let duration = match (s.stages.is_empty(), s.run_time) {
            (false, Some(cap)) => cap.min(natural),
            _ => natural,
        };
        Plan { segments, duration }
    }

    /// How long the run lasts.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The goal level at `t` (0 after the end).
    pub fn goal_at(&self, t: Duration) -> f64 {
        self.segment_at(t).map_or(0.0, |(_, s)| {
            let span = (s.end - s.start).as_secs_f64();
            if span <= 0.0 {
                return s.to;
            }
            let f = (t - s.start).as_secs_f64() / span;
            s.from + (s.to - s.from) * f.clamp(0.0, 1.0)
        })
    }

    /// Stage number (1-based) at `t` and the number of stages.
    pub fn stage_at(&self, t: Duration) -> (usize, usize) {
        let n = self.segments.len();
        let k = self.segment_at(t).map_or(n, |(i, _)| i + 1);
        (k, n)
    }

    /// The level the stage at `t` is heading for.
    pub fn stage_goal(&self, t: Duration) -> f64 {
        self.segment_at(t).map_or(0.0, |(_, s)| s.to)
    }

    fn segment_at(&self, t: Duration) -> Option<(usize, &Segment)> {
        if t >= self.duration {
            return None;
        }
        self.segments.iter().enumerate().find(|(_, s)| t < s.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;
    use std::path::Path;

    fn scenario(extra: &str) -> Scenario {
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
        parse(Path::new("p.toml"), &text, &[]).unwrap()
    }

    #[test]
    fn single_stage_holds_users_for_run_time() {
        let p = Plan::from_scenario(&scenario("run_time = \"10s\"\n[load]\nusers = 8"));
        assert_eq!(p.duration(), Duration::from_secs(10));
        assert_eq!(p.goal_at(Duration::from_secs(3)), 8.0);
        assert_eq!(p.goal_at(Duration::from_secs(10)), 0.0);
        assert_eq!(p.stage_at(Duration::from_secs(3)), (1, 1));
    }

    #[test]
    fn stages_ramp_linearly_from_the_previous_level() {
        let p = Plan::from_scenario(&scenario(
            "[load]\n[[stage]]\nduration = \"10s\"\nusers = 10\n[[stage]]\nduration = \"10s\"\nusers = 10\n[[stage]]\nduration = \"5s\"\nusers = 0",
        ));
        assert_eq!(p.duration(), Duration::from_secs(25));
        assert_eq!(p.goal_at(Duration::from_secs(5)), 5.0);
        assert_eq!(p.goal_at(Duration::from_secs(15)), 10.0);
        assert!((p.goal_at(Duration::from_millis(22_500)) - 5.0).abs() < 1e-9);
        assert_eq!(p.stage_at(Duration::from_secs(21)), (3, 3));
        assert_eq!(p.stage_goal(Duration::from_secs(1)), 10.0);
    }

    #[test]
    fn run_time_caps_stages() {
        let p = Plan::from_scenario(&scenario(
            "run_time = \"3s\"\n[load]\n[[stage]]\nduration = \"10s\"\nusers = 10",
        ));
        assert_eq!(p.duration(), Duration::from_secs(3));
    }
}
