//! Drawing: a pure function of the view's state and the latest snapshot, so every screen can be
//! rendered into ratatui's `TestBackend` and read back in tests.

use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Clear, Dataset, GraphType, Paragraph, Row, Table, Wrap,
};

use crate::aggregate::ArchPoint;
use crate::snapshot::{self, Snapshot};

use super::state::{Tab, UiState};

/// At least this wide, the table shows exact figures and wider columns.
const WIDE: u16 = 140;
/// At least this big, the dashboard lays the charts out in two rows and shows the events.
const ROOMY: (u16, u16) = (150, 40);

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
    Line::from(vec![
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
    ])
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

// ---------------------------------------------------------------- dashboard

fn draw_dashboard(frame: &mut Frame, area: Rect, state: &UiState, snap: &Snapshot) {
    let table_rows = snap.by_arch.len() + snap.by_target.len() + snap.ratios.len() + 1;
    let table_height = (table_rows as u16 + 2).min(area.height);
    let [table, charts] =
        Layout::vertical([Constraint::Length(table_height), Constraint::Min(0)]).areas(area);
    draw_table(frame, table, snap);
    if charts.height < 5 {
        return;
    }
    let arches = arch_styles(snap);
    let x_max = snap
        .elapsed
        .as_secs_f64()
        .max(snap.series.last().map_or(0.0, |p| p.t))
        .max(1.0);
    let throughput = ChartSpec {
        title: "req/s",
        value: |a| Some(a.rps),
        fmt: compact,
    };
    let errors = ChartSpec {
        title: "5xx %",
        value: |a| (a.requests > 0).then_some(a.ratio_5xx * 100.0),
        fmt: |v| format!("{v:.1}"),
    };
    let p99 = ChartSpec {
        title: "p99 ms",
        value: |a| (a.requests > 0).then_some(a.p99_ms),
        fmt: compact,
    };
    if area.width >= ROOMY.0 && area.height >= ROOMY.1 {
        let [top, bottom] = Layout::vertical([Constraint::Fill(1); 2]).areas(charts);
        let [c5xx, cp99, events] = Layout::horizontal([Constraint::Fill(1); 3]).areas(bottom);
        draw_chart(frame, top, &throughput, snap, &arches, x_max);
        draw_chart(frame, c5xx, &errors, snap, &arches, x_max);
        draw_chart(frame, cp99, &p99, snap, &arches, x_max);
        draw_events(frame, events, state);
    } else {
        let [a, b, c] = Layout::horizontal([Constraint::Fill(1); 3]).areas(charts);
        draw_chart(frame, a, &throughput, snap, &arches, x_max);
        draw_chart(frame, b, &errors, snap, &arches, x_max);
        draw_chart(frame, c, &p99, snap, &arches, x_max);
    }
}

/// Column headers of the comparison table; latencies are in ms (the block title says so).
const TABLE_HEADERS: [&str; 12] = [
    "", "req/s", "total", "2xx", "5xx", "5xx%", "err", "p50", "p95", "p99", "max", "load",
];

fn draw_table(frame: &mut Frame, area: Rect, snap: &Snapshot) {
    let wide = area.width >= WIDE;
    // Narrow: every column at its least, so 80 columns hold them all. Wide: spread out.
    let widths = if wide {
        [2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1].map(Constraint::Fill)
    } else {
        [11, 7, 6, 6, 5, 5, 4, 5, 5, 5, 5, 4].map(Constraint::Length)
    };
    let header = Row::new(
        TABLE_HEADERS
            .iter()
            .map(|h| Cell::from(Line::from(*h).right_aligned())),
    )
    .style(Style::new().bold().underlined());
    let arches = arch_styles(snap);
    let mut rows: Vec<Row> = Vec::new();
    for r in &snap.by_arch {
        let style = arch_style(&arches, &r.label).bold();
        rows.push(figures_row(Span::styled(r.label.clone(), style), r, wide));
    }
    for r in &snap.by_target {
        let label = if wide {
            format!("  {} ({})", r.label, r.arch)
        } else {
            format!("  {}", r.label)
        };
        let style = arch_style(&arches, &r.arch);
        rows.push(figures_row(Span::styled(label, style), r, wide));
    }
    rows.push(figures_row(Span::raw("all").italic(), &snap.totals, wide).style(Style::new().dim()));
    for ratio in &snap.ratios {
        rows.push(ratio_row(ratio, wide));
    }
    let title = Line::from(vec![
        " per arch and target ".bold(),
        "· latency ms · ratio vs ".dim(),
        snap.ratios
            .first()
            .map_or(String::new(), |r| r.baseline.clone())
            .dim(),
        " ".into(),
    ]);
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .block(Block::new().borders(Borders::TOP).title(title));
    frame.render_widget(table, area);
}

