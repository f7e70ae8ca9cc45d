//! The study's rule for load whose numbers count: an arch is validly loaded while its 5XX ratio
//! stays under a limit (1% unless the scenario sets a `5xx_ratio` threshold). Past it, the fleet
//! is shedding load and its latency and throughput no longer describe the service.

use std::collections::BTreeMap;

use super::threshold::{Metric, Op, Scope, Threshold};

/// The limit when the scenario sets none.
pub const DEFAULT_LIMIT: Limit = Limit {
    op: Op::Lt,
    bound: 0.01,
};

/// `5xx_ratio op bound`, with `op` one of `<` and `<=`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub op: Op,
    pub bound: f64,
}

impl Limit {
    /// Whether a 5XX ratio is within the limit.
    pub fn holds(&self, ratio_5xx: f64) -> bool {
        self.op.holds(ratio_5xx, self.bound)
    }

    /// `< 1%`, for people.
    pub fn describe(&self) -> String {
        let op = if self.op == Op::Le { "<=" } else { "<" };
        format!("{op} {}%", self.bound * 100.0)
    }
}

/// The limit of each arch: its own `arch:NAME/5xx_ratio` threshold, else the run-wide
/// `5xx_ratio` threshold, else [`DEFAULT_LIMIT`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidLoad {
    all: Limit,
    by_arch: BTreeMap<String, Limit>,
}

impl Default for ValidLoad {
    fn default() -> Self {
        ValidLoad {
            all: DEFAULT_LIMIT,
            by_arch: BTreeMap::new(),
        }
    }
}

impl ValidLoad {
    /// From the scenario's parsed thresholds; those that are not upper bounds on the 5XX ratio
    /// are not limits.
    pub fn of(thresholds: &[Threshold]) -> ValidLoad {
        let mut rule = ValidLoad::default();
        let limits = thresholds
            .iter()
            .filter(|t| t.metric == Metric::Ratio5xx && matches!(t.op, Op::Lt | Op::Le));
        for t in limits {
            let limit = Limit {
                op: t.op,
                bound: t.bound,
            };
            match &t.scope {
                Scope::All => rule.all = limit,
                Scope::Arch(arch) => {
                    rule.by_arch.insert(arch.clone(), limit);
                }
                Scope::Target(_) => {}
            }
        }
        rule
    }

    pub fn limit(&self, arch: &str) -> Limit {
        self.by_arch.get(arch).copied().unwrap_or(self.all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::scenario::ThresholdSpec;

    fn rule(pairs: &[(&str, &str)]) -> ValidLoad {
        let parsed: Vec<Threshold> = pairs
            .iter()
            .map(|(k, v)| Threshold::parse(k, &ThresholdSpec::Expr((*v).to_owned())).unwrap())
            .collect();
        ValidLoad::of(&parsed)
    }

    #[test]
    fn one_percent_by_default() {
        let r = rule(&[("p99", "< 500ms")]);
        assert_eq!(r.limit("arm64"), DEFAULT_LIMIT);
        assert!(r.limit("arm64").holds(0.0099));
        assert!(!r.limit("arm64").holds(0.01));
    }

    #[test]
    fn an_arch_threshold_beats_the_run_wide_one() {
        let r = rule(&[
            ("5xx_ratio", "<= 0.05"),
            ("arch:arm64/5xx_ratio", "< 0.02"),
            ("arch:amd64/5xx_ratio", "> 0.5"),
            ("target:arm/5xx_ratio", "< 0.9"),
        ]);
        assert_eq!(
            r.limit("arm64"),
            Limit {
                op: Op::Lt,
                bound: 0.02
            }
        );
        // `>` is no limit, so amd64 falls back to the run-wide one.
        let amd = r.limit("amd64");
        assert_eq!(amd.bound, 0.05);
        assert!(amd.holds(0.05));
        assert_eq!(amd.describe(), "<= 5%");
        assert_eq!(r.limit("riscv64").bound, 0.05);
    }
}
