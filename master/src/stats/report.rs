//! An interval report as the aggregator counts it: decoded and checked (by `wire::decode`)
//! from what a worker sent, with its histograms kept as their non-empty buckets.

use super::latencies::Latencies;
use super::phases::{PhaseSeries, ReasonCount};
use super::tally::Class;

/// One key of one interval, decoded.
#[derive(Debug, Clone)]
pub struct Series {
    pub target: u32,
    pub request: u32,
    pub arch: String,
    pub class: Class,
    pub unexpected: bool,
    pub count: u64,
    pub hist: Latencies,
}

/// An interval report, decoded.
#[derive(Debug, Clone)]
pub struct Report {
    pub run_id: String,
    pub worker_id: String,
    pub seq: u64,
    pub start_ms: u64,
    pub end_ms: u64,
    pub users: u32,
    pub is_final: bool,
    pub dropped: u64,
    /// The latest `requests` stage this worker has sent in full.
    pub completed_stage: u32,
    pub series: Vec<Series>,
    /// Open model: how late each sent arrival's request started (µs).
    pub send_lag: Option<Latencies>,
    /// Connection and response phases per (target, arch, phase).
    pub phases: Vec<PhaseSeries>,
    /// Failed requests per (target, outcome, reason).
    pub reasons: Vec<ReasonCount>,
}

impl Report {
    pub fn requests(&self) -> u64 {
        self.series.iter().map(|s| s.count).sum()
    }
}
