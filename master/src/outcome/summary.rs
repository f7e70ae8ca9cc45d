//! The JSON summary (`stampede.summary.v1`): its top level and the figures of a group of
//! requests; how it is written (atomically, so a crash never leaves half a file) and read.

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::capacity::CapacityReport;
use super::cost::CostReport;
use super::file::write_atomically;
use super::intervals::{RatioIntervals, TargetRatio, Window};
use super::phases::{FailureRow, PhasesMs};
use super::series::SeriesPoint;
use super::thresholds::Outcome;

pub const SCHEMA: &str = "stampede.summary.v1";

/// Transport error kinds, as the summary names them (`errors: {KIND: n}`).
pub const ERROR_KINDS: [&str; 5] = ["connect", "reset", "timeout", "other", "tls"];

/// The JSON summary of one run, `stampede.summary.v1`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
pub struct Summary {
    /// Always `stampede.summary.v1`: fields are only ever added within a version.
    #[schemars(extend("const" = SCHEMA))]
    pub schema: String,
    pub run_id: String,
    pub name: String,
    pub started_at: String,
    pub ended_at: String,
    pub duration_s: f64,
    pub scenario: serde_json::Value,
    pub totals: Results,
    pub by_arch: BTreeMap<String, Results>,
    pub by_target: BTreeMap<String, TargetResults>,
    pub series: Vec<SeriesPoint>,
    pub workers: Vec<WorkerRecord>,
    pub thresholds: Vec<Outcome>,
    pub comparison: Option<Comparison>,
    /// Open-model arrivals that found no free slot (never hidden).
    pub dropped: u64,
    /// Why the run stopped before its plan ended (an `abort_on_fail` threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    /// Length of one series interval, seconds.
    #[serde(default)]
    pub interval_s: f64,
    /// Figures per (request, serving arch), in scenario order then by arch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_request: Vec<RequestResults>,
    /// The capacity search, when the run was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityReport>,
    /// Cost per request and fleet sizes, when `[cost]` was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostReport>,
    /// Open model: the generator's own send-time error (actual start − intended), ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_lag_ms: Option<Delays>,
    /// Requests whose report came after their interval had closed: counted in every total,
    /// missing from the series (a master that fell behind, or a worker's late resend).
    #[serde(default)]
    pub late_requests: u64,
    /// How far behind the master was in counting reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<MasterLoad>,
    /// How the run ended: `completed` (its master saw it through, resumed or not) or
    /// `recovered` (rebuilt from the journal of a master that died).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    /// Times no master ran (a resumed run's gaps), seconds from the start: no load then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outages: Vec<Outage>,
    /// A recovered run: how far its journal went, and what it cannot hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<Recovered>,
    /// Failed requests by (target, kind, reason), as the workers classified them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<FailureRow>,
}

/// A time no master ran, seconds from the run's start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
pub struct Outage {
    pub from_s: f64,
    pub to_s: f64,
}

/// What a summary recovered from a journal stands for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
pub struct Recovered {
    /// The journal's last record, seconds from the run's start: the figures go to there.
    pub journal_until_s: f64,
    /// What is missing: the requests made after that, at most one report interval per worker.
    pub note: String,
}

/// How far behind the master was: how long reports waited between arriving and being counted
/// and acknowledged, and for how long that wait passed one report interval.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
pub struct MasterLoad {
    pub queue_ms: Delays,
    /// Seconds of the run during which the master was behind.
    pub behind_s: f64,
    /// How much later than their connection's earliest reports came off the stream: time
    /// they sat unread in the transport while the master was short of CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_ms: Option<Delays>,
    /// Seconds during which the master's runtime had no idle time (busy over 90%).
    #[serde(default)]
    pub saturated_s: f64,
}

/// One request of the scenario, as served by one arch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct RequestResults {
    pub request: String,
    pub method: String,
    pub arch: String,
    #[serde(flatten)]
    pub results: Results,
}

