//! Think time (`load.wait`) as written: one flat table read first, so an error names the
//! field (`load.wait.min`), then checked against its kind.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::names::one_of;

/// Think time. `{ kind = "between", min = "500ms", max = "1500ms" }`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    deny_unknown_fields,
    try_from = "RawWait"
)]
pub enum Wait {
    /// No think time.
    #[default]
    None,
    /// The same wait every time.
    Constant {
        #[serde(with = "humantime_serde")]
        duration: Duration,
    },
    /// Uniform between `min` and `max`.
    Between {
        #[serde(with = "humantime_serde")]
        min: Duration,
        #[serde(with = "humantime_serde")]
        max: Duration,
    },
    /// Exponential with this mean: each user's requests form a Poisson process.
    Exponential {
        #[serde(with = "humantime_serde")]
        mean: Duration,
    },
    /// Each iteration (request + wait) lasts at least `interval`.
    Pacing {
        #[serde(with = "humantime_serde")]
        interval: Duration,
    },
    /// `rate` iterations per second per user (pacing at 1/rate).
    Throughput { rate: f64 },
}

/// How `wait` is read: one flat table, so an error names the field (`load.wait.min`), then
/// checked against its kind.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWait {
    kind: WaitKindName,
    #[serde(default, with = "humantime_serde")]
    duration: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    min: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    max: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    mean: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    interval: Option<Duration>,
    #[serde(default)]
    rate: Option<f64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(try_from = "String")]
enum WaitKindName {
    None,
    Constant,
    Between,
    Exponential,
    Pacing,
    Throughput,
}

impl TryFrom<RawWait> for Wait {
    type Error = String;

    fn try_from(raw: RawWait) -> Result<Wait, String> {
        let given = [
            ("duration", raw.duration.is_some()),
            ("min", raw.min.is_some()),
            ("max", raw.max.is_some()),
            ("mean", raw.mean.is_some()),
            ("interval", raw.interval.is_some()),
            ("rate", raw.rate.is_some()),
        ];
        let (name, wants): (&str, &[&str]) = match raw.kind {
            WaitKindName::None => ("none", &[]),
            WaitKindName::Constant => ("constant", &["duration"]),
            WaitKindName::Between => ("between", &["min", "max"]),
            WaitKindName::Exponential => ("exponential", &["mean"]),
            WaitKindName::Pacing => ("pacing", &["interval"]),
            WaitKindName::Throughput => ("throughput", &["rate"]),
        };
        let expected = if wants.is_empty() {
            "no other keys".to_owned()
        } else {
            wants
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(" and ")
        };
        for (key, is_given) in given {
            if is_given && !wants.contains(&key) {
                return Err(format!(
                    "`{key}` does not apply to kind = \"{name}\" (it takes {expected})"
                ));
            }
            if !is_given && wants.contains(&key) {
                return Err(format!("kind = \"{name}\" needs {expected}"));
            }
        }
        // Every field this kind needs was checked present just above.
        let d = |v: Option<Duration>| v.unwrap_or_default();
        Ok(match raw.kind {
            WaitKindName::None => Wait::None,
            WaitKindName::Constant => Wait::Constant {
                duration: d(raw.duration),
            },
            WaitKindName::Between => Wait::Between {
                min: d(raw.min),
                max: d(raw.max),
            },
            WaitKindName::Exponential => Wait::Exponential { mean: d(raw.mean) },
            WaitKindName::Pacing => Wait::Pacing {
                interval: d(raw.interval),
            },
            WaitKindName::Throughput => Wait::Throughput {
                rate: raw.rate.unwrap_or_default(),
            },
        })
    }
}

impl TryFrom<String> for WaitKindName {
    type Error = String;
    fn try_from(v: String) -> Result<Self, String> {
        one_of(
            &v,
            &[
                ("none", WaitKindName::None),
                ("constant", WaitKindName::Constant),
                ("between", WaitKindName::Between),
                ("exponential", WaitKindName::Exponential),
                ("pacing", WaitKindName::Pacing),
                ("throughput", WaitKindName::Throughput),
            ],
        )
    }
}
