//! The phases and failure reasons on `/metrics`: each phase's quantiles and count per arch and
//! per (target, arch), read from the merged cumulative phase histograms of the snapshot, and
//! failed requests per (target, kind, reason).

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::families::{Labels, counter, gauge};
use super::snapshot::PhaseRow;
use crate::outcome::{FailureRow, PhaseFigures};

/// Reads one figure of a phase.
type Pick = fn(&PhaseFigures) -> f64;

/// The phase quantiles exported, with their `quantile` label (`1`: the highest).
const QUANTILES: [(&str, Pick); 4] = [
    ("0.5", |f| f.p50),
    ("0.9", |f| f.p90),
    ("0.99", |f| f.p99),
    ("1", |f| f.max),
];

pub(super) fn encode_phases(
    enc: &mut DescriptorEncoder,
    phases: &[PhaseRow],
    failures: &[FailureRow],
) -> Result<(), std::fmt::Error> {
    let arch_rows: Vec<&PhaseRow> = phases.iter().filter(|r| r.target.is_empty()).collect();
    let target_rows: Vec<&PhaseRow> = phases.iter().filter(|r| !r.target.is_empty()).collect();
    let arch_labels =
        |r: &PhaseRow| -> Labels { vec![("arch", r.arch.clone()), ("phase", r.phase.into())] };
    let target_labels = |r: &PhaseRow| -> Labels {
        vec![
            ("target", r.target.clone()),
            ("arch", r.arch.clone()),
            ("phase", r.phase.into()),
        ]
    };
    encode_group(
        enc,
        "arch",
        "by the arch that served them",
        &arch_rows,
        arch_labels,
    )?;
    encode_group(
        enc,
        "target",
        "by target and serving arch",
        &target_rows,
        target_labels,
    )?;
    counter(
        enc,
        "failures",
        "Failed requests by target, outcome kind (tls, connect, 5xx, ...) and reason",
        failures.iter().map(|f| {
            let labels = vec![
                ("target", f.target.clone()),
                ("kind", f.kind.clone()),
                ("reason", f.reason.clone()),
            ];
            (labels, f.count)
        }),
    )
}

fn encode_group(
    enc: &mut DescriptorEncoder,
    group: &str,
    by: &str,
    rows: &[&PhaseRow],
    labels: impl Fn(&PhaseRow) -> Labels,
) -> Result<(), std::fmt::Error> {
    counter(
        enc,
        &format!("{group}_phases"),
        &format!("Requests that went through each phase (dns, connect, tls, ttfb), {by}"),
        rows.iter().map(|r| (labels(r), r.figures.count)),
    )?;
    gauge(
        enc,
        &format!("{group}_phase"),
        &format!("Phase duration quantiles over the whole run (merged HDR histograms), {by}"),
        Some(&Unit::Seconds),
        rows.iter().flat_map(|r| {
            let base = labels(r);
            QUANTILES.iter().map(move |(q, pick)| {
                let mut l = base.clone();
                l.push(("quantile", (*q).to_owned()));
                (l, pick(&r.figures) / 1000.0)
            })
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::super::{Metrics, Snapshot, View};
    use super::*;

    #[test]
    fn phases_and_failures_are_exported() {
        let figures = PhaseFigures {
            count: 7,
            p50: 20.0,
            p90: 20.5,
            p99: 21.0,
            max: 25.0,
        };
        let row = |target: &str| PhaseRow {
            target: target.into(),
            arch: "arm64".into(),
            phase: "ttfb",
            figures: figures.clone(),
        };
        let mut m = Metrics::new("x");
        m.update(&Snapshot {
            phases: vec![row(""), row("arm")],
            failures: vec![FailureRow {
                target: "arm".into(),
                kind: "tls".into(),
                reason: "unknown issuer".into(),
                count: 4,
            }],
            ..Snapshot::default()
        });
        let text = m.encode();
        for line in [
            r#"stampede_arch_phases_total{arch="arm64",phase="ttfb"} 7"#,
            r#"stampede_arch_phase_seconds{arch="arm64",phase="ttfb",quantile="0.5"} 0.02"#,
            r#"stampede_target_phases_total{target="arm",arch="arm64",phase="ttfb"} 7"#,
            r#"stampede_target_phase_seconds{target="arm",arch="arm64",phase="ttfb",quantile="0.99"} 0.021"#,
            r#"stampede_target_phase_seconds{target="arm",arch="arm64",phase="ttfb",quantile="1"} 0.025"#,
            r#"stampede_failures_total{target="arm",kind="tls",reason="unknown issuer"} 4"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
