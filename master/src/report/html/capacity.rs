//! The capacity search (its curve with the knee marked, the levels tried) and the cost.

use std::fmt::Write;

use super::super::ReportError;
use super::super::charts::{self, Axes, Line, plain};
use super::{esc, figure, swatch};

pub(super) fn capacity_section(
    h: &mut String,
    c: &crate::outcome::CapacityReport,
    arches: &[(String, usize)],
) -> Result<(), ReportError> {
    h.push_str("<h2 id=\"capacity\">Capacity</h2>\n");
    let mut slo = format!("5XX + errors ≤ {}%", plain(c.rules.slo_5xx * 100.0));
    if let Some(p) = c.rules.slo_p99 {
        let _ = write!(slo, ", p99 ≤ {}", humantime::format_duration(p));
    }
    let _ = writeln!(
        h,
        "<p class=\"note\">SLO: {} for {} interval(s) in a row. Levels in {}: start {}, step {}, \
         fine step {}, max {}; each held {} after {} of settling.</p>",
        esc(&slo),
        c.rules.consecutive,
        esc(&c.unit),
        plain(c.rules.start),
        plain(c.rules.step()),
        plain(c.rules.fine_step()),
        plain(c.rules.max),
        humantime::format_duration(c.rules.hold),
        humantime::format_duration(c.rules.settle)
    );
    h.push_str(
        "<table>\n<tr><th class=\"l\">arch</th><th class=\"l\">outcome</th><th>knee level</th>\
         <th>max sustainable req/s</th><th>one window req/s</th><th>ratio</th><th>p50 ms</th>\
         <th>p99 ms</th><th>first breach</th><th class=\"l\">why</th></tr>\n",
    );
    for (arch, a) in &c.by_arch {
        let colour = arches.iter().find(|(x, _)| x == arch).map_or(0, |x| x.1);
        let ratio = c
            .comparison
            .as_ref()
            .and_then(|cmp| cmp.rps_ratio.get(arch))
            .map_or("–".to_owned(), |r| format!("{r:.2}×"));
        let knee = a.knee.as_ref();
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            swatch(colour),
            esc(arch),
            outcome(a.end),
            knee.map_or("–".to_owned(), |k| plain(k.level)),
            a.max_sustainable_rps.map_or("–".to_owned(), plain),
            a.uncertainty.as_ref().map_or("–".to_owned(), |u| format!(
                "{}–{}",
                plain(u.windows.min),
                plain(u.windows.max)
            )),
            ratio,
            knee.map_or("–".to_owned(), |k| plain(k.p50_ms)),
            knee.map_or("–".to_owned(), |k| plain(k.p99_ms)),
            a.breach.as_ref().map_or("–".to_owned(), |b| plain(b.level)),
            esc(a
                .breach
                .as_ref()
                .and_then(|b| b.breach.as_deref())
                .unwrap_or("–"))
        );
    }
    h.push_str("</table>\n");
    h.push_str(
        "<p class=\"note\">How sure each knee is: the level is known to one fine step (the true \
         limit lies between the knee and the first breach above it), and the throughput varied \
         between the lowest and highest of the windows (report intervals) it was measured over \
         (the confirmation's, when every arch was measured at its knee together).</p>\n",
    );
    let mut lines = Vec::new();
    let mut marks = Vec::new();
    for (arch, a) in &c.by_arch {
        let colour = arches.iter().find(|(x, _)| x == arch).map_or(0, |x| x.1);
        let search = |st: &&crate::outcome::Step| st.phase != crate::outcome::Phase::Confirm;
        let mut passed: Vec<(f64, f64)> = a
            .steps
            .iter()
            .filter(search)
            .filter(|st| st.passed)
            .map(|st| (st.level, st.rps))
            .collect();
        passed.sort_by(|x, y| x.0.total_cmp(&y.0));
        let mut breached: Vec<(f64, f64)> = a
            .steps
            .iter()
            .filter(search)
            .filter(|st| !st.passed)
            .map(|st| (st.level, st.rps))
            .collect();
        breached.sort_by(|x, y| x.0.total_cmp(&y.0));
        if let Some(k) = &a.knee {
            breached.insert(0, (k.level, k.rps));
            marks.push((
                colour,
                k.level,
                k.rps,
                format!(
                    "  knee {}: {} req/s",
                    plain(k.level),
                    plain(a.max_sustainable_rps.unwrap_or(k.ok_rps))
                ),
            ));
        }
        lines.push(Line {
            name: format!("{arch} (kept the SLO)"),
            colour,
            dashed: false,
            markers: true,
            points: passed,
        });
        if breached.len() > 1 || a.knee.is_none() {
            lines.push(Line {
                name: format!("{arch} (breached)"),
                colour,
                dashed: true,
                markers: true,
                points: breached,
            });
        }
    }
    let axes = Axes {
        title: "Capacity: throughput per load level",
        x: &format!("load level ({})", c.unit),
        y: "req/s",
        x_format: plain,
        y_format: plain,
    };
    let svg = charts::lines("chart-capacity", &axes, &lines, &marks)?;
    figure(
        h,
        "chart-capacity",
        &svg,
        "Mean throughput of each level tried; the circle marks the knee, the highest level that kept the SLO.",
    );
    steps_table(h, c);
    Ok(())
}

