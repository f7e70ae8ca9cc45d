//! The summary's phases and failure reasons: how long requests spent resolving, connecting,
//! in the TLS handshake and waiting for the first byte (per arch, per target, in total), and
//! why failed requests failed.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The phases, as the summary names them (`phases_ms: {PHASE: ...}`), in wire order.
pub const PHASES: [&str; 4] = ["dns", "connect", "tls", "ttfb"];

/// One phase's figures, ms. A phase is counted only when it happened: a kept-alive request
/// has no connect or TLS phase, so `count` is the connections opened for those phases.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default, JsonSchema)]
pub struct PhaseFigures {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl PhaseFigures {
    /// The figures of a histogram of microseconds; all 0 when it is empty.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        PhaseFigures {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// Figures by phase name; phases that never happened are left out.
pub type PhasesMs = BTreeMap<String, PhaseFigures>;

/// One row of the failures table: how many requests of a target failed for one reason.
#[derive(
    Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Default, JsonSchema,
)]
pub struct FailureRow {
    pub target: String,
    /// The outcome: a transport error kind (`tls`, `connect`, ...) or a status class (`5xx`).
    pub kind: String,
    /// Short, from a fixed set: `unknown issuer`, `name mismatch`, `connection refused`, ...
    pub reason: String,
    pub count: u64,
}
