//! The workers that took part, the thresholds with their outcome, and the comparison to the
//! baseline arch with its intervals.

use std::fmt::Write;

use super::super::charts::plain;
use super::esc;
use crate::outcome::Summary;
use crate::outcome::batch::Interval;

pub(super) fn workers_section(h: &mut String, s: &Summary) {
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

pub(super) fn thresholds_section(h: &mut String, s: &Summary) {
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

/// The arches against the baseline, each ratio with its 95% interval, and the window they were
/// computed over.
pub(super) fn comparison_section(h: &mut String, s: &Summary) {
    let Some(c) = &s.comparison else {
        return;
    };
    if c.by_arch.len() < 2 && c.by_target.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<h2 id=\"comparison\">Against {}</h2>\n<table>\n<tr><th class=\"l\">arch</th>\
         <th class=\"l\">figure</th><th>ratio</th><th>95% interval</th><th class=\"l\">\
         difference</th></tr>",
        esc(&c.baseline)
    );
    for (arch, r) in c.by_arch.iter().filter(|(a, _)| **a != c.baseline) {
        let ci = r.ci.clone().unwrap_or_default();
        let rows = [
            ("throughput", Some(r.rps_ratio), ci.rps_ratio),
            ("p50", r.p50_ratio, ci.p50_ratio),
            ("p99", Some(r.p99_ratio), ci.p99_ratio),
        ];
        for (figure, ratio, interval) in rows {
            interval_row(
                h,
                arch,
                figure,
                ratio.map(|v| format!("{v:.3}×")),
                interval,
                1.0,
                1.0,
            );
        }
        let points = ci.ratio_5xx_diff.map(|i| i.estimate);
        interval_row(
            h,
            arch,
            "5XX ratio − baseline's (points)",
            points.map(|v| format!("{:+.3}", v * 100.0)),
            ci.ratio_5xx_diff,
            0.0,
            100.0,
        );
    }
    for (target, t) in &c.by_target {
        let figure = format!("throughput vs target {}", t.vs);
        let ratio = Some(format!("{:.3}×", t.rps_ratio));
        interval_row(
            h,
            &format!("target {target}"),
            &figure,
            ratio,
            t.rps_ci,
            1.0,
            1.0,
        );
    }
    h.push_str("</table>\n");
    if let Some(w) = &c.window {
        let text = match &w.note {
            Some(note) => note.clone(),
            None => format!(
                "Intervals by batch means over the steady window {:.1}–{:.1} s ({} intervals \
                 in {} batches of {} s; warm-up cut: {}), Student-t, {:.0}%. A ratio is \
                 significant when its interval leaves out 1.",
                w.from_s,
                w.to_s,
                w.intervals,
                w.batches,
                plain(w.batch_s),
                w.warmup,
                w.level * 100.0
            ),
        };
        let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(&text));
    }
}

/// One row: the figure, its interval (scaled by `scale` for display) and whether it leaves out
/// `null`.
fn interval_row(
    h: &mut String,
    who: &str,
    figure: &str,
    value: Option<String>,
    interval: Option<Interval>,
    null: f64,
    scale: f64,
) {
    let (range, judged) = match interval {
        Some(i) if i.covers(null) => (
            format!("{:.3} – {:.3}", i.lo * scale, i.hi * scale),
            "no significant difference",
        ),
        Some(i) => (
            format!("{:.3} – {:.3}", i.lo * scale, i.hi * scale),
            "significant",
        ),
        None => ("–".to_owned(), "no interval"),
    };
    let _ = writeln!(
        h,
        "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{range}</td>\
         <td class=\"l\">{judged}</td></tr>",
        esc(who),
        esc(figure),
        value.unwrap_or_else(|| "–".to_owned())
    );
}
