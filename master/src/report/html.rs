//! The HTML report: one self-contained file (inline CSS and SVG, no script, nothing fetched),
//! readable on screen and on paper. Verdict first, then the tables and the charts.

use std::fmt::Write;

use super::charts::{self, Axes, Line, plain};
use super::verdict::{Status, verdict};
use super::{ReportError, histogram};
use crate::summary::{Results, Summary};

/// Every chart the report can hold, by element id.
pub const CHARTS: [&str; 6] = [
    "chart-throughput",
    "chart-5xx",
    "chart-latency",
    "chart-users",
    "chart-percentiles",
    "chart-capacity",
];

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 0 auto; max-width: 1000px; padding: 24px; color: #1a1a1a; background: #fff; line-height: 1.4; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 28px 0 8px; border-bottom: 2px solid #e4e4e4; padding-bottom: 4px; }
.meta { color: #555; font-size: 0.92em; }
.verdict { border-left: 6px solid #777; background: #f5f5f5; padding: 12px 16px; margin: 18px 0; }
.verdict.passed { border-color: #1b873f; background: #eef8f0; }
.verdict.failed { border-color: #c62828; background: #fcefee; }
.verdict .headline { font-size: 1.15em; font-weight: 600; margin: 0 0 6px; }
.verdict ul { margin: 4px 0 0; padding-left: 20px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.8em; font-weight: 600;
         color: #fff; background: #777; vertical-align: middle; margin-left: 6px; }
.badge.passed, .pass { background: #1b873f; } .badge.failed, .fail { background: #c62828; }
table { border-collapse: collapse; width: 100%; font-size: 0.86em; margin: 6px 0 10px; }
th, td { border: 1px solid #ddd; padding: 4px 6px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
td.pass, td.fail { color: #fff; text-align: center; font-weight: 600; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; }
figure { margin: 10px 0 18px; break-inside: avoid; page-break-inside: avoid; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: #555; font-size: 0.85em; margin-top: 2px; }
.note { color: #555; font-size: 0.88em; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table { break-inside: auto; } tr { break-inside: avoid; }
  .verdict, .badge, th, td.pass, td.fail, .swatch { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

/// Escapes text for HTML: names come from scenario files and response headers.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The arches of the run, each with its palette index.
fn arches(s: &Summary) -> Vec<(String, usize)> {
    let mut names: Vec<String> = s.by_arch.keys().cloned().collect();
    for p in &s.series {
        for a in p.by_arch.keys() {
            if !names.contains(a) {
                names.push(a.clone());
            }
        }
    }
    if let Some(c) = &s.capacity {
        for a in c.by_arch.keys() {
            if !names.contains(a) {
                names.push(a.clone());
            }
        }
    }
    names.into_iter().enumerate().map(|(i, a)| (a, i)).collect()
}

pub fn render(s: &Summary) -> Result<String, ReportError> {
    let arches = arches(s);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>stampede: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&s.name)
    );
    let _ = write!(
        h,
        "<h1>{}</h1>\n<div class=\"meta\">run <code>{}</code> · {} → {} · {:.1} s · \
         {} requests · {} worker(s)</div>\n",
        esc(&s.name),
        esc(&s.run_id),
        esc(&s.started_at),
        esc(&s.ended_at),
        s.duration_s,
        s.totals.requests,
        s.workers.len()
    );
    verdict_box(&mut h, s);
    h.push_str("<h2 id=\"results\">Results</h2>\n");
    results_table(
        &mut h,
        "Per arch (the arch that served)",
        &arch_rows(s, &arches),
    );
    let targets: Vec<(String, String, &Results)> = s
        .by_target
        .iter()
        .map(|(name, t)| (format!("{} ({})", name, t.arch), String::new(), &t.results))
        .collect();
    results_table(&mut h, "Per target (declared arch)", &targets);
    if let Some(c) = &s.capacity {
        capacity_section(&mut h, c, &arches)?;
    }
    if let Some(c) = &s.cost {
        cost_section(&mut h, c);
    }
    over_time(&mut h, s, &arches)?;
    distribution(&mut h, s, &arches)?;
    workers_section(&mut h, s);
    thresholds_section(&mut h, s);
    let _ = write!(
        h,
        "<p class=\"note\">Written by stampede from the summary (schema <code>{}</code>). \
         Latency covers requests that got a response; transport errors are counted, not timed.</p>\n\
         </body>\n</html>\n",
        esc(&s.schema)
    );
    Ok(h)
}

fn verdict_box(h: &mut String, s: &Summary) {
    let v = verdict(s);
    let (class, badge) = match v.status {
        Status::Passed => (
            "passed",
            "<span class=\"badge passed\">thresholds passed</span>",
        ),
        Status::Failed => (
            "failed",
            "<span class=\"badge failed\">thresholds failed</span>",
        ),
        Status::Unjudged => ("", ""),
    };
    let _ = write!(
        h,
        "<section id=\"verdict\" class=\"verdict {class}\">\n<p class=\"headline\">{}{badge}</p>\n",
        esc(&v.headline)
    );
    if !v.details.is_empty() {
        h.push_str("<ul>\n");
        for d in &v.details {
            let _ = writeln!(h, "<li>{}</li>", esc(d));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</section>\n");
}

fn swatch(colour: usize) -> String {
    format!(
        "<span class=\"swatch\" style=\"background:{}\"></span>",
        charts::css_colour(colour)
    )
}

fn arch_rows<'a>(s: &'a Summary, arches: &[(String, usize)]) -> Vec<(String, String, &'a Results)> {
    let mut rows: Vec<(String, String, &Results)> = s
        .by_arch
        .iter()
        .map(|(arch, r)| {
            let colour = arches.iter().find(|(a, _)| a == arch).map_or(0, |a| a.1);
            (arch.clone(), swatch(colour), r)
        })
        .collect();
    rows.push(("all".to_owned(), String::new(), &s.totals));
    rows
}

fn results_table(h: &mut String, caption: &str, rows: &[(String, String, &Results)]) {
    let _ = write!(
        h,
        "<table>\n<caption class=\"l\" style=\"text-align:left;font-weight:600\">{}</caption>\n\
         <tr><th class=\"l\">name</th><th>requests</th><th>req/s</th><th>peak req/s</th>\
         <th>2XX</th><th>3XX</th><th>4XX</th><th>5XX</th><th>errors</th><th>5XX %</th>\
         <th>min</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max ms</th></tr>\n",
        esc(caption)
    );
    for (name, prefix, r) in rows {
        let errors: u64 = r.errors.values().sum();
        let l = &r.latency_ms;
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{prefix}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(name),
            r.requests,
            plain(r.rps),
            r.rps_peak.map_or("–".to_owned(), plain),
            r.status.s2xx,
            r.status.s3xx,
            r.status.s4xx,
            r.status.s5xx,
            errors,
            r.ratio_5xx * 100.0,
            plain(l.min),
            plain(l.p50),
            plain(l.p90),
            plain(l.p95),
            plain(l.p99),
            plain(l.p999),
            plain(l.max)
        );
    }
    h.push_str("</table>\n");
}

fn figure(h: &mut String, id: &str, svg: &str, caption: &str) {
    let _ = write!(
        h,
        "<figure id=\"{id}\">\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n",
        esc(caption)
    );
}

fn capacity_section(
    h: &mut String,
    c: &crate::capacity::CapacityReport,
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
         <th>max sustainable req/s</th><th>ratio</th><th>p50 ms</th><th>p99 ms</th>\
         <th>first breach</th><th class=\"l\">why</th></tr>\n",
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
             <td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            swatch(colour),
            esc(arch),
            outcome(a.end),
            knee.map_or("–".to_owned(), |k| plain(k.level)),
            a.max_sustainable_rps.map_or("–".to_owned(), plain),
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
    let mut lines = Vec::new();
    let mut marks = Vec::new();
    for (arch, a) in &c.by_arch {
        let colour = arches.iter().find(|(x, _)| x == arch).map_or(0, |x| x.1);
        let search = |st: &&crate::capacity::Step| st.phase != crate::capacity::Phase::Confirm;
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

fn outcome(end: crate::capacity::End) -> &'static str {
    use crate::capacity::End;
    match end {
        End::Knee => "knee found",
        End::MaxReached => "kept the SLO up to the maximum",
        End::BreachedAtStart => "breached at the start level",
        End::Unfinished => "unfinished (run ended)",
    }
}

fn steps_table(h: &mut String, c: &crate::capacity::CapacityReport) {
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
                    crate::capacity::Phase::Coarse => "coarse",
                    crate::capacity::Phase::Confirm => "confirm (all arches at their knees)",
                    crate::capacity::Phase::Fine => "fine",
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

fn cost_section(h: &mut String, c: &crate::cost::CostReport) {
    use super::verdict::money;
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
                crate::cost::Basis::Knee => "the knee",
                crate::cost::Basis::Peak => "the peak (no knee)",
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

fn over_time(h: &mut String, s: &Summary, arches: &[(String, usize)]) -> Result<(), ReportError> {
    h.push_str("<h2 id=\"over-time\">Over time</h2>\n");
    let per_arch = |f: fn(&crate::aggregate::ArchPoint) -> f64| -> Vec<Line> {
        arches
            .iter()
            .map(|(arch, colour)| Line {
                name: arch.clone(),
                colour: *colour,
                dashed: false,
                markers: false,
                points: s
                    .series
                    .iter()
                    .filter_map(|p| Some((p.t, f(p.by_arch.get(arch)?))))
                    .collect(),
            })
            .filter(|l| !l.points.is_empty())
            .collect()
    };
    let time = |title: &'static str, y: &'static str| Axes {
        title,
        x: "time since start (s)",
        y,
        x_format: plain,
        y_format: plain,
    };
    let svg = charts::lines(
        "chart-throughput",
        &time("Throughput per arch", "req/s"),
        &per_arch(|p| p.rps),
        &[],
    )?;
    figure(
        h,
        "chart-throughput",
        &svg,
        "Requests per second, per interval, by the arch that served them.",
    );
    let svg = charts::lines(
        "chart-5xx",
        &time("5XX per arch", "5XX % of requests"),
        &per_arch(|p| p.ratio_5xx * 100.0),
        &[],
    )?;
    figure(
        h,
        "chart-5xx",
        &svg,
        "Share of answers that were 5XX, per interval.",
    );
    let mut latency = Vec::new();
    for (arch, colour) in arches {
        for (label, dashed, f) in [
            (
                "p50",
                true,
                (|p: &crate::aggregate::ArchPoint| p.p50_ms)
                    as fn(&crate::aggregate::ArchPoint) -> f64,
            ),
            ("p99", false, |p: &crate::aggregate::ArchPoint| p.p99_ms),
        ] {
            let points: Vec<(f64, f64)> = s
                .series
                .iter()
                .filter_map(|p| Some((p.t, f(p.by_arch.get(arch)?))))
                .collect();
            if !points.is_empty() {
                latency.push(Line {
                    name: format!("{arch} {label}"),
                    colour: *colour,
                    dashed,
                    markers: false,
                    points,
                });
            }
        }
    }
    let svg = charts::lines(
        "chart-latency",
        &time("Latency per arch: p50 (dashed) and p99", "ms"),
        &latency,
        &[],
    )?;
    figure(
        h,
        "chart-latency",
        &svg,
        "Per-interval latency percentiles from the merged HDR histograms.",
    );
    let mut users = vec![Line {
        name: "users running (all)".to_owned(),
        colour: arches.len(),
        dashed: false,
        markers: false,
        points: s.series.iter().map(|p| (p.t, p.users as f64)).collect(),
    }];
    if let Some(c) = &s.capacity {
        for (arch, a) in &c.by_arch {
            let colour = arches.iter().find(|(x, _)| x == arch).map_or(0, |x| x.1);
            let mut points = Vec::new();
            for st in &a.steps {
                points.push((st.started_s, st.level));
                points.push((st.ended_s, st.level));
            }
            if !points.is_empty() {
                users.push(Line {
                    name: format!("{arch} level"),
                    colour,
                    dashed: true,
                    markers: false,
                    points,
                });
            }
        }
    }
    let svg = charts::lines("chart-users", &time("Users", "users"), &users, &[])?;
    figure(
        h,
        "chart-users",
        &svg,
        "Users the workers ran; in a capacity search, each arch's level (dashed).",
    );
    Ok(())
}

fn distribution(
    h: &mut String,
    s: &Summary,
    arches: &[(String, usize)],
) -> Result<(), ReportError> {
    h.push_str("<h2 id=\"latency\">Latency distribution</h2>\n");
    let mut lines = Vec::new();
    for (arch, colour) in arches {
        let Some(r) = s.by_arch.get(arch) else {
            continue;
        };
        if let Some(hist) = histogram(r.hdr.as_deref(), arch)? {
            lines.push(Line {
                name: arch.clone(),
                colour: *colour,
                dashed: false,
                markers: false,
                points: charts::percentile_points(&hist),
            });
        }
    }
    let axes = Axes {
        title: "Latency by percentile (whole run)",
        x: "percentile",
        y: "ms",
        x_format: charts::percentile_label,
        y_format: plain,
    };
    let svg = charts::lines("chart-percentiles", &axes, &lines, &[])?;
    figure(
        h,
        "chart-percentiles",
        &svg,
        "From each arch's full HDR histogram; the x axis stretches the tail (90%, 99%, 99.9% evenly spaced).",
    );
    if !s.by_request.is_empty() {
        let rows: Vec<(String, String, &Results)> = s
            .by_request
            .iter()
            .map(|r| {
                (
                    format!("{} {} [{}]", r.method, r.request, r.arch),
                    String::new(),
                    &r.results,
                )
            })
            .collect();
        results_table(h, "Per request and arch", &rows);
    }
    Ok(())
}

fn workers_section(h: &mut String, s: &Summary) {
    h.push_str("<h2 id=\"workers\">Workers</h2>\n<table>\n<tr><th class=\"l\">id</th><th class=\"l\">arch</th>\
        <th class=\"l\">host</th><th>joined s</th><th>left s</th><th class=\"l\">reason</th></tr>\n");
    for w in &s.workers {
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{:.1}</td>\
             <td>{}</td><td class=\"l\">{}</td></tr>",
            esc(&w.id),
            esc(&w.arch),
            esc(&w.hostname),
            w.joined_s,
            w.left_s.map_or("–".to_owned(), |l| format!("{l:.1}")),
            esc(w.reason.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table>\n");
}

fn thresholds_section(h: &mut String, s: &Summary) {
    h.push_str("<h2 id=\"thresholds\">Thresholds</h2>\n");
    if s.thresholds.is_empty() {
        h.push_str("<p class=\"note\">No thresholds were set.</p>\n");
        return;
    }
    h.push_str("<table>\n<tr><th class=\"l\">threshold</th><th>value</th><th>result</th></tr>\n");
    for t in &s.thresholds {
        let (class, word) = if t.pass {
            ("pass", "pass")
        } else {
            ("fail", "fail")
        };
        let _ = writeln!(
            h,
            "<tr><td class=\"l\">{}</td><td>{}</td><td class=\"{class}\">{word}</td></tr>",
            esc(&t.expr),
            t.value.map_or("–".to_owned(), plain)
        );
    }
    h.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
