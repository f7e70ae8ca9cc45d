//! The confidence sections of the summary's comparison, as the schema has them: the window
//! and method, each arch's intervals against the baseline, each target's throughput ratio.
//! Filled by `confidence`; kept apart so the summary's types need nothing that reads them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::batch::Interval;

/// The window and method behind a summary's intervals.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct Window {
    pub method: String,
    /// Confidence level of every interval (0.95).
    pub level: f64,
    /// How the warm-up was cut.
    pub warmup: String,
    /// The steady window, seconds since the run started (0 when there is none).
    pub from_s: f64,
    pub to_s: f64,
    /// Series intervals in the window.
    pub intervals: usize,
    pub batches: usize,
    /// Length of one batch, seconds.
    pub batch_s: f64,
    /// Why there are no intervals, when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The intervals of one arch's figures against the baseline's, over the steady window.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
pub struct RatioIntervals {
    /// Mean throughput over the baseline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps_ratio: Option<Interval>,
    /// Mean per-interval p50 over the baseline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ratio: Option<Interval>,
    /// Mean per-interval p99 over the baseline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ratio: Option<Interval>,
    /// This arch's 5XX ratio (5XX over requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_5xx: Option<Interval>,
    /// This arch's 5XX ratio minus the baseline's (a ratio of zeros says nothing; a
    /// difference does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_5xx_diff: Option<Interval>,
}

/// One target's throughput against the baseline arch's first target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct TargetRatio {
    /// The target compared against.
    pub vs: String,
    pub rps_ratio: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps_ci: Option<Interval>,
}