fn figures_row<'a>(label: Span<'a>, r: &snapshot::Row, wide: bool) -> Row<'a> {
    let count = |n: u64| {
        if wide {
            n.to_string()
        } else {
            compact(n as f64)
        }
    };
    let ms = |v: f64| if wide { format!("{v:.2}") } else { ms_short(v) };
    let load = match r.valid_load() {
        Some(true) => Span::styled("ok", Style::new().green()),
        Some(false) => Span::styled("5XX!", Style::new().bold().red()),
        None => Span::raw(""),
    };
    let s5xx_style = if r.s5xx > 0 {
        Style::new().red()
    } else {
        Style::new()
    };
    let cells = vec![
        Cell::from(label),
        right(if wide || r.rps_now < 1e5 {
            format!("{:.1}", r.rps_now)
        } else {
            compact(r.rps_now)
        }),
        right(count(r.requests)),
        right(count(r.s2xx)),
        right(count(r.s5xx)).style(s5xx_style),
        right(percent(r.ratio_5xx)).style(s5xx_style),
        right(count(r.errors)),
        right(ms(r.p50_ms)),
        right(ms(r.p95_ms)),
        right(ms(r.p99_ms)),
        right(ms(r.max_ms)),
        Cell::from(Line::from(load).right_aligned()),
    ];
    Row::new(cells)
}

/// `arm64/amd64   ×1.02 ...   ×0.95`: throughput under req/s, p99 under p99.
fn ratio_row<'a>(r: &snapshot::Ratio, wide: bool) -> Row<'a> {
    let times = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("×{v:.2}"));
    let label = if wide {
        format!("{} vs {}", r.arch, r.baseline)
    } else {
        format!("{}/{}", r.arch, r.baseline)
    };
    let mut cells = vec![Cell::from(label), right(times(r.rps))];
    cells.extend((0..7).map(|_| Cell::from("")));
    cells.push(right(times(r.p99)));
    Row::new(cells).style(Style::new().yellow())
}

fn right<'a>(text: String) -> Cell<'a> {
    Cell::from(Line::from(text).right_aligned())
}

/// Which series a chart shows and how its axis reads.
struct ChartSpec {
    title: &'static str,
    /// The value of one interval; `None` leaves a gap (no requests: no latency).
    value: fn(&ArchPoint) -> Option<f64>,
    fmt: fn(f64) -> String,
}

fn draw_chart(
    frame: &mut Frame,
    area: Rect,
    spec: &ChartSpec,
    snap: &Snapshot,
    arches: &[(String, Color)],
    x_max: f64,
) {
    let data: Vec<Vec<(f64, f64)>> = arches
        .iter()
        .map(|(arch, _)| {
            snap.series
                .iter()
                .filter_map(|p| {
                    let v = match p.by_arch.get(arch) {
                        Some(a) => (spec.value)(a),
                        // An arch that served nothing in an interval had no throughput.
                        None if spec.title == "req/s" => Some(0.0),
                        None => None,
                    };
                    v.map(|v| (p.t, v))
                })
                .collect()
        })
        .collect();
    let y_top = data
        .iter()
        .flatten()
        .map(|(_, v)| *v)
        .fold(0.0_f64, f64::max);
    let y_max = nice_ceiling(y_top * 1.1);
    let datasets = arches
        .iter()
        .zip(&data)
        .map(|((arch, color), points)| {
            Dataset::default()
                .name(arch.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(*color))
                .data(points)
        })
        .collect();
    // The legend is in the title, where it never hides a line.
    let mut title = vec![Span::styled(
        format!(" {} ", spec.title),
        Style::new().bold(),
    )];
    for (arch, color) in arches {
        title.push(Span::styled(format!("■{arch} "), Style::new().fg(*color)));
    }
    let x_labels = [0.0, x_max / 2.0, x_max].map(|s| Span::raw(clock(Duration::from_secs_f64(s))));
    let y_labels = [0.0, y_max / 2.0, y_max].map(|v| Span::raw((spec.fmt)(v)));
    let chart = Chart::new(datasets)
        .block(Block::bordered().title(Line::from(title)))
        .legend_position(None)
        .x_axis(
            Axis::default()
                .bounds([0.0, x_max])
                .labels(x_labels)
                .style(Style::new().dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, y_max])
                .labels(y_labels)
                .style(Style::new().dim()),
        );
    frame.render_widget(chart, area);
}

