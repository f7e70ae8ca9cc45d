//! Pricing: from what each arch's fleet costs (`[cost]`) and the throughput the summary says
//! it sustains (its knee, else its peak), the cost of a million requests and the nodes each
//! arch needs for a given throughput.

use std::collections::BTreeMap;

use super::cost::{ArchCost, Basis, CostReport};
use super::summary::Summary;
use crate::scenario::CostSpec;

/// Prices every arch of `spec` that the run measured.
pub fn evaluate(spec: &CostSpec, summary: &Summary) -> CostReport {
    let by_arch: BTreeMap<String, ArchCost> = spec
        .arch
        .iter()
        .filter_map(|(arch, price)| {
            let (basis, rps) = sustained(summary, arch)?;
            let nodes = f64::from(price.nodes);
            let cost_per_hour = price.price_per_node_hour * nodes;
            let rps_per_node = rps / nodes;
            let served = rps > 0.0;
            let nodes_needed = spec
                .target_rps
                .filter(|_| served)
                .map(|target| (target / rps_per_node - 1e-9).ceil().max(1.0) as u64);
            let cost = ArchCost {
                price_per_node_hour: price.price_per_node_hour,
                nodes: price.nodes,
                basis,
                rps,
                rps_per_node,
                cost_per_hour,
                cost_per_million: served.then(|| cost_per_hour / (rps * 3600.0) * 1e6),
                nodes_needed,
                cost_per_hour_at_target: nodes_needed.map(|n| n as f64 * price.price_per_node_hour),
            };
            Some((arch.clone(), cost))
        })
        .collect();
    let cheapest = by_arch
        .iter()
        .filter_map(|(arch, c)| Some((arch, c.cost_per_million?)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(arch, _)| arch.clone());
    CostReport {
        target_rps: spec.target_rps,
        by_arch,
        cheapest,
    }
}

/// The throughput an arch is known to sustain: its knee, else its peak.
fn sustained(summary: &Summary, arch: &str) -> Option<(Basis, f64)> {
    let knee = summary
        .capacity
        .as_ref()
        .and_then(|c| c.by_arch.get(arch))
        .and_then(|a| a.max_sustainable_rps);
    if let Some(rps) = knee {
        return Some((Basis::Knee, rps));
    }
    let r = summary.by_arch.get(arch)?;
    Some((Basis::Peak, r.rps_peak.unwrap_or(r.rps)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Results;
    use crate::scenario::ArchPrice;

    fn summary(peaks: &[(&str, f64)]) -> Summary {
        let json = serde_json::json!({
            "schema": "stampede.summary.v1", "run_id": "r", "name": "n",
            "started_at": "", "ended_at": "", "duration_s": 1.0, "scenario": {},
            "totals": Results::default(), "by_arch": {}, "by_target": {}, "series": [],
            "workers": [], "thresholds": [], "comparison": null, "dropped": 0
        });
        let mut s: Summary = serde_json::from_value(json).unwrap();
        for (arch, peak) in peaks {
            let r = Results {
                rps_peak: Some(*peak),
                ..Results::default()
            };
            s.by_arch.insert((*arch).to_owned(), r);
        }
        s
    }

    #[test]
    fn the_studys_node_counts_come_out_of_the_throughputs() {
        // 100 000 req/s; amd64 nodes do 1786 req/s each, arm64 nodes 2326: 56 vs 43 nodes.
        let spec = CostSpec {
            target_rps: Some(100_000.0),
            arch: BTreeMap::from([
                (
                    "amd64".to_owned(),
                    ArchPrice {
                        price_per_node_hour: 0.192,
                        nodes: 2,
                    },
                ),
                (
                    "arm64".to_owned(),
                    ArchPrice {
                        price_per_node_hour: 0.154,
                        nodes: 2,
                    },
                ),
                (
                    "riscv".to_owned(),
                    ArchPrice {
                        price_per_node_hour: 0.1,
                        nodes: 1,
                    },
                ),
            ]),
        };
        let c = evaluate(&spec, &summary(&[("amd64", 3572.0), ("arm64", 4652.0)]));
        let amd = &c.by_arch["amd64"];
        let arm = &c.by_arch["arm64"];
        assert_eq!(amd.basis, Basis::Peak);
        assert_eq!(amd.nodes_needed, Some(56));
        assert_eq!(arm.nodes_needed, Some(43));
        // 0.384 $/h over 3572 req/s: 0.384 / (3572 · 3600) · 1e6.
        let want = 0.384 / (3572.0 * 3600.0) * 1e6;
        assert!((amd.cost_per_million.unwrap() - want).abs() < 1e-12);
        assert!((arm.cost_per_hour_at_target.unwrap() - 43.0 * 0.154).abs() < 1e-9);
        assert_eq!(c.cheapest.as_deref(), Some("arm64"));
        // An arch the run never saw is not priced.
        assert!(!c.by_arch.contains_key("riscv"));
    }

    #[test]
    fn exact_multiples_need_no_extra_node_and_nothing_served_has_no_price() {
        let spec = CostSpec {
            target_rps: Some(300.0),
            arch: BTreeMap::from([(
                "a".to_owned(),
                ArchPrice {
                    price_per_node_hour: 1.0,
                    nodes: 1,
                },
            )]),
        };
        assert_eq!(
            evaluate(&spec, &summary(&[("a", 100.0)])).by_arch["a"].nodes_needed,
            Some(3)
        );
        let none = evaluate(&spec, &summary(&[("a", 0.0)]));
        assert_eq!(none.by_arch["a"].cost_per_million, None);
        assert_eq!(none.by_arch["a"].nodes_needed, None);
        assert_eq!(none.cheapest, None);
    }
}
