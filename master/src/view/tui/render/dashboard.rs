//! The dashboard: the comparison table per arch and target, the charts over time and the
//! events list.

use std::collections::BTreeMap;
use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Dataset, GraphType, Paragraph, Row, Table, Wrap,
};

use super::super::super::snapshot::{self, Snapshot};
use super::super::state::UiState;
use super::format::{arch_style, arch_styles, clock, compact, ms_short, nice_ceiling, percent};
use super::{ROOMY, WIDE};
use crate::outcome::ArchPoint;
use crate::outcome::batch::Interval;
use crate::outcome::confidence::{self, RatioIntervals};

pub(super) fn draw_dashboard(frame: &mut Frame, area: Rect, state: &UiState, snap: &Snapshot) {
    let intervals = live_intervals(state, snap);
    let table_rows =
        snap.by_arch.len() + snap.by_target.len() + snap.ratios.len() + intervals.len() + 1;
    let table_height = (table_rows as u16 + 2).min(area.height);
    let [table, charts] =
        Layout::vertical([Constraint::Length(table_height), Constraint::Min(0)]).areas(area);
    draw_table(frame, table, snap, &intervals);
    if charts.height < 5 {
        return;
    }
    let arches = arch_styles(snap);
    let x_max = snap
        .elapsed
        .as_secs_f64()
        .max(state.series.last().map_or(0.0, |p| p.t))
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
        draw_chart(frame, top, &throughput, state, &arches, x_max);
        draw_chart(frame, c5xx, &errors, state, &arches, x_max);
        draw_chart(frame, cp99, &p99, state, &arches, x_max);
        draw_events(frame, events, state);
    } else {
        let [a, b, c] = Layout::horizontal([Constraint::Fill(1); 3]).areas(charts);
        draw_chart(frame, a, &throughput, state, &arches, x_max);
        draw_chart(frame, b, &errors, state, &arches, x_max);
        draw_chart(frame, c, &p99, state, &arches, x_max);
    }
}

/// Column headers of the comparison table; latencies are in ms (the block title says so).
pub(super) const TABLE_HEADERS: [&str; 12] = [
    "", "req/s", "total", "2xx", "5xx", "5xx%", "err", "p50", "p95", "p99", "max", "load",
];

/// Each ratio's 95% interval from the series so far (batch means, as the summary will have
/// them); none until the run has enough steady intervals.
fn live_intervals(state: &UiState, snap: &Snapshot) -> BTreeMap<String, RatioIntervals> {
    let Some(baseline) = snap.ratios.first().map(|r| r.baseline.as_str()) else {
        return BTreeMap::new();
    };
    let mut arches: Vec<&str> = snap.ratios.iter().map(|r| r.arch.as_str()).collect();
    arches.push(baseline);
    let interval_s = match state.series.as_slice() {
        [a, b, ..] => b.t - a.t,
        _ => 1.0,
    };
    let Ok(b) = confidence::batches_of(&state.series, interval_s, &arches, &[]) else {
        return BTreeMap::new();
    };
    let Some(base) = b.by_arch.get(baseline) else {
        return BTreeMap::new();
    };
    b.by_arch
        .iter()
        .filter(|(arch, _)| *arch != baseline)
        .map(|(arch, figures)| (arch.clone(), confidence::ratio_intervals(figures, base)))
        .collect()
}

fn draw_table(
    frame: &mut Frame,
    area: Rect,
    snap: &Snapshot,
    intervals: &BTreeMap<String, RatioIntervals>,
) {
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
        if let Some(ci) = intervals.get(&ratio.arch) {
            rows.push(interval_row(ci));
        }
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

/// `  95% ±   ±0.03 ...   ≈±0.10` under a ratio row: each ratio's 95% interval as its
/// half-width, `≈` in front when the interval covers 1 (no significant difference).
fn interval_row<'a>(ci: &RatioIntervals) -> Row<'a> {
    let half = |i: Option<&Interval>| {
        i.map_or("-".to_owned(), |i| {
            let mark = if i.covers(1.0) { "≈" } else { "" };
            format!("{mark}±{:.2}", (i.hi - i.lo) / 2.0)
        })
    };
    let mut cells = vec![Cell::from("  95% ±"), right(half(ci.rps_ratio.as_ref()))];
    cells.extend((0..7).map(|_| Cell::from("")));
    cells.push(right(half(ci.p99_ratio.as_ref())));
    Row::new(cells).style(Style::new().yellow().dim())
}

pub(super) fn right<'a>(text: String) -> Cell<'a> {
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
    state: &UiState,
    arches: &[(String, Color)],
    x_max: f64,
) {
    let data: Vec<Vec<(f64, f64)>> = arches
        .iter()
        .map(|(arch, _)| {
            state
                .series
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

pub(super) fn draw_events(frame: &mut Frame, area: Rect, state: &UiState) {
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
