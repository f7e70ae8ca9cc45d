//! Drawing: a pure function of the view's state and the latest snapshot, so every screen can be
//! rendered into ratatui's `TestBackend` and read back in tests. Here the frame, its header and
//! footer; the dashboard (table, charts, events), the workers view with the help, the phases
//! view, and the colours and number formats each in their own file.

mod dashboard;
mod format;
mod phases;
mod workers;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::super::snapshot::Snapshot;
use super::state::{Tab, UiState};
use dashboard::draw_dashboard;
use format::{clock, shorten};
use phases::draw_phases;
use workers::{draw_help, draw_workers};

#[cfg(test)]
use workers::KEYS;

/// At least this wide, the table shows exact figures and wider columns.
pub(super) const WIDE: u16 = 140;
/// At least this big, the dashboard lays the charts out in two rows and shows the events.
pub(super) const ROOMY: (u16, u16) = (150, 40);

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, state: &UiState, snap: &Snapshot) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_header(frame, header, state, snap);
    match state.tab {
        Tab::Dashboard => draw_dashboard(frame, body, state, snap),
        Tab::Workers => draw_workers(frame, body, state, snap),
        Tab::Phases => draw_phases(frame, body, snap),
    }
    draw_footer(frame, footer, state, snap);
    if state.help {
        draw_help(frame, snap);
    }
}

// ---------------------------------------------------------------- header and footer

fn draw_header(frame: &mut Frame, area: Rect, state: &UiState, snap: &Snapshot) {
    let [line1, line2] = Layout::vertical([Constraint::Length(1); 2]).areas(area);
    if snap.name.is_empty() {
        let text = Line::from(vec![
            " stampede ".bold().reversed(),
            "  waiting for workers to connect…".into(),
        ]);
        frame.render_widget(Paragraph::new(text), line1);
    } else {
        frame.render_widget(Paragraph::new(title_line(snap, area.width)), line1);
    }
    let tabs: Vec<Span> = Tab::ALL
        .iter()
        .flat_map(|t| {
            let style = if *t == state.tab {
                Style::new().bold().reversed()
            } else {
                Style::new().dim()
            };
            [
                Span::raw(" "),
                Span::styled(format!(" {} ", t.title()), style),
            ]
        })
        .collect();
    let tabs_width = Line::from(tabs.clone()).width() as u16 + 1;
    let [left, right] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(tabs_width)]).areas(line2);
    frame.render_widget(Paragraph::new(status_line(snap)), left);
    frame.render_widget(Paragraph::new(Line::from(tabs)), right);
}

/// ` NAME · stage k/n → T users · 0:12 / 1:00 (0:48 left)`, the name shortened to fit.
fn title_line(snap: &Snapshot, width: u16) -> Line<'static> {
    let remaining = snap.duration.saturating_sub(snap.elapsed);
    let stage = format!(
        "  stage {}/{} → {} users",
        snap.stage.0, snap.stage.1, snap.stage_target
    );
    let clock = format!(
        "  {} / {} ({} left)",
        clock(snap.elapsed),
        clock(snap.duration),
        clock(remaining)
    );
    let fixed = 1 + stage.chars().count() + clock.chars().count();
    let name = shorten(&snap.name, (width as usize).saturating_sub(fixed).max(8));
    Line::from(vec![
        " ".into(),
        Span::styled(name, Style::new().bold()),
        stage.into(),
        Span::styled(clock, Style::new().cyan()),
    ])
}

/// ` users 15/16 (+2) · workers 1 · 1234.5 req/s`.
fn status_line(snap: &Snapshot) -> Line<'static> {
    let shift = match snap.users_shift {
        0 => String::new(),
        s => format!(" ({s:+})"),
    };
    let mut spans = vec![
        " users ".into(),
        Span::styled(
            format!("{}/{}{shift}", snap.users_running, snap.users_goal),
            Style::new().bold(),
        ),
        "  workers ".into(),
        Span::styled(snap.workers.len().to_string(), Style::new().bold()),
        "  ".into(),
        Span::styled(format!("{:.1}", snap.rps_now), Style::new().bold().green()),
        " req/s".into(),
    ];
    if snap.master_wait > std::time::Duration::from_secs(1) {
        // Reports wait in the master: acknowledgements come late, the figures lag behind.
        spans.push(Span::styled(
            format!("  master behind {:.1}s", snap.master_wait.as_secs_f64()),
            Style::new().bold().red(),
        ));
    }
    if snap.late_requests > 0 {
        // Counted in every total, but their intervals had closed: the charts miss them.
        spans.push(Span::styled(
            format!("  late {}", snap.late_requests),
            Style::new().bold().yellow(),
        ));
    }
    Line::from(spans)
}

fn draw_footer(frame: &mut Frame, area: Rect, state: &UiState, snap: &Snapshot) {
    let mut spans = if state.stopping {
        vec![Span::styled(
            " stopping: in-flight requests finish, then the summary (q: quit now) ",
            Style::new().bold().black().on_yellow(),
        )]
    } else {
        let key = |k: &'static str| Span::styled(k, Style::new().bold().cyan());
        vec![
            " ".into(),
            key("q"),
            " stop ".into(),
            key("+/-"),
            format!(" users ±{} ", snap.users_step.max(1)).into(),
            key("e"),
            " export ".into(),
            key("tab"),
            " view ".into(),
            key("?"),
            " help".into(),
        ]
    };
    if let Some((at, text)) = state.log.back() {
        spans.push(Span::styled(
            format!("  {} {text}", clock(*at)),
            Style::new().yellow(),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

#[cfg(test)]
mod tests;
