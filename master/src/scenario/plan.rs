//! The load plan: `[load]` and the `[[stage]]`s as a list of steps (Locust's LoadTestShape as
//! data), parsed once from the file; the run walks it with a cursor (`run::cursor`). Ramps are
//! linear from the previous step's level; a `requests` step lasts until its count is sent (or
//! its time limit); a pause holds zero load. Levels are users (closed model) or requests per
//! second (open model).

use std::fmt;
use std::time::Duration;

use super::model::{Model, ScenarioFile};

/// What one step does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepKind {
    /// From the previous level to `to`, linearly over the step's duration (a hold when equal).
    Ramp { to: f64 },
    /// Exactly `count` requests at `level`, spread over the workers.
    Requests { count: u64, level: f64 },
    /// No load.
    Pause,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    /// The level when the step starts (the previous step's end level).
    pub from: f64,
    /// How long it lasts; for a `requests` step, its time limit, if any.
    pub duration: Option<Duration>,
}

impl Step {
    /// The level this step is heading for (and ends at).
    pub fn end_level(&self) -> f64 {
        match self.kind {
            StepKind::Ramp { to } => to,
            StepKind::Requests { level, .. } => level,
            StepKind::Pause => 0.0,
        }
    }

    /// The level `into` the step.
    pub fn level_at(&self, into: Duration) -> f64 {
        match self.kind {
            StepKind::Ramp { to } => {
                let span = self.duration.unwrap_or_default().as_secs_f64();
                if span <= 0.0 {
                    return to;
                }
                let f = (into.as_secs_f64() / span).clamp(0.0, 1.0);
                self.from + (to - self.from) * f
            }
            StepKind::Requests { level, .. } => level,
            StepKind::Pause => 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub model: Model,
    pub steps: Vec<Step>,
    /// `run_time`: the run never lasts longer.
    pub cap: Option<Duration>,
}

impl Plan {
    pub fn of(s: &ScenarioFile) -> Plan {
        let model = s.load.model;
        let load_level = s.load.level().unwrap_or(0.0);
        if s.stages.is_empty() {
            return Plan {
                model,
                steps: vec![Step {
                    kind: StepKind::Ramp { to: load_level },
                    from: load_level,
                    duration: s.run_time,
                }],
                cap: s.run_time,
            };
        }
        let mut steps = Vec::with_capacity(s.stages.len());
        let mut level = 0.0;
        for stage in &s.stages {
            let own = stage.level();
            let kind = if stage.pause {
                StepKind::Pause
            } else if let Some(count) = stage.requests {
                StepKind::Requests {
                    count,
                    level: own.unwrap_or(load_level),
                }
            } else {
                StepKind::Ramp {
                    to: own.unwrap_or(level),
                }
            };
            let step = Step {
                kind,
                from: level,
                duration: stage.duration,
            };
            level = step.end_level();
            steps.push(step);
        }
        Plan {
            model,
            steps,
            cap: s.run_time,
        }
    }

    /// How long the run lasts, when that is known in advance (no `requests` steps, or a cap
    /// that comes first).
    pub fn duration(&self) -> Option<Duration> {
        let mut total = Duration::ZERO;
        for step in &self.steps {
            match (step.kind, step.duration) {
                (StepKind::Requests { .. }, _) | (_, None) => return self.cap,
                (_, Some(d)) => total += d,
            }
        }
        Some(self.cap.map_or(total, |cap| cap.min(total)))
    }

    /// The longest the run can last: the cap, else the sum of durations and time limits
    /// (`None`: a `requests` step without a limit and no cap).
    pub fn longest(&self) -> Option<Duration> {
        let sum = self
            .steps
            .iter()
            .map(|s| s.duration)
            .sum::<Option<Duration>>();
        match (self.cap, sum) {
            (Some(cap), Some(sum)) => Some(cap.min(sum)),
            (cap, sum) => cap.or(sum),
        }
    }
}

/// The resolved plan, as `check` prints it.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = self.model.unit();
        let level = |v: f64| {
            if self.model == Model::Closed {
                format!("{v:.0} {unit}")
            } else {
                format!("{v} {unit}")
            }
        };
        let mut at = Some(Duration::ZERO);
        let clock = |d: Option<Duration>| {
            d.map_or_else(
                || "…".to_owned(),
                |d| humantime::format_duration(d).to_string(),
            )
        };
        for (i, step) in self.steps.iter().enumerate() {
            let end = match step.kind {
                StepKind::Requests { .. } => None,
                _ => at.zip(step.duration).map(|(a, d)| a + d),
            };
            let what = match step.kind {
                StepKind::Ramp { to } if to == step.from => format!("hold {}", level(to)),
                StepKind::Ramp { to } => format!("ramp {} -> {}", level(step.from), level(to)),
                StepKind::Requests { count, level: l } => {
                    let limit = step.duration.map_or(String::new(), |d| {
                        format!(", time limit {}", humantime::format_duration(d))
                    });
                    format!("{count} requests at {}{limit}", level(l))
                }
                StepKind::Pause => "pause (no load)".to_owned(),
            };
            writeln!(
                f,
                "  stage {}: {:>10} .. {:<10} {what}",
                i + 1,
                clock(at),
                clock(end)
            )?;
            at = end;
        }
        match (self.cap, self.duration()) {
            (Some(cap), _) => write!(f, "  run time: at most {}", humantime::format_duration(cap)),
            (None, Some(d)) => write!(f, "  run time: {}", humantime::format_duration(d)),
            (None, None) => write!(f, "  run time: until the last stage's requests are sent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse;
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

    #[test]
    fn display_lists_every_stage() {
        let plan = Plan::of(&scenario(
            "[load]\nusers = 10\n[[stage]]\nduration = \"1m\"\nusers = 10\n[[stage]]\nrequests = 1000\n[[stage]]\nduration = \"60s\"\npause = true",
        ));
        let text = plan.to_string();
        assert!(text.contains("stage 1:"), "{text}");
        assert!(text.contains("ramp 0 users -> 10 users"), "{text}");
        assert!(text.contains("1000 requests at 10 users"), "{text}");
        assert!(text.contains("pause"), "{text}");
    }
}