fn draw_events(frame: &mut Frame, area: Rect, state: &UiState) {
    let visible = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = state
        .log
        .iter()
        .rev()
        .take(visible)
        .rev()
        .map(|(at, text)| Line::from(vec![format!("{} ", clock(*at)).dim(), text.clone().into()]))
        .collect();
    let block = Block::bordered().title(" events ".bold());
    frame.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        area,
    );
}

// ---------------------------------------------------------------- workers view

const WORKER_HEADERS: [&str; 8] = [
    "id",
    "arch",
    "host",
    "users",
    "req/s",
    "cpu%",
    "heartbeat",
    "state",
];

fn draw_workers(frame: &mut Frame, area: Rect, state: &UiState, snap: &Snapshot) {
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
pub const KEYS: [(&str, &str); 6] = [
    (
        "q, Ctrl-C",
        "stop: in-flight requests finish, the summary is written",
    ),
    ("q again", "quit at once"),
    ("+ / -", "more / fewer users, by the step shown below"),
    ("e", "write the summary so far to SUMMARY.partial.json"),
    ("tab", "switch view: dashboard / workers"),
    ("?, esc", "this help / close it"),
];

fn draw_help(frame: &mut Frame, snap: &Snapshot) {
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

// ---------------------------------------------------------------- colours and numbers

/// One colour per arch, the same in the table and every chart.
fn arch_styles(snap: &Snapshot) -> Vec<(String, Color)> {
    const OTHERS: [Color; 5] = [
        Color::Yellow,
        Color::Magenta,
        Color::LightCyan,
        Color::LightRed,
        Color::White,
    ];
    let mut others = OTHERS.iter().cycle();
    snap.by_arch
        .iter()
        .map(|r| {
            let color = match r.label.as_str() {
                "arm64" | "aarch64" | "arm" => Color::LightGreen,
                "amd64" | "x86_64" | "x86-64" => Color::LightBlue,
                _ => *others.next().unwrap_or(&Color::White),
            };
            (r.label.clone(), color)
        })
        .collect()
}

fn arch_style(arches: &[(String, Color)], arch: &str) -> Style {
    arches
        .iter()
        .find(|(a, _)| a == arch)
        .map_or(Style::new(), |(_, c)| Style::new().fg(*c))
}

/// `m:ss`, or `h:mm:ss` from an hour.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// At most six characters: `999999`, `1.23M`, `12.3G`.
fn compact(v: f64) -> String {
    if v < 1e6 {
        if v.fract() == 0.0 || v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    } else if v < 1e9 {
        format!("{:.2}M", v / 1e6)
    } else {
        format!("{:.1}G", v / 1e9)
    }
}

/// Milliseconds in at most five characters: `0.42`, `12.5`, `480`, `12.3s`.
fn ms_short(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else if v < 10_000.0 {
        format!("{v:.0}")
    } else {
        format!("{:.0}s", v / 1000.0)
    }
}

/// A ratio as a percentage in at most five characters.
fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    if p < 10.0 {
        format!("{p:.2}")
    } else {
        format!("{p:.1}")
    }
}

/// 1, 2 or 5 times a power of ten, at least `v` (and at least 1).
fn nice_ceiling(v: f64) -> f64 {
    if !(v.is_finite() && v > 1.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * magnitude)
}

/// `text`, cut to `max` characters with an ellipsis.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests;
