//! The phases (DNS, connect, TLS handshake, time to first byte) per arch, per target and in
//! total, and the failures by reason: why the transport errors and unexpected answers happened.

use std::fmt::Write;

use super::super::charts::plain;
use super::esc;
use crate::outcome::{PHASES, PhasesMs, Summary};

pub(super) fn phases_section(h: &mut String, s: &Summary) {
    let mut groups: Vec<(String, &PhasesMs)> = s
        .by_arch
        .iter()
        .map(|(arch, r)| (arch.clone(), &r.phases_ms))
        .collect();
    groups.extend(
        s.by_target
            .iter()
            .map(|(name, t)| (format!("{name} ({})", t.arch), &t.results.phases_ms)),
    );
    groups.push(("all".to_owned(), &s.totals.phases_ms));
    if groups.iter().all(|(_, p)| p.is_empty()) {
        return;
    }
    h.push_str(
        "<h2 id=\"phases\">Phases</h2>\n<p class=\"note\">Each phase is timed only when it \
         happened: a kept-alive request has no DNS, connect or TLS phase, so their counts are \
         the connections opened.</p>\n<table>\n<tr><th class=\"l\">name</th><th class=\"l\">phase</th>\
         <th>count</th><th>p50</th><th>p90</th><th>p99</th><th>max ms</th></tr>\n",
    );
    for (name, phases) in groups {
        for phase in PHASES {
            let Some(f) = phases.get(phase) else { continue };
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{phase}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&name),
                f.count,
                plain(f.p50),
                plain(f.p90),
                plain(f.p99),
                plain(f.max)
            );
        }
    }
    h.push_str("</table>\n");
}

pub(super) fn failures_section(h: &mut String, s: &Summary) {
    if s.failures.is_empty() {
        return;
    }
    h.push_str(
        "<h2 id=\"failures\">Failures by reason</h2>\n<table>\n<tr><th class=\"l\">target</th>\
         <th class=\"l\">kind</th><th class=\"l\">reason</th><th>count</th></tr>\n",
    );
    for f in &s.failures {
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td></tr>",
            esc(&f.target),
            esc(&f.kind),
            esc(&f.reason),
            f.count
        );
    }
    h.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{FailureRow, PhaseFigures, Results, TargetResults};

    #[test]
    fn phases_and_failures_tables() {
        let ttfb = PhaseFigures {
            count: 12,
            p50: 20.25,
            p90: 20.5,
            p99: 21.0,
            max: 22.0,
        };
        let results = Results {
            phases_ms: [("ttfb".to_owned(), ttfb)].into(),
            ..Results::default()
        };
        let mut s = Summary {
            totals: results.clone(),
            by_arch: [("arm64".to_owned(), results.clone())].into(),
            by_target: [(
                "arm".to_owned(),
                TargetResults {
                    arch: "arm64".into(),
                    results,
                },
            )]
            .into(),
            failures: vec![FailureRow {
                target: "amd".into(),
                kind: "tls".into(),
                reason: "name mismatch".into(),
                count: 5,
            }],
            ..Summary::default()
        };
        let mut h = String::new();
        phases_section(&mut h, &s);
        failures_section(&mut h, &s);
        for want in [
            "<h2 id=\"phases\">Phases</h2>",
            "<tr><td class=\"l\">arm64</td><td class=\"l\">ttfb</td><td>12</td>",
            "<td class=\"l\">arm (arm64)</td>",
            "<td class=\"l\">all</td>",
            "<td class=\"l\">amd</td><td class=\"l\">tls</td><td class=\"l\">name mismatch</td><td>5</td>",
        ] {
            assert!(h.contains(want), "{want} not in\n{h}");
        }
        // Nothing to say: no section at all.
        s = Summary::default();
        let mut h = String::new();
        phases_section(&mut h, &s);
        failures_section(&mut h, &s);
        assert!(h.is_empty(), "{h}");
    }
}
