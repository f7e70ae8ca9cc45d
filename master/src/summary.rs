//! The JSON summary (`stampede.summary.v1`): the model, how it is built from the aggregate, and
//! how it is written (atomically, so a crash never leaves half a file).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregator, SeriesPoint};
use crate::tally::{ERROR_KINDS, Tally};
use crate::thresholds;

pub const SCHEMA: &str = "stampede.summary.v1";

/// The arch other arches are compared against, when present: the incumbent in the studies.
pub const PREFERRED_BASELINE: &str = "amd64";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
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
    pub thresholds: Vec<thresholds::Outcome>,
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
    pub capacity: Option<crate::capacity::CapacityReport>,
    /// Cost per request and fleet sizes, when `[cost]` was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<crate::cost::CostReport>,
    /// Open model: the generator's own send-time error (actual start − intended), ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_lag_ms: Option<SendLag>,
}

/// One request of the scenario, as served by one arch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RequestResults {
    pub request: String,
    pub method: String,
    pub arch: String,
    #[serde(flatten)]
    pub results: Results,
}

/// Figures for a group of requests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
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

/// Open model: how late the generator started each arrival's request after it was due.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SendLag {
    /// Arrivals sent.
    pub count: u64,
    #[serde(flatten)]
    pub ms: Latency,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetResults {
    /// The target's declared arch.
    pub arch: String,
    #[serde(flatten)]
    pub results: Results,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkerRecord {
    pub id: String,
    pub arch: String,
    pub hostname: String,
    pub joined_s: f64,
    pub left_s: Option<f64>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    pub baseline: String,
    pub by_arch: BTreeMap<String, Ratios>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ratios {
    /// This arch's throughput over the baseline's.
    pub rps_ratio: f64,
    /// This arch's p99 over the baseline's (lower is better).
    pub p99_ratio: f64,
}

/// What the summary is built from, besides the aggregate.
pub struct RunFacts {
    pub name: String,
    pub scenario: serde_json::Value,
    pub started_at: std::time::SystemTime,
    pub ended_at: std::time::SystemTime,
    pub duration_s: f64,
    pub workers: Vec<WorkerRecord>,
}

impl Results {
    /// Figures of a tally over `duration_s` seconds; `with_hdr` embeds the histogram.
    pub fn from_tally(t: &Tally, duration_s: f64, with_hdr: bool) -> Results {
        let errors: BTreeMap<String, u64> = ERROR_KINDS
            .iter()
            .zip(t.errors)
            .map(|(k, n)| ((*k).to_owned(), n))
            .collect();
        let failures_by = (1..=5)
            .zip(t.unexpected)
            .map(|(class, n)| (format!("{class}xx"), n))
            .chain(errors.clone())
            .filter(|(_, n)| *n > 0)
            .collect();
        Results {
            requests: t.requests,
            rps: if duration_s > 0.0 {
                t.requests as f64 / duration_s
            } else {
                0.0
            },
            rps_peak: None,
            status: StatusCounts {
                s1xx: t.status[0],
                s2xx: t.status[1],
                s3xx: t.status[2],
                s4xx: t.status[3],
                s5xx: t.status[4],
            },
            errors,
            failures: t.failures,
            failures_by,
            ratio_5xx: t.ratio_5xx(),
            error_ratio: t.error_ratio(),
            latency_ms: Latency::of(&t.latency),
            hdr: with_hdr.then(|| encode_hdr(t)),
        }
    }
}

/// base64 of the V2 + deflate serialization of the tally's latency histogram.
pub fn encode_hdr(t: &Tally) -> String {
    crate::hdr64::encode(&t.latency)
}

impl Summary {
    /// Builds the summary of a finished run. Thresholds are evaluated by the caller, on the
    /// result, so they see exactly what is written.
    pub fn build(agg: &Aggregator, facts: RunFacts) -> Summary {
        let d = facts.duration_s;
        let series = agg.series().to_vec();
        let mut totals = Results::from_tally(&agg.totals(), d, true);
        totals.rps_peak = series.iter().map(|p| p.rps).reduce(f64::max);
        let by_arch: BTreeMap<String, Results> = agg
            .by_arch()
            .iter()
            .map(|(arch, t)| {
                let mut r = Results::from_tally(t, d, true);
                r.rps_peak = series
                    .iter()
                    .filter_map(|p| p.by_arch.get(arch).map(|a| a.rps))
                    .reduce(f64::max);
                (arch.clone(), r)
            })
            .collect();
        let by_target = agg
            .targets()
            .iter()
            .zip(agg.by_target())
            .map(|(info, t)| {
                let results = Results::from_tally(&t, d, true);
                let entry = TargetResults {
                    arch: info.arch.clone(),
                    results,
                };
                (info.name.clone(), entry)
            })
            .collect();
        let comparison = compare(&by_arch);
        let by_request = agg
            .by_request_arch()
            .iter()
            .map(|((request, arch), t)| RequestResults {
                request: agg
                    .request_names()
                    .get(*request as usize)
                    .cloned()
                    .unwrap_or_default(),
                method: facts.scenario["request"][*request as usize]["method"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                arch: arch.clone(),
                results: Results::from_tally(t, d, true),
            })
            .collect();
        Summary {
            schema: SCHEMA.to_owned(),
            run_id: agg.run_id().to_owned(),
            name: facts.name,
            started_at: humantime::format_rfc3339_millis(facts.started_at).to_string(),
            ended_at: humantime::format_rfc3339_millis(facts.ended_at).to_string(),
            duration_s: d,
            scenario: facts.scenario,
            totals,
            by_arch,
            by_target,
            series,
            workers: facts.workers,
            thresholds: Vec::new(),
            comparison,
            dropped: agg.dropped(),
            aborted: None,
            interval_s: agg.interval_ms() as f64 / 1000.0,
            by_request,
            capacity: None,
            cost: None,
            send_lag_ms: agg.send_lag().map(|h| SendLag {
                count: h.len(),
                ms: Latency::of(h),
            }),
        }
    }

    /// Writes pretty JSON to `path` through a temporary file and a rename.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("json.tmp");
        {
            let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            serde_json::to_writer_pretty(&mut file, self)?;
            file.write_all(b"\n")?;
            file.flush()?;
        }
        std::fs::rename(&tmp, path)
    }
}

/// Ratios of every arch to the baseline (amd64 when present, else the first arch by name).
fn compare(by_arch: &BTreeMap<String, Results>) -> Option<Comparison> {
    let baseline = if by_arch.contains_key(PREFERRED_BASELINE) {
        PREFERRED_BASELINE
    } else {
        by_arch.keys().next()?
    };
    let base = &by_arch[baseline];
    let by_arch = by_arch
        .iter()
        .map(|(arch, r)| {
            let ratios = Ratios {
                rps_ratio: safe_div(r.rps, base.rps),
                p99_ratio: safe_div(r.latency_ms.p99, base.latency_ms.p99),
            };
            (arch.clone(), ratios)
        })
        .collect();
    Some(Comparison {
        baseline: baseline.to_owned(),
        by_arch,
    })
}

fn safe_div(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}
