//! The HTML report: one self-contained file (inline CSS and SVG, no script, nothing fetched),
//! readable on screen and on paper. Verdict first, then the tables and the charts. Here the page
//! and its tables; the phases and failures, the capacity and cost sections, the charts over
//! time, and the workers and thresholds each in their own file.

use std::fmt::Write;

mod capacity;
mod over_time;
mod phases;
mod sections;

use super::ReportError;
use super::charts::{self, plain};
use super::verdict::{Status, verdict};
use crate::outcome::{Results, Summary};
use capacity::{capacity_section, cost_section};
use over_time::{distribution, over_time};
use phases::{failures_section, phases_section};
use sections::{comparison_section, thresholds_section, workers_section};

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
    phases_section(&mut h, s);
    failures_section(&mut h, s);
    comparison_section(&mut h, s);
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

pub(super) fn swatch(colour: usize) -> String {
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

pub(super) fn results_table(h: &mut String, caption: &str, rows: &[(String, String, &Results)]) {
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

pub(super) fn figure(h: &mut String, id: &str, svg: &str, caption: &str) {
    let _ = write!(
        h,
        "<figure id=\"{id}\">\n{svg}\n<figcaption>{}</figcaption>\n</figure>\n",
        esc(caption)
    );
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
