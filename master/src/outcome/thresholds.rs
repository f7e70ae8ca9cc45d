//! The outcome of a threshold, as the summary records it (`thresholds: [{expr, value, pass}]`).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The outcome of one threshold, as the summary records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct Outcome {
    /// `key op value`, as written.
    pub expr: String,
    /// The measured value (ms for latency); null when the scope saw no requests.
    pub value: Option<f64>,
    pub pass: bool,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.pass { "pass" } else { "FAIL" };
        match self.value {
            Some(v) => write!(f, "{verdict}  {}  (measured {v:.4})", self.expr),
            None => write!(f, "{verdict}  {}  (no requests in scope)", self.expr),
        }
    }
}
