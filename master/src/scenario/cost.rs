//! `[cost]`: what each arch's fleet costs, to turn throughput into money and node counts.
//!
//! ```toml
//! [cost]
//! target_rps = 5000                 # size every fleet for this throughput (optional)
//! [cost.arch.arm64]
//! price_per_node_hour = 0.0816      # e.g. on-demand price of one node (or pod share)
//! nodes = 2                         # nodes (or pods) behind this arch's targets
//! [cost.arch.amd64]
//! price_per_node_hour = 0.096
//! nodes = 2
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::invalid::Invalid;

/// `[cost]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct CostSpec {
    /// Throughput (req/s) to size every fleet for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rps: Option<f64>,
    /// Prices and fleet sizes by arch.
    #[serde(default)]
    pub arch: BTreeMap<String, ArchPrice>,
}

/// `[cost.arch.NAME]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArchPrice {
    /// Price of one node for one hour, in any currency (the same for every arch).
    pub price_per_node_hour: f64,
    /// Nodes (or pods) that served this arch's targets during the run.
    #[serde(default = "one")]
    pub nodes: u32,
}

fn one() -> u32 {
    1
}

impl CostSpec {
    /// Checks the values serde cannot; errors name the key.
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(rps) = self.target_rps
            && !(rps.is_finite() && rps > 0.0)
        {
            return Err((
                "cost.target_rps".into(),
                "must be a positive number of requests per second".into(),
            ));
        }
        if self.arch.is_empty() {
            return Err((
                "cost.arch".into(),
                "give at least one [cost.arch.NAME] with price_per_node_hour".into(),
            ));
        }
        for (name, p) in &self.arch {
            if !(p.price_per_node_hour.is_finite() && p.price_per_node_hour >= 0.0) {
                return Err((
                    format!("cost.arch.{name}.price_per_node_hour"),
                    "must be a number of at least 0".into(),
                ));
            }
            if p.nodes == 0 {
                return Err((
                    format!("cost.arch.{name}.nodes"),
                    "must be at least 1".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::scenario::parse;

    const BASE: &str = r#"
name = "c"
run_time = "1s"
[[target]]
name = "arm"
url = "http://127.0.0.1:1/arm"
arch = "arm64"
[[request]]
name = "r"
[load]
users = 1
"#;

    fn load(extra: &str) -> Result<crate::scenario::Scenario, String> {
        parse(Path::new("c.toml"), &format!("{BASE}{extra}"), &[]).map_err(|e| e.to_string())
    }

    #[test]
    fn prices_load_and_bad_ones_name_the_key() {
        let s = load("[cost]\ntarget_rps = 500\n[cost.arch.arm64]\nprice_per_node_hour = 0.1\n")
            .unwrap();
        let c = s.file.cost.unwrap();
        assert_eq!(c.target_rps, Some(500.0));
        assert_eq!(c.arch["arm64"].nodes, 1);
        for (text, key) in [
            ("[cost]\n", "cost.arch"),
            ("[cost.arch.arm64]\nnodes = 2\n", "price_per_node_hour"),
            (
                "[cost.arch.arm64]\nprice_per_node_hour = -1\n",
                "cost.arch.arm64.price_per_node_hour",
            ),
            (
                "[cost.arch.arm64]\nprice_per_node_hour = 1\nnodes = 0\n",
                "cost.arch.arm64.nodes",
            ),
            (
                "[cost]\ntarget_rps = 0\n[cost.arch.a]\nprice_per_node_hour = 1\n",
                "cost.target_rps",
            ),
        ] {
            let e = load(text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
