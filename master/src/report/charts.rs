//! The report's charts, drawn with plotters into SVG text that the page embeds inline (no
//! script, no font or file to fetch). Every arch keeps its colour across charts.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::ReportError;

pub const WIDTH: u32 = 900;
pub const HEIGHT: u32 = 320;

/// A named line of (x, y) points.
pub struct Line {
    pub name: String,
    /// Index into the palette, so an arch has one colour everywhere.
    pub colour: usize,
    pub dashed: bool,
    /// Draw each point as a dot too.
    pub markers: bool,
    pub points: Vec<(f64, f64)>,
}

/// Colours that stay distinct in print and for the common colour-vision deficiencies.
const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // green
    RGBColor(204, 121, 167), // purple
    RGBColor(213, 94, 0),    // vermilion
    RGBColor(86, 180, 233),  // sky
];

pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The CSS colour of palette entry `i`, for legends drawn in HTML.
pub fn css_colour(i: usize) -> String {
    let RGBColor(r, g, b) = colour(i);
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// Axis labels and how the x axis reads.
pub struct Axes<'a> {
    pub title: &'a str,
    pub x: &'a str,
    pub y: &'a str,
    pub x_format: fn(f64) -> String,
    pub y_format: fn(f64) -> String,
}

pub fn plain(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A line chart of `lines`; `marks` are extra labelled points (a knee).
pub fn lines(
    id: &str,
    axes: &Axes,
    lines: &[Line],
    marks: &[(usize, f64, f64, String)],
) -> Result<String, ReportError> {
    let mut svg = String::new();
    draw(&mut svg, axes, lines, marks).map_err(|message| ReportError::Chart {
        chart: id.to_owned(),
        message,
    })?;
    Ok(svg)
}

fn bounds(lines: &[Line], marks: &[(usize, f64, f64, String)]) -> (f64, f64, f64) {
    let xs = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .chain(marks.iter().map(|m| m.1));
    let ys = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .chain(marks.iter().map(|m| m.2));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
        (a.min(x), b.max(x))
    });
    let y1 = ys.fold(0.0f64, f64::max);
    if !x0.is_finite() {
        return (0.0, 1.0, 1.0);
    }
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let y1 = if y1 > 0.0 { y1 * 1.12 } else { 1.0 };
    (x0, x1, y1)
}

fn draw(
    svg: &mut String,
    axes: &Axes,
    lines: &[Line],
    marks: &[(usize, f64, f64, String)],
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root: DrawingArea<SVGBackend, Shift> =
        SVGBackend::with_string(svg, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let (x0, x1, y1) = bounds(lines, marks);
    let mut chart = ChartBuilder::on(&root)
        .caption(axes.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, 0.0..y1)
        .map_err(e)?;
    let x_format = axes.x_format;
    let y_format = axes.y_format;
    chart
        .configure_mesh()
        .x_desc(axes.x)
        .y_desc(axes.y)
        .x_labels(10)
        .y_labels(6)
        .x_label_formatter(&|x| x_format(*x))
        .y_label_formatter(&|y| y_format(*y))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    for line in lines {
        let c = colour(line.colour);
        let style = c.stroke_width(2);
        let series = if line.dashed {
            dashes(&line.points, (x1 - x0) / 120.0)
        } else {
            vec![line.points.clone()]
        };
        let mut first = true;
        for part in series {
            let drawn = chart.draw_series(LineSeries::new(part, style)).map_err(e)?;
            if first && !line.name.is_empty() {
                drawn.label(line.name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], c.stroke_width(3))
                });
            }
            first = false;
        }
        if line.markers || line.points.len() == 1 {
            chart
                .draw_series(line.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(e)?;
        }
    }
    for (colour_index, x, y, text) in marks {
        let c = colour(*colour_index);
        chart
            .draw_series(std::iter::once(Circle::new((*x, *y), 7, c.stroke_width(3))))
            .map_err(e)?;
        chart
            .draw_series(std::iter::once(Text::new(
                text.clone(),
                (*x, *y),
                ("sans-serif", 13).into_font().color(&BLACK),
            )))
            .map_err(e)?;
    }
    if lines.iter().any(|l| !l.name.is_empty()) {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}

/// Cuts a polyline into dashes of about `len` in x.
fn dashes(points: &[(f64, f64)], len: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    for w in points.windows(2) {
        let ((xa, ya), (xb, yb)) = (w[0], w[1]);
        let span = (xb - xa).abs();
        let n = ((span / len.max(1e-9)).ceil() as usize).clamp(1, 400);
        for k in (0..n).step_by(2) {
            let at = |i: usize| {
                let f = (i as f64 / n as f64).min(1.0);
                (xa + (xb - xa) * f, ya + (yb - ya) * f)
            };
            out.push(vec![at(k), at(k + 1)]);
        }
    }
    if out.is_empty() && !points.is_empty() {
        out.push(points.to_vec());
    }
    out
}

/// The label of a percentile-plot x position; x = -log10(1 - q), so 90%, 99%, 99.9% are
/// evenly spaced.
pub fn percentile_label(x: f64) -> String {
    let q = (1.0 - 10f64.powf(-x)) * 100.0;
    let decimals = (x - 2.0).ceil().max(0.0) as usize;
    format!("{q:.decimals$}%")
}

/// Points of a percentile plot of a histogram: (x, latency ms), up to 1 - 1/count.
pub fn percentile_points(h: &hdrhistogram::Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let max_x = (h.len() as f64).log10().clamp(1.0, 6.0);
    let steps = 240;
    (0..=steps)
        .map(|i| {
            let x = max_x * f64::from(i) / f64::from(steps);
            let q = 1.0 - 10f64.powf(-x);
            (x, h.value_at_quantile(q) as f64 / 1000.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels() {
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(4.0), "99.99%");
    }

    #[test]
    fn a_chart_is_an_svg_with_its_title_and_legend() {
        let axes = Axes {
            title: "Throughput",
            x: "time (s)",
            y: "req/s",
            x_format: plain,
            y_format: plain,
        };
        let l = Line {
            name: "arm64".into(),
            colour: 0,
            dashed: false,
            markers: false,
            points: vec![(1.0, 10.0), (2.0, 12.0)],
        };
        let svg = lines("t", &axes, &[l], &[(0, 2.0, 12.0, "knee".into())]).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..60]);
        assert!(svg.contains("Throughput") && svg.contains("arm64") && svg.contains("knee"));
        // Empty charts still draw (an axis and a title), never fail.
        assert!(lines("e", &axes, &[], &[]).unwrap().contains("Throughput"));
    }
}
