//! The `capacity` section of the summary: per arch, every level tried, the knee and the first
//! breach; what the search (`run::capacity`) found, as outputs read it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::scenario::CapacitySpec;

/// The `capacity` section of the summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct CapacityReport {
    /// What a level counts: `users` (closed model) or `req/s` (open model).
    pub unit: String,
    pub rules: CapacitySpec,
    pub by_arch: BTreeMap<String, ArchCapacity>,
    /// Max sustainable throughput of every arch over the baseline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<CapacityComparison>,
}

/// The search result of one arch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct ArchCapacity {
    pub end: End,
    /// The highest level that kept the SLO, as measured there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knee: Option<Step>,
    /// The good throughput (no 5XX, no transport error) at the knee: as confirmed with every
    /// arch at its knee together when there was a confirmation, else as first measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_sustainable_rps: Option<f64>,
    /// How sure the knee is: the search's resolution and the spread of the windows behind
    /// `max_sustainable_rps`; present with a knee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncertainty: Option<KneeUncertainty>,
    /// The lowest level that breached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breach: Option<Step>,
    /// The knee measured again at the end, with every arch at its knee at the same time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<Step>,
    /// Every level tried, in order.
    pub steps: Vec<Step>,
}

/// How sure a knee is. The level is known to one fine step (the true limit lies between the
/// knee and the first breach above it), and the throughput to the spread of the windows it was
/// measured over: the confirmation's when there was one, else the knee's own.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct KneeUncertainty {
    /// The fine step of the search, in the search's unit.
    pub fine_step: f64,
    /// The first level above the knee that breached, when one did (at most a fine step up
    /// after a refinement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breach_level: Option<f64>,
    /// The good throughput of each measured window (report interval) behind
    /// `max_sustainable_rps`: how many, the lowest and the highest.
    pub windows: Spread,
}

impl KneeUncertainty {
    /// The uncertainty of `knee`, found with `fine_step`, first breached at `breach`, and
    /// measured again at `confirmed` (whose windows then give the spread, as they give
    /// `max_sustainable_rps`); `None` without a knee or measured windows.
    pub fn of(
        knee: Option<&Step>,
        confirmed: Option<&Step>,
        breach: Option<&Step>,
        fine_step: f64,
    ) -> Option<KneeUncertainty> {
        let knee = knee?;
        let windows = confirmed.unwrap_or(knee).ok_rps_windows?;
        Some(KneeUncertainty {
            fine_step,
            breach_level: breach.map(|b| b.level).filter(|&b| b > knee.level),
            windows,
        })
    }
}

/// How a figure spread over the windows (report intervals) it was measured in.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct Spread {
    pub count: u32,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct CapacityComparison {
    pub baseline: String,
    /// `max_sustainable_rps` over the baseline's.
    pub rps_ratio: BTreeMap<String, f64>,
}

/// Coarse steps up, fine steps back from the first breach, or the final confirmation of every
/// arch at its knee at the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Coarse,
    Fine,
    Confirm,
}

/// How one level went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Step {
    pub level: f64,
    pub phase: Phase,
    /// When the level was set and when it was decided, seconds since the run started.
    pub started_s: f64,
    pub ended_s: f64,
    /// The span the figures below were measured over (the intervals after the level settled),
    /// seconds since the run started: what to compare with the targets' own metrics.
    #[serde(default)]
    pub measured_from_s: f64,
    #[serde(default)]
    pub measured_to_s: f64,
    /// Throughput over the measured intervals.
    pub rps: f64,
    /// Throughput of answers that were neither 5XX nor a transport error.
    #[serde(default)]
    pub ok_rps: f64,
    /// `ok_rps` of each measured interval on its own: how steady the level was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok_rps_windows: Option<Spread>,
    pub requests: u64,
    /// 5XX answers and transport errors over requests, over the measured intervals.
    pub ratio_bad: f64,
    /// Median of the measured intervals' p50, and the highest of their p99.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub passed: bool,
    /// Why it breached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breach: Option<String>,
}

/// Why a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// A level breached and the fine steps found the knee below it.
    Knee,
    /// Every level up to `max` kept the SLO: the knee is at least `max`.
    MaxReached,
    /// The start level already breached: the knee is below it.
    BreachedAtStart,
    /// The run ended first.
    Unfinished,
}
