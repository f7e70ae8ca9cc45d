//! The workers that took part and the thresholds with their outcome.

use std::fmt::Write;

use super::super::charts::plain;
use super::esc;
use crate::outcome::Summary;

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
