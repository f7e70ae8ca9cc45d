//! The summary's time series: one point per report interval, per arch and per target.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One point of the time series.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct SeriesPoint {
    /// End of the interval, seconds since the run started.
    pub t: f64,
    /// Users running at the end of the interval, as the workers reported.
    pub users: u64,
    /// Requests per second over all arches.
    pub rps: f64,
    pub by_arch: BTreeMap<String, ArchPoint>,
    /// Requests per second per target (by name).
    pub by_target: BTreeMap<String, f64>,
}

/// One arch in one interval.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct ArchPoint {
    pub rps: f64,
    pub requests: u64,
    pub ratio_5xx: f64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    /// Requests with an unexpected status or a transport error.
    #[serde(default)]
    pub failures: u64,
    /// The interval's latency histogram: base64 of HdrHistogram V2 + deflate, µs (for the
    /// interval log and the reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdr: Option<String>,
}
