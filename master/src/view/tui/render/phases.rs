//! The phases view (key `p`): per serving arch, the p99 of the connect, TLS handshake and
//! time-to-first-byte phases with how many of each happened, each arch's ratio to the baseline
//! (amd64 when present, as in the summary's comparison), then the failures by reason.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};

use super::super::super::snapshot::{PhaseRow, Snapshot, phase_p99};
use super::dashboard::right;
use super::format::{arch_style, arch_styles, compact, ms_short};
use crate::outcome;

/// The phases this view compares, with their column titles.
const SHOWN: [(&str, &str); 3] = [
    ("connect", "connect p99"),
    ("tls", "TLS p99"),
    ("ttfb", "TTFB p99"),
];

pub(super) fn draw_phases(frame: &mut Frame, area: Rect, snap: &Snapshot) {
    let arches: Vec<&str> = {
        let mut a: Vec<&str> = snap
            .phases
            .iter()
            .filter(|r| r.target.is_empty())
            .map(|r| r.arch.as_str())
            .collect();
        a.dedup();
        a
    };
    let baseline = outcome::baseline(arches.iter().copied());
    let ratios = arches.iter().filter(|a| Some(**a) != baseline).count();
    let table_height = (arches.len() + ratios + 3) as u16;
    let [table_area, failures_area] = Layout::vertical([
        Constraint::Length(table_height.min(area.height)),
        Constraint::Min(0),
    ])
    .areas(area);
    if arches.is_empty() {
        let text = " no phases yet: they come with the first reports (kept-alive requests have no connect or TLS phase)";
        frame.render_widget(Paragraph::new(text).block(block(" phases ")), table_area);
    } else {
        draw_table(frame, table_area, snap, &arches, baseline);
    }
    draw_failures(frame, failures_area, snap);
}

fn block(title: &str) -> Block<'_> {
    Block::new().borders(Borders::TOP).title(title.bold())
}

fn count_of(rows: &[PhaseRow], arch: &str, phase: &str) -> u64 {
    rows.iter()
        .find(|r| r.target.is_empty() && r.arch == arch && r.phase == phase)
        .map_or(0, |r| r.figures.count)
}

fn draw_table(
    frame: &mut Frame,
    area: Rect,
    snap: &Snapshot,
    arches: &[&str],
    baseline: Option<&str>,
) {
    let mut titles = vec!["arch"];
    titles.extend(SHOWN.iter().map(|(_, t)| *t));
    titles.extend(["connects", "handshakes"]);
    let header = Row::new(titles.iter().enumerate().map(|(i, t)| {
        let line = Line::from(*t);
        Cell::from(if i == 0 { line } else { line.right_aligned() })
    }))
    .style(Style::new().bold().underlined());
    let styles = arch_styles(snap);
    let p99 = |arch: &str, phase: &str| phase_p99(&snap.phases, arch, phase);
    let mut rows: Vec<Row> = arches
        .iter()
        .map(|&arch| {
            let mut cells = vec![Cell::from(Span::styled(
                arch.to_owned(),
                arch_style(&styles, arch),
            ))];
            cells.extend(SHOWN.iter().map(|(phase, _)| {
                right(p99(arch, phase).map_or("-".into(), |v| format!("{} ms", ms_short(v))))
            }));
            cells.push(right(compact(
                count_of(&snap.phases, arch, "connect") as f64
            )));
            cells.push(right(compact(count_of(&snap.phases, arch, "tls") as f64)));
            Row::new(cells)
        })
        .collect();
    if let Some(base) = baseline {
        for &arch in arches.iter().filter(|a| **a != base) {
            let mut cells = vec![Cell::from(format!("{arch}/{base}"))];
            cells.extend(SHOWN.iter().map(|(phase, _)| {
                let ratio = p99(arch, phase)
                    .zip(p99(base, phase))
                    .filter(|(_, b)| *b > 0.0);
                right(ratio.map_or("-".into(), |(a, b)| format!("x{:.2}", a / b)))
            }));
            rows.push(Row::new(cells).style(Style::new().bold()));
        }
    }
    let widths = [
        Constraint::Length(16),
        Constraint::Length(12),
        Constraint::Length(12),
        Constraint::Length(12),
        Constraint::Length(10),
        Constraint::Length(11),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(block(" phases per arch (p99) "));
    frame.render_widget(table, area);
}

fn draw_failures(frame: &mut Frame, area: Rect, snap: &Snapshot) {
    let header = Row::new(
        ["target", "kind", "reason", "count"]
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let line = Line::from(*t);
                Cell::from(if i == 3 { line.right_aligned() } else { line })
            }),
    )
    .style(Style::new().bold().underlined());
    let rows = snap.failures.iter().map(|f| {
        let kind = Span::styled(f.kind.clone(), Style::new().red());
        Row::new(vec![
            Cell::from(f.target.clone()),
            Cell::from(kind),
            Cell::from(f.reason.clone()),
            right(f.count.to_string()),
        ])
    });
    let widths = [
        Constraint::Length(16),
        Constraint::Length(8),
        Constraint::Length(40),
        Constraint::Length(10),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(block(" failures by reason "));
    frame.render_widget(table, area);
}
