//! The comparison of two runs in words: a plain-text table for a terminal and a Markdown one
//! for a pull-request comment, both from one [`Diff`].

use std::fmt::Write;

use crate::outcome::diff::{Diff, DiffRow, RunRef, change_text};

use super::charts::plain;
use super::verdict::money;

/// A figure in its unit (5XX ratios in percent).
fn value(row: &DiffRow, v: f64) -> String {
    match row.unit.as_str() {
        "%" => format!("{:.3}%", v * 100.0),
        "$" => money(v),
        "ms" => format!("{} ms", plain(v)),
        unit => format!("{} {unit}", plain(v)),
    }
}

fn interval(row: &DiffRow) -> String {
    row.ci.map_or("–".to_owned(), |i| {
        format!(
            "{} to {}",
            change_text(row.change_kind, i.lo),
            change_text(row.change_kind, i.hi)
        )
    })
}

fn significant(row: &DiffRow) -> &'static str {
    match row.significant {
        Some(true) => "yes",
        Some(false) => "no",
        None => "no interval",
    }
}

fn scope(row: &DiffRow) -> String {
    if row.name == row.candidate_name {
        format!("{}:{}", row.kind, row.name)
    } else {
        format!("{}:{}→{}", row.kind, row.name, row.candidate_name)
    }
}

fn cells(row: &DiffRow) -> [String; 7] {
    [
        scope(row),
        row.metric.clone(),
        value(row, row.base),
        value(row, row.candidate),
        row.change
            .map_or("–".to_owned(), |c| change_text(row.change_kind, c)),
        interval(row),
        significant(row).to_owned(),
    ]
}

const HEADERS: [&str; 7] = [
    "scope",
    "metric",
    "base",
    "candidate",
    "change",
    "95% CI",
    "significant",
];

fn window(who: &str, r: &RunRef) -> String {
    match &r.window {
        Some(w) => format!(
            "{who} {} ({}): steady window {:.1}–{:.1} s, {} batches of {} s",
            r.run_id,
            r.name,
            w.from_s,
            w.to_s,
            w.batches,
            plain(w.batch_s)
        ),
        None => format!("{who} {} ({}): no steady window", r.run_id, r.name),
    }
}

/// The plain-text table, columns padded to their widest cell.
pub fn text(d: &Diff) -> String {
    let rows: Vec<[String; 7]> = d.rows.iter().map(cells).collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = String::new();
    let _ = writeln!(out, "{}", window("base", &d.base));
    let _ = writeln!(out, "{}", window("candidate", &d.candidate));
    let _ = writeln!(out, "{}\n", d.method);
    let _ = writeln!(out, "{}", line(&HEADERS.map(str::to_owned)));
    for r in &rows {
        let _ = writeln!(out, "{}", line(r));
    }
    rules_and_notes(&mut out, d, ("", "      "));
    out
}

/// The Markdown table, for a pull request comment.
pub fn markdown(d: &Diff) -> String {
    let mut out = String::new();
    let fired = d.fired();
    let _ = writeln!(
        out,
        "### stampede compare: {}\n",
        if fired.is_empty() {
            "no significant regression".to_owned()
        } else {
            format!("{} rule(s) found a significant regression", fired.len())
        }
    );
    let _ = writeln!(out, "- {}", window("base", &d.base));
    let _ = writeln!(out, "- {}", window("candidate", &d.candidate));
    let _ = writeln!(out, "- {}\n", d.method);
    let _ = writeln!(out, "| {} |", HEADERS.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(HEADERS.len()));
    for row in &d.rows {
        let mut c = cells(row);
        if row.significant == Some(true) {
            c[4] = format!("**{}**", c[4]);
        }
        let escaped: Vec<String> = c.iter().map(|s| s.replace('|', "\\|")).collect();
        let _ = writeln!(out, "| {} |", escaped.join(" | "));
    }
    out.push('\n');
    rules_and_notes(&mut out, d, ("- ", "  - "));
    out
}

/// The rules and notes, each line after `bullet`, a rule's rows after `sub`.
fn rules_and_notes(out: &mut String, d: &Diff, (bullet, sub): (&str, &str)) {
    if !d.rules.is_empty() {
        let _ = writeln!(out, "\nrules:");
        for r in &d.rules {
            let verdict = if r.fired { "FAIL" } else { "pass" };
            let _ = writeln!(out, "{bullet}{verdict}  {}", r.rule);
            for line in &r.detail {
                let _ = writeln!(out, "{sub}{line}");
            }
        }
    }
    for note in &d.notes {
        let _ = writeln!(out, "{bullet}note: {note}");
    }
}
