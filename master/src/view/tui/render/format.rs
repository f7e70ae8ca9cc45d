//! Colours per arch and the number formats the screen uses.

use std::time::Duration;

use ratatui::style::{Color, Style};

use super::super::super::snapshot::Snapshot;

/// One colour per arch, the same in the table and every chart.
pub(super) fn arch_styles(snap: &Snapshot) -> Vec<(String, Color)> {
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

pub(super) fn arch_style(arches: &[(String, Color)], arch: &str) -> Style {
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
pub(super) fn compact(v: f64) -> String {
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
pub(super) fn ms_short(v: f64) -> String {
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
pub(super) fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    if p < 10.0 {
        format!("{p:.2}")
    } else {
        format!("{p:.1}")
    }
}

/// 1, 2 or 5 times a power of ten, at least `v` (and at least 1).
pub(super) fn nice_ceiling(v: f64) -> f64 {
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
pub(super) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}