fn outcome(end: crate::outcome::End) -> &'static str {
    use crate::outcome::End;
    match end {
        End::Knee => "knee found",
        End::MaxReached => "kept the SLO up to the maximum",
        End::BreachedAtStart => "breached at the start level",
        End::Unfinished => "unfinished (run ended)",
    }
}

fn steps_table(h: &mut String, c: &crate::outcome::CapacityReport) {
    h.push_str(
        "<table>\n<caption style=\"text-align:left;font-weight:600\">Levels tried</caption>\n\
         <tr><th class=\"l\">arch</th><th>level</th><th class=\"l\">phase</th><th>from s</th><th>to s</th>\
         <th>requests</th><th>req/s</th><th>5XX+err %</th><th>p50 ms</th><th>p99 ms</th><th>SLO</th></tr>\n",
    );
    for (arch, a) in &c.by_arch {
        for st in &a.steps {
            let (class, word) = if st.passed {
                ("pass", "kept")
            } else {
                ("fail", "breached")
            };
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td>{:.1}</td><td>{:.1}</td>\
                 <td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td class=\"{class}\">{word}</td></tr>",
                esc(arch),
                plain(st.level),
                match st.phase {
                    crate::outcome::Phase::Coarse => "coarse",
                    crate::outcome::Phase::Confirm => "confirm (all arches at their knees)",
                    crate::outcome::Phase::Fine => "fine",
                },
                st.started_s,
                st.ended_s,
                st.requests,
                plain(st.rps),
                st.ratio_bad * 100.0,
                plain(st.p50_ms),
                plain(st.p99_ms)
            );
        }
    }
    h.push_str("</table>\n");
}

pub(super) fn cost_section(h: &mut String, c: &crate::outcome::CostReport) {
    use super::super::verdict::money;
    h.push_str("<h2 id=\"cost\">Cost</h2>\n<table>\n<tr><th class=\"l\">arch</th><th>price / node-hour</th>\
        <th>nodes</th><th class=\"l\">based on</th><th>req/s</th><th>req/s per node</th><th>cost / hour</th>\
        <th>cost / million requests</th>");
    if let Some(t) = c.target_rps {
        let _ = write!(
            h,
            "<th>nodes for {} req/s</th><th>their cost / hour</th>",
            plain(t)
        );
    }
    h.push_str("</tr>\n");
    for (arch, a) in &c.by_arch {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td>",
            esc(arch),
            money(a.price_per_node_hour),
            a.nodes,
            match a.basis {
                crate::outcome::Basis::Knee => "the knee",
                crate::outcome::Basis::Peak => "the peak (no knee)",
            },
            plain(a.rps),
            plain(a.rps_per_node),
            money(a.cost_per_hour),
            a.cost_per_million.map_or("–".to_owned(), money)
        );
        if c.target_rps.is_some() {
            let _ = write!(
                h,
                "<td>{}</td><td>{}</td>",
                a.nodes_needed.map_or("–".to_owned(), |n| n.to_string()),
                a.cost_per_hour_at_target.map_or("–".to_owned(), money)
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}
