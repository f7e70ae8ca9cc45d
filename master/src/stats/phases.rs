//! Phases and failure reasons as the master counts them: each phase's latencies per (target,
//! arch, phase), merged exactly (sparse bucket lists: a phase fills few buckets, and a full
//! counter array per key would cost the summary more than all the rest), and failed requests
//! counted per (target, outcome, reason).

use std::collections::BTreeMap;

use super::latencies::Latencies;
use super::tally::Class;
use crate::outcome::{ERROR_KINDS, FailureRow, PHASES, PhaseFigures, PhasesMs};

/// Distinct (target, outcome, reason) rows one run keeps; reasons come from workers, so a
/// misbehaving one must not grow the table without bound. Beyond, rows fold into [`OTHER`].
pub const MAX_REASONS: usize = 1024;
/// The reason rows beyond [`MAX_REASONS`] are counted under.
pub const OTHER: &str = "other reasons";

/// One phase of one (target, arch) in one interval, decoded.
#[derive(Debug, Clone)]
pub struct PhaseSeries {
    pub target: u32,
    pub arch: String,
    /// Index into [`PHASES`].
    pub phase: usize,
    pub hist: Latencies,
}

/// Failed requests of one (target, outcome) for one reason, in one interval.
#[derive(Debug, Clone)]
pub struct ReasonCount {
    pub target: u32,
    pub class: Class,
    pub reason: String,
    pub count: u64,
}

/// Each phase's latencies, in [`PHASES`] order.
pub type PhaseSet = [Latencies; 4];

/// The run's phases and failure reasons, cumulative.
#[derive(Debug, Default)]
pub struct PhaseBook {
    cells: BTreeMap<(u32, String), PhaseSet>,
    /// (target, wire outcome, reason) → failed requests.
    reasons: BTreeMap<(u32, i32, String), u64>,
}

impl PhaseBook {
    pub fn add_phase(&mut self, target: u32, arch: &str, phase: usize, l: &Latencies) {
        let Some(_) = PHASES.get(phase) else { return };
        let key = (target, arch.to_owned());
        let set = self.cells.entry(key).or_default();
        set[phase].merge(l);
    }

    pub fn add_reason(&mut self, target: u32, class: Class, reason: &str, count: u64) {
        let mut key = (target, class.to_wire(), reason.to_owned());
        if !self.reasons.contains_key(&key) && self.reasons.len() >= MAX_REASONS {
            key.2 = OTHER.to_owned();
        }
        let n = self.reasons.entry(key).or_default();
        *n = n.saturating_add(count);
    }

    /// Every (target, arch) with its phases.
    pub fn cells(&self) -> impl Iterator<Item = (u32, &str, &PhaseSet)> {
        self.cells.iter().map(|((t, a), set)| (*t, a.as_str(), set))
    }

    /// Every (target, outcome, reason) with its count.
    pub fn reasons(&self) -> impl Iterator<Item = (u32, Class, &str, u64)> {
        self.reasons.iter().filter_map(|((t, outcome, r), &n)| {
            Some((*t, Class::from_wire(*outcome)?, r.as_str(), n))
        })
    }

    /// Phases per serving arch.
    pub fn by_arch(&self) -> BTreeMap<String, PhaseSet> {
        let mut out: BTreeMap<String, PhaseSet> = BTreeMap::new();
        for ((_, arch), set) in &self.cells {
            merge_set(out.entry(arch.clone()).or_default(), set);
        }
        out
    }

    /// Phases per target, in scenario order for `targets` targets.
    pub fn by_target(&self, targets: usize) -> Vec<PhaseSet> {
        let mut out = vec![PhaseSet::default(); targets];
        for ((target, _), set) in &self.cells {
            if let Some(t) = out.get_mut(*target as usize) {
                merge_set(t, set);
            }
        }
        out
    }

    pub fn totals(&self) -> PhaseSet {
        let mut out = PhaseSet::default();
        for set in self.cells.values() {
            merge_set(&mut out, set);
        }
        out
    }

