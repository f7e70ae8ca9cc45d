use std::collections::BTreeMap;

use super::*;
use crate::outcome::series::{ArchPoint, SeriesPoint};
use crate::outcome::summary::{Latency, SCHEMA, TargetResults};

/// A summary of `n` one-second intervals: per arch, throughput `rps` and p99 `p99` with a
/// small deterministic wobble, so batches differ.
fn summary(n: usize, arches: &[(&str, f64, f64)]) -> Summary {
    let mut s = Summary {
        schema: SCHEMA.to_owned(),
        run_id: "run".into(),
        interval_s: 1.0,
        ..Summary::default()
    };
    for &(arch, rps, p99) in arches {
        let r = Results {
            requests: (rps * n as f64) as u64,
            rps,
            latency_ms: Latency {
                p50: p99 / 4.0,
                p99,
                ..Latency::default()
            },
            ..Results::default()
        };
        let target = TargetResults {
            arch: arch.to_owned(),
            results: r.clone(),
        };
        s.by_target.insert(format!("t-{arch}"), target);
        s.by_arch.insert(arch.to_owned(), r);
    }
    s.series = (0..n)
        .map(|i| {
            let wobble = [0.98, 1.01, 1.0, 0.99, 1.02][i % 5];
            let by_arch: BTreeMap<String, ArchPoint> = arches
                .iter()
                .map(|&(arch, rps, p99)| {
                    let point = ArchPoint {
                        rps: rps * wobble,
                        requests: (rps * wobble) as u64,
                        ratio_5xx: 0.0,
                        errors: 0,
                        p50_ms: p99 / 4.0 * wobble,
                        p95_ms: p99 / 2.0 * wobble,
                        p99_ms: p99 * wobble,
                        failures: 0,
                        hdr: None,
                    };
                    (arch.to_owned(), point)
                })
                .collect();
            SeriesPoint {
                t: (i + 1) as f64,
                users: 10,
                rps: by_arch.values().map(|a| a.rps).sum(),
                by_target: arches
                    .iter()
                    .map(|&(arch, rps, _)| (format!("t-{arch}"), rps * wobble))
                    .collect(),
                by_arch,
            }
        })
        .collect();
    s
}

fn row<'a>(d: &'a Diff, kind: &str, name: &str, metric: &str) -> &'a DiffRow {
    d.rows
        .iter()
        .find(|r| r.kind == kind && r.name == name && r.metric == metric)
        .unwrap()
}

#[test]
fn a_slower_candidate_is_a_significant_p99_regression() {
    let base = summary(60, &[("arm64", 100.0, 10.0), ("amd64", 100.0, 10.0)]);
    let cand = summary(60, &[("arm64", 100.0, 15.0), ("amd64", 100.0, 10.0)]);
    let rules = [Rule::parse("p99 > +5%").unwrap()];
    let d = diff(&base, &cand, &BTreeMap::new(), &rules).unwrap();
    let p99 = row(&d, "arch", "arm64", "p99");
    assert!((p99.change.unwrap() - 0.5).abs() < 1e-9, "{p99:?}");
    assert_eq!(p99.significant, Some(true));
    assert_eq!(row(&d, "arch", "amd64", "p99").significant, Some(false));
    assert_eq!(row(&d, "arch", "arm64", "rps").significant, Some(false));
    assert_eq!(d.fired().len(), 1);
    assert!(
        d.rules[0].detail[0].starts_with("arch:arm64 p99 +50.0%"),
        "{:?}",
        d.rules
    );
    // The same run against itself: nothing moves, nothing fires.
    let same = diff(&base, &base, &BTreeMap::new(), &rules).unwrap();
    assert!(same.rows.iter().all(|r| r.significant != Some(true)));
    assert!(same.fired().is_empty());
}

#[test]
fn different_arches_are_refused_unless_mapped() {
    let base = summary(60, &[("arm64", 100.0, 10.0), ("amd64", 100.0, 10.0)]);
    let mut cand = summary(60, &[("graviton4", 100.0, 10.0), ("amd64", 100.0, 10.0)]);
    cand.by_target = base.by_target.clone();
    let err = diff(&base, &cand, &BTreeMap::new(), &[]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("arches do not match"), "{text}");
    assert!(text.contains("--map BASE=CANDIDATE"), "{text}");
    let map = parse_map(&["arm64=graviton4".to_owned()]).unwrap();
    let d = diff(&base, &cand, &map, &[]).unwrap();
    assert_eq!(row(&d, "arch", "arm64", "rps").candidate_name, "graviton4");
    // A rule may name either run's arch.
    let rule = [Rule::parse("arch:graviton4/rps < -5%").unwrap()];
    assert!(diff(&base, &cand, &map, &rule).unwrap().fired().is_empty());
}

#[test]
fn schemas_maps_and_rules_that_cannot_apply_are_refused() {
    let base = summary(60, &[("amd64", 100.0, 10.0)]);
    let mut other = base.clone();
    other.schema = "stampede.summary.v2".into();
    assert!(matches!(
        diff(&base, &other, &BTreeMap::new(), &[]),
        Err(DiffError::Schema { .. })
    ));
    assert!(parse_map(&["arm64".to_owned()]).is_err());
    let map = parse_map(&["riscv=x".to_owned()]).unwrap();
    assert!(matches!(
        diff(&base, &base, &map, &[]),
        Err(DiffError::Map(_))
    ));
    let rule = [Rule::parse("arch:arm64/p99 > +5%").unwrap()];
    let err = diff(&base, &base, &BTreeMap::new(), &rule).unwrap_err();
    assert!(err.to_string().contains("no row"), "{err}");
}

#[test]
fn short_runs_compare_without_intervals_and_say_so() {
    let base = summary(10, &[("amd64", 100.0, 10.0)]);
    let cand = summary(10, &[("amd64", 100.0, 20.0)]);
    let rules = [Rule::parse("p99 > +5%").unwrap()];
    let d = diff(&base, &cand, &BTreeMap::new(), &rules).unwrap();
    assert_eq!(d.notes.len(), 2, "{:?}", d.notes);
    assert!(d.notes[0].contains("too few steady intervals"));
    let p99 = row(&d, "arch", "amd64", "p99");
    assert_eq!((p99.ci, p99.significant), (None, None));
    // Judged on the change alone, and saying so.
    assert!(d.rules[0].fired);
    assert!(d.rules[0].detail[0].contains("no interval"));
}
