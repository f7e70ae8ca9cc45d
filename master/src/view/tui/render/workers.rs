//! The workers view (one row per worker, then the events) and the help overlay.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table};

use super::super::super::snapshot::{self, Snapshot};
use super::super::state::UiState;
use super::dashboard::{draw_events, right};
use super::format::{arch_style, arch_styles};

pub(super) const WORKER_HEADERS: [&str; 8] = [
    "id",
    "arch",
    "host",
    "users",
    "req/s",
    "cpu%",
    "heartbeat",
    "state",
];

pub(super) fn draw_workers(frame: &mut Frame, area: Rect, state: &UiState, snap: &Snapshot) {
    let table_height = (snap.workers.len() as u16 + 2).min(area.height);
    let [table_area, events] =
        Layout::vertical([Constraint::Length(table_height), Constraint::Min(0)]).areas(area);
    let header = Row::new(WORKER_HEADERS.iter().enumerate().map(|(i, h)| {
        let line = Line::from(*h);
        // Text columns left, figures right.
        Cell::from(if matches!(i, 0..=2) || i == 7 {
            line
        } else {
            line.right_aligned()
        })
    }))
    .style(Style::new().bold().underlined());
    let arches = arch_styles(snap);
    let rows = snap.workers.iter().map(|w| {
        let stale = w.heartbeat_age > Duration::from_secs(2);
        Row::new(vec![
            Cell::from(w.id.clone()),
            Cell::from(Span::styled(w.arch.clone(), arch_style(&arches, &w.arch))),
            Cell::from(w.hostname.clone()),
            right(w.users.to_string()),
            right(format!("{:.1}", w.rps)),
            right(format!("{:.0}", w.cpu_percent)),
            right(format!("{:.1}s", w.heartbeat_age.as_secs_f64())).style(if stale {
                Style::new().red()
            } else {
                Style::new()
            }),
            Cell::from(w.state),
        ])
    });
    let longest =
        |f: fn(&snapshot::WorkerRow) -> usize| snap.workers.iter().map(f).max().unwrap_or(0) as u16;
    let id = longest(|w| w.id.chars().count()).clamp(8, 32);
    let arch = longest(|w| w.arch.chars().count()).clamp(6, 16);
    let widths = [
        Constraint::Length(id),
        Constraint::Length(arch),
        Constraint::Max(longest(|w| w.hostname.chars().count()).max(8)),
        Constraint::Length(5),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(9),
    ];
    let title = Line::from(vec![format!(" workers ({}) ", snap.workers.len()).bold()]);
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .block(Block::new().borders(Borders::TOP).title(title));
    frame.render_widget(table, table_area);
    if events.height >= 3 {
        draw_events(frame, events, state);
    }
}

// ---------------------------------------------------------------- help

/// The keys, as the help overlay and the README list them.
pub const KEYS: [(&str, &str); 7] = [
    (
        "q, Ctrl-C",
        "stop: in-flight requests finish, the summary is written",
    ),
    ("q again", "quit at once"),
    ("+ / -", "more / fewer users, by the step shown below"),
    ("e", "write the summary so far to SUMMARY.partial.json"),
    ("tab", "switch view: dashboard / workers"),
    ("p", "phases: connect, TLS, TTFB p99 per arch; failures"),
    ("?, esc", "this help / close it"),
];

pub(super) fn draw_help(frame: &mut Frame, snap: &Snapshot) {
    let mut lines: Vec<Line> = KEYS
        .iter()
        .map(|(k, what)| Line::from(vec![format!(" {k:<10} ").bold().cyan(), (*what).into()]))
        .collect();
    lines.push(Line::from(format!(
        " users step: {}; live adjustment so far: {:+}",
        snap.users_step.max(1),
        snap.users_shift
    )));
    let area = frame.area().centered(
        Constraint::Length(72.min(frame.area().width)),
        Constraint::Length((lines.len() as u16 + 2).min(frame.area().height)),
    );
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys ".bold())),
        area,
    );
}
