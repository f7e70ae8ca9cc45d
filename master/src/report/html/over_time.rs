//! The charts over time per arch (throughput, 5XX %, p50 and p99, users) and each arch's
//! latency distribution from its full histogram.

use super::super::charts::{self, Axes, Line, plain};
use super::super::{ReportError, histogram};
use super::{figure, results_table};
use crate::outcome::{Results, Summary};

pub(super) fn over_time(
    h: &mut String,
    s: &Summary,
    arches: &[(String, usize)],
) -> Result<(), ReportError> {
    h.push_str("<h2 id=\"over-time\">Over time</h2>\n");
    let per_arch = |f: fn(&crate::outcome::ArchPoint) -> f64| -> Vec<Line> {
        arches
            .iter()
            .map(|(arch, colour)| Line {
                name: arch.clone(),
                colour: *colour,
                dashed: false,
                markers: false,
                points: s
                    .series
                    .iter()
                    .filter_map(|p| Some((p.t, f(p.by_arch.get(arch)?))))
                    .collect(),
            })
            .filter(|l| !l.points.is_empty())
            .collect()
    };
    let time = |title: &'static str, y: &'static str| Axes {
        title,
        x: "time since start (s)",
        y,
        x_format: plain,
        y_format: plain,
    };
    let svg = charts::lines(
        "chart-throughput",
        &time("Throughput per arch", "req/s"),
        &per_arch(|p| p.rps),
        &[],
    )?;
    figure(
        h,
        "chart-throughput",
        &svg,
        "Requests per second, per interval, by the arch that served them.",
    );
    let svg = charts::lines(
        "chart-5xx",
        &time("5XX per arch", "5XX % of requests"),
        &per_arch(|p| p.ratio_5xx * 100.0),
        &[],
    )?;
    figure(
        h,
        "chart-5xx",
        &svg,
        "Share of answers that were 5XX, per interval.",
    );
    let mut latency = Vec::new();
    for (arch, colour) in arches {
        for (label, dashed, f) in [
            (
                "p50",
                true,
                (|p: &crate::outcome::ArchPoint| p.p50_ms) as fn(&crate::outcome::ArchPoint) -> f64,
            ),
            ("p99", false, |p: &crate::outcome::ArchPoint| p.p99_ms),
        ] {
            let points: Vec<(f64, f64)> = s
                .series
                .iter()
                .filter_map(|p| Some((p.t, f(p.by_arch.get(arch)?))))
                .collect();
            if !points.is_empty() {
                latency.push(Line {
                    name: format!("{arch} {label}"),
                    colour: *colour,
                    dashed,
                    markers: false,
                    points,
                });
            }
        }
    }
    let svg = charts::lines(
        "chart-latency",
        &time("Latency per arch: p50 (dashed) and p99", "ms"),
        &latency,
        &[],
    )?;
    figure(
        h,
        "chart-latency",
        &svg,
        "Per-interval latency percentiles from the merged HDR histograms.",
    );
    let mut users = vec![Line {
        name: "users running (all)".to_owned(),
        colour: arches.len(),
        dashed: false,
        markers: false,
        points: s.series.iter().map(|p| (p.t, p.users as f64)).collect(),
    }];
    if let Some(c) = &s.capacity {
        for (arch, a) in &c.by_arch {
            let colour = arches.iter().find(|(x, _)| x == arch).map_or(0, |x| x.1);
            let mut points = Vec::new();
            for st in &a.steps {
                points.push((st.started_s, st.level));
                points.push((st.ended_s, st.level));
            }
            if !points.is_empty() {
                users.push(Line {
                    name: format!("{arch} level"),
                    colour,
                    dashed: true,
                    markers: false,
                    points,
                });
            }
        }
    }
    let svg = charts::lines("chart-users", &time("Users", "users"), &users, &[])?;
    figure(
        h,
        "chart-users",
        &svg,
        "Users the workers ran; in a capacity search, each arch's level (dashed).",
    );
    Ok(())
}

pub(super) fn distribution(
    h: &mut String,
    s: &Summary,
    arches: &[(String, usize)],
) -> Result<(), ReportError> {
    h.push_str("<h2 id=\"latency\">Latency distribution</h2>\n");
    let mut lines = Vec::new();
    for (arch, colour) in arches {
        let Some(r) = s.by_arch.get(arch) else {
            continue;
        };
        if let Some(hist) = histogram(r.hdr.as_deref(), arch)? {
            lines.push(Line {
                name: arch.clone(),
                colour: *colour,
                dashed: false,
                markers: false,
                points: charts::percentile_points(&hist),
            });
        }
    }
    let axes = Axes {
        title: "Latency by percentile (whole run)",
        x: "percentile",
        y: "ms",
        x_format: charts::percentile_label,
        y_format: plain,
    };
    let svg = charts::lines("chart-percentiles", &axes, &lines, &[])?;
    figure(
        h,
        "chart-percentiles",
        &svg,
        "From each arch's full HDR histogram; the x axis stretches the tail (90%, 99%, 99.9% evenly spaced).",
    );
    if !s.by_request.is_empty() {
        let rows: Vec<(String, String, &Results)> = s
            .by_request
            .iter()
            .map(|r| {
                (
                    format!("{} {} [{}]", r.method, r.request, r.arch),
                    String::new(),
                    &r.results,
                )
            })
            .collect();
        results_table(h, "Per request and arch", &rows);
    }
    Ok(())
}