/// Figures for a group of requests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
pub struct Results {
    /// Every attempt that got a response or an error; `status` + `errors` add up to it.
    pub requests: u64,
    /// Mean requests per second over the run.
    pub rps: f64,
    /// Highest requests per second of one interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rps_peak: Option<f64>,
    pub status: StatusCounts,
    pub errors: BTreeMap<String, u64>,
    /// Requests whose status was not expected, plus transport errors.
    pub failures: u64,
    /// `failures` by cause: the status class (`5xx`, ...) or the transport error kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failures_by: BTreeMap<String, u64>,
    pub ratio_5xx: f64,
    pub error_ratio: f64,
    /// Latency of the requests that got a response.
    pub latency_ms: Latency,
    /// The full latency histogram: base64 of HdrHistogram V2 + deflate, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hdr: Option<String>,
    /// Connection and response phases (DNS, connect, TLS, time to first byte), ms; on the
    /// totals, arches and targets.
    #[serde(default, skip_serializing_if = "PhasesMs::is_empty")]
    pub phases_ms: PhasesMs,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
pub struct StatusCounts {
    #[serde(rename = "1xx", default, skip_serializing_if = "is_zero")]
    pub s1xx: u64,
    #[serde(rename = "2xx")]
    pub s2xx: u64,
    #[serde(rename = "3xx")]
    pub s3xx: u64,
    #[serde(rename = "4xx")]
    pub s4xx: u64,
    #[serde(rename = "5xx")]
    pub s5xx: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    /// The figures of a histogram of microseconds, in milliseconds; all 0 when it is empty.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// A distribution of delays: how many, and their figures in ms (the open model's send lag,
/// the master's queue).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
pub struct Delays {
    /// Delays measured (arrivals sent; reports counted).
    pub count: u64,
    #[serde(flatten)]
    pub ms: Latency,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct TargetResults {
    /// The target's declared arch.
    pub arch: String,
    #[serde(flatten)]
    pub results: Results,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct WorkerRecord {
    pub id: String,
    pub arch: String,
    pub hostname: String,
    pub joined_s: f64,
    pub left_s: Option<f64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct Comparison {
    pub baseline: String,
    pub by_arch: BTreeMap<String, Ratios>,
    /// The steady window and method the intervals were computed over (`docs/confidence.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Each target's throughput against the baseline arch's first target.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_target: BTreeMap<String, TargetRatio>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct Ratios {
    /// This arch's throughput over the baseline's.
    pub rps_ratio: f64,
    /// This arch's p99 over the baseline's (lower is better).
    pub p99_ratio: f64,
    /// This arch's p50 over the baseline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ratio: Option<f64>,
    /// 95% intervals over the steady window (absent for the baseline itself, and when the
    /// window was too short).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<RatioIntervals>,
}

impl Summary {
    /// Writes pretty JSON to `path` through a temporary file and a rename.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        write_atomically(path, &json)
    }

    /// Reads a summary written by [`Summary::write`]; the error says what is wrong.
    pub fn read(path: &Path) -> Result<Summary, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| format!("not a stampede summary: {e}"))
    }
}

impl Comparison {
    /// Ratios of every arch to the baseline; `None` when no arch served anything.
    pub fn of(by_arch: &BTreeMap<String, Results>) -> Option<Comparison> {
        let baseline = super::baseline(by_arch.keys().map(String::as_str))?;
        let base = &by_arch[baseline];
        let by_arch = by_arch
            .iter()
            .map(|(arch, r)| {
                let ratios = Ratios {
                    rps_ratio: safe_div(r.rps, base.rps),
                    p99_ratio: safe_div(r.latency_ms.p99, base.latency_ms.p99),
                    p50_ratio: Some(safe_div(r.latency_ms.p50, base.latency_ms.p50)),
                    ci: None,
                };
                (arch.clone(), ratios)
            })
            .collect();
        Some(Comparison {
            baseline: baseline.to_owned(),
            by_arch,
            window: None,
            by_target: BTreeMap::new(),
        })
    }
}

fn safe_div(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}