    /// The failures table, with target names from `names` (by index), largest first within
    /// a target.
    pub fn failures(&self, names: &[&str]) -> Vec<FailureRow> {
        let mut rows: Vec<FailureRow> = self
            .reasons()
            .map(|(target, class, reason, count)| FailureRow {
                target: names
                    .get(target as usize)
                    .copied()
                    .unwrap_or("?")
                    .to_owned(),
                kind: kind_name(class),
                reason: reason.to_owned(),
                count,
            })
            .collect();
        rows.sort_by(|a, b| {
            (&a.target, std::cmp::Reverse(a.count), &a.kind, &a.reason).cmp(&(
                &b.target,
                std::cmp::Reverse(b.count),
                &b.kind,
                &b.reason,
            ))
        });
        rows
    }
}

fn merge_set(into: &mut PhaseSet, from: &PhaseSet) {
    for (a, b) in into.iter_mut().zip(from) {
        a.merge(b);
    }
}

/// The summary's name of an outcome: the transport error kind, or the status class.
pub fn kind_name(class: Class) -> String {
    match class {
        Class::Status(c) => format!("{c}xx"),
        Class::Error(k) => ERROR_KINDS[k.min(ERROR_KINDS.len() - 1)].to_owned(),
    }
}

/// The summary's figures of a set of phases (phases that never happened left out).
pub fn figures(set: &PhaseSet) -> PhasesMs {
    PHASES
        .iter()
        .zip(set)
        .filter(|(_, l)| !l.is_empty())
        .map(|(name, l)| ((*name).to_owned(), PhaseFigures::of(&l.histogram())))
        .collect()
}

#[cfg(test)]
mod tests {
    use stampede_proto::hdr::new_histogram;

    use super::*;

    fn lat(values: &[u64]) -> Latencies {
        let mut h = new_histogram();
        for &v in values {
            h.record(v).unwrap();
        }
        Latencies::from(&h)
    }

    /// Per-arch, per-target and total figures come from the same exact merges.
    #[test]
    fn phases_merge_per_arch_target_and_total() {
        let mut book = PhaseBook::default();
        book.add_phase(0, "arm64", 1, &lat(&[1000, 2000]));
        book.add_phase(0, "arm64", 1, &lat(&[3000]));
        book.add_phase(1, "amd64", 1, &lat(&[4000]));
        book.add_phase(1, "amd64", 3, &lat(&[20_000]));
        book.add_phase(1, "amd64", 9, &lat(&[1]));
        let arm = figures(&book.by_arch()["arm64"]);
        assert_eq!(arm["connect"].count, 3);
        assert!((arm["connect"].p50 - 2.0).abs() < 0.01, "{arm:?}");
        assert!(!arm.contains_key("ttfb"));
        let targets = book.by_target(2);
        assert_eq!(figures(&targets[1])["ttfb"].count, 1);
        let total = figures(&book.totals());
        assert_eq!(total["connect"].count, 4);
        assert!((total["connect"].max - 4.0).abs() < 0.01);
    }

    #[test]
    fn reasons_count_per_key_and_stay_bounded() {
        let mut book = PhaseBook::default();
        book.add_reason(0, Class::Error(4), "unknown issuer", 3);
        book.add_reason(0, Class::Error(4), "unknown issuer", 2);
        book.add_reason(1, Class::Error(0), "connection refused", 7);
        for i in 0..MAX_REASONS + 10 {
            book.add_reason(1, Class::Error(3), &format!("r{i}"), 1);
        }
        let rows = book.failures(&["arm", "amd"]);
        let tls = rows.iter().find(|r| r.kind == "tls").unwrap();
        assert_eq!(
            (tls.target.as_str(), tls.reason.as_str(), tls.count),
            ("arm", "unknown issuer", 5)
        );
        assert!(rows.len() <= MAX_REASONS + 1);
        let other = rows.iter().find(|r| r.reason == OTHER).unwrap();
        assert_eq!(other.count, 12);
        let total: u64 = rows.iter().map(|r| r.count).sum();
        assert_eq!(total, 5 + 7 + MAX_REASONS as u64 + 10);
    }
}
