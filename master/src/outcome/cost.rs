//! The cost model: from what each arch's fleet costs (`[cost]`) and the throughput it was
//! measured to sustain, the cost of a million requests and the nodes each arch needs for a
//! given throughput (the studies' "56 Intel nodes vs 43 Graviton nodes").

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which throughput the cost of an arch is based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The highest throughput that kept the SLO in the capacity search.
    Knee,
    /// No knee was found: the highest throughput of one interval of the run, a lower bound of
    /// what the fleet can do.
    Peak,
}

/// The `cost` section of the summary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct CostReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rps: Option<f64>,
    pub by_arch: BTreeMap<String, ArchCost>,
    /// The arch with the lowest cost per million requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cheapest: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct ArchCost {
    pub price_per_node_hour: f64,
    pub nodes: u32,
    pub basis: Basis,
    /// Throughput the figures below are based on (req/s, whole fleet).
    pub rps: f64,
    pub rps_per_node: f64,
    /// What the fleet costs per hour.
    pub cost_per_hour: f64,
    /// What a million requests cost at `rps`; absent when nothing was served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_million: Option<f64>,
    /// Nodes needed for `target_rps`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes_needed: Option<u64>,
    /// What those nodes cost per hour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_hour_at_target: Option<f64>,
}
