//! `[capacity]`: an SLO-driven capacity search per arch, and how it is checked.
//!
//! ```toml
//! [capacity]
//! enabled = true        # the default; `stampede-master run --capacity` sets it
//! start = 10            # first level per arch (users)
//! step = 10             # coarse step while the arch keeps its SLO
//! fine_step = 2         # finer step back from the first breach to find the knee
//! max = 1000            # never go above; reaching it ends that arch's search
//! hold = "10s"          # how long each level is measured
//! settle = "2s"         # discarded at the start of each level (warm-up)
//! slo_5xx = 0.01        # an interval breaches above this 5XX (+ transport error) ratio
//! slo_p99 = "500ms"     # ... or above this p99 (optional)
//! consecutive = 2       # a level breaches after this many breaching intervals in a row
//! after = "hold"        # a finished arch holds its knee level ("hold") or stops ("stop")
//! confirm = true        # at the end, run every arch at its knee together for one more hold
//! ```

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::invalid::Invalid;

/// What an arch does once its search is over, while the others go on.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum After {
    /// Keep loading at the knee, so the arches still searching see the same conditions
    /// (a shared load balancer, a shared node, a shared load generator).
    #[default]
    Hold,
    /// Stop loading it.
    Stop,
}

/// `[capacity]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacitySpec {
    /// Whether the run is a capacity search (keeps the settings when false).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// First level per arch.
    #[serde(default = "one")]
    pub start: f64,
    /// Coarse step; defaults to `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
    /// Fine step; defaults to a quarter of the coarse step, at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine_step: Option<f64>,
    /// Highest level tried.
    #[serde(default = "default_max")]
    pub max: f64,
    /// How long each level is measured, after it settles.
    #[serde(default = "default_hold", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub hold: Duration,
    /// Discarded at the start of each level.
    #[serde(default = "default_settle", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub settle: Duration,
    /// Highest acceptable ratio of 5XX answers and transport errors in an interval.
    #[serde(default = "default_slo_5xx")]
    pub slo_5xx: f64,
    /// Highest acceptable p99 in an interval.
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<String>")]
    pub slo_p99: Option<Duration>,
    /// Breaching intervals in a row that make a level breach.
    #[serde(default = "default_consecutive")]
    pub consecutive: u32,
    #[serde(default)]
    pub after: After,
    /// Once every arch has its knee, measure them all at their knees at the same time (one
    /// more settle + hold), so the throughputs compared were measured under the same conditions.
    #[serde(default = "yes")]
    pub confirm: bool,
}

fn yes() -> bool {
    true
}

fn one() -> f64 {
    1.0
}

fn default_max() -> f64 {
    10_000.0
}

fn default_hold() -> Duration {
    Duration::from_secs(10)
}

fn default_settle() -> Duration {
    Duration::from_secs(2)
}

fn default_slo_5xx() -> f64 {
    0.01
}

fn default_consecutive() -> u32 {
    2
}

impl Default for CapacitySpec {
    fn default() -> Self {
        CapacitySpec {
            enabled: true,
            start: one(),
            step: None,
            fine_step: None,
            max: default_max(),
            hold: default_hold(),
            settle: default_settle(),
            slo_5xx: default_slo_5xx(),
            slo_p99: None,
            consecutive: default_consecutive(),
            after: After::default(),
            confirm: true,
        }
    }
}

impl CapacitySpec {
    /// The coarse step.
    pub fn step(&self) -> f64 {
        self.step.unwrap_or(self.start)
    }

    /// The fine step.
    pub fn fine_step(&self) -> f64 {
        self.fine_step
            .unwrap_or_else(|| (self.step() / 4.0).max(1.0))
    }

    /// Checks the values serde cannot; errors name the key.
    pub fn validate(&self) -> Result<(), Invalid> {
        let positive = |key: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err((
                    format!("capacity.{key}"),
                    "must be a positive number".to_owned(),
                ))
            }
        };
        positive("start", self.start)?;
        positive("step", self.step())?;
        positive("fine_step", self.fine_step())?;
        positive("max", self.max)?;
        if self.max < self.start {
            return Err((
                "capacity.max".into(),
                "must not be below capacity.start".into(),
            ));
        }
        if self.hold.is_zero() {
            return Err(("capacity.hold".into(), "must be greater than zero".into()));
        }
        if !(self.slo_5xx.is_finite() && (0.0..1.0).contains(&self.slo_5xx)) {
            return Err((
                "capacity.slo_5xx".into(),
                "must be a ratio from 0 up to (not including) 1, e.g. 0.01".into(),
            ));
        }
        if self.slo_p99.is_some_and(|d| d.is_zero()) {
            return Err((
                "capacity.slo_p99".into(),
                "must be greater than zero".into(),
            ));
        }
        if self.consecutive == 0 {
            return Err(("capacity.consecutive".into(), "must be at least 1".into()));
        }
        Ok(())
    }
}

impl super::ScenarioFile {
    /// Whether this run searches capacity instead of following its plan.
    pub fn is_capacity_search(&self) -> bool {
        self.capacity.as_ref().is_some_and(|c| c.enabled)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::parse;

    const BASE: &str = r#"
name = "c"
[[target]]
name = "arm"
url = "http://127.0.0.1:1/arm"
arch = "arm64"
[[request]]
name = "r"
[load]
"#;

    fn load(extra: &str, sets: &[&str]) -> Result<crate::scenario::Scenario, String> {
        let sets: Vec<String> = sets.iter().map(|s| (*s).to_owned()).collect();
        parse(Path::new("c.toml"), &format!("{BASE}{extra}"), &sets).map_err(|e| e.to_string())
    }

    #[test]
    fn a_capacity_search_needs_neither_users_nor_run_time() {
        let s = load("[capacity]\nstart = 4\nslo_p99 = \"250ms\"", &[]).unwrap();
        assert!(s.is_capacity_search());
        let c = s.capacity.unwrap();
        assert_eq!((c.start, c.step(), c.fine_step()), (4.0, 4.0, 1.0));
        assert_eq!(c.slo_p99, Some(Duration::from_millis(250)));
        assert_eq!((c.slo_5xx, c.consecutive, c.after), (0.01, 2, After::Hold));
        // Without it, the plan's keys are required again.
        let e = load("", &[]).unwrap_err();
        assert!(e.contains("load.users"), "{e}");
    }

    #[test]
    fn the_flag_turns_on_a_search_with_defaults_or_the_files_settings() {
        let s = load("", &["capacity.enabled=true"]).unwrap();
        assert!(s.is_capacity_search());
        assert_eq!(s.capacity.unwrap().start, 1.0);
        let off = "[capacity]\nenabled = false\nstart = 8\n";
        let e = load(off, &[]).unwrap_err();
        assert!(
            e.contains("load.users"),
            "disabled search is a plain run: {e}"
        );
        let s = load(off, &["capacity.enabled=true"]).unwrap();
        assert_eq!(s.capacity.unwrap().start, 8.0);
    }

    #[test]
    fn bad_values_and_unknown_keys_name_the_key() {
        for (text, key) in [
            ("[capacity]\nslo_5xx = 1.5", "capacity.slo_5xx"),
            ("[capacity]\nstart = 0", "capacity.start"),
            ("[capacity]\nstart = 10\nmax = 5", "capacity.max"),
            ("[capacity]\nconsecutive = 0", "capacity.consecutive"),
            ("[capacity]\nhold = \"0s\"", "capacity.hold"),
            ("[capacity]\nstep_size = 3", "step_size"),
            ("[capacity]\nafter = \"later\"", "later"),
        ] {
            let e = load(text, &[]).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
