//! SVG line charts, drawn here so the web page, the CLI and the report share
//! one renderer. Pure string building; every piece of text is XML-escaped
//! because backend and profile names come from user files.

use std::fmt::Write;

use crate::crossover::BackendScaling;
use crate::format::{count, duration_ms};
use crate::objective::Objective;
use crate::profile::Profile;
use crate::recommend::{Constraints, iso_parameter_shapes};
use crate::shape::Shape;

/// How the numbers on an axis are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AxisFormat {
    /// Plain numbers (layers).
    Plain,
    /// Counts with K/M/B.
    Count,
    /// Milliseconds as µs/ms/s.
    Duration,
}

impl AxisFormat {
    fn label(self, v: f64) -> String {
        match self {
            AxisFormat::Plain => {
                if v >= 100.0 || (v - v.round()).abs() < 1e-9 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                }
            }
            AxisFormat::Count => count(v.max(0.0) as u64),
            AxisFormat::Duration => duration_ms(v),
        }
    }
}

/// One line (or set of points) on a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// (x, y) points, drawn in order.
    pub points: Vec<(f64, f64)>,
    /// Draw points only, no line (measurements).
    pub points_only: bool,
}

/// A log-log line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// How x values are written.
    pub x_format: AxisFormat,
    /// How y values are written.
    pub y_format: AxisFormat,
    /// The lines.
    pub series: Vec<Series>,
    /// A highlighted point with its label (the proposed shape).
    pub marker: Option<(f64, f64, String)>,
    /// Vertical guide lines with labels (crossovers).
    pub guides: Vec<(f64, String)>,
}

/// Colours of the series, in order: distinguishable for common colour blindness (Okabe–Ito).
pub const PALETTE: [&str; 6] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn log_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
        lo = lo.min(v.log10());
        hi = hi.max(v.log10());
    }
    if !lo.is_finite() {
        return None;
    }
    // Pad so end points are not on the frame; at least a factor of 3 wide.
    let pad = ((hi - lo) * 0.05).max(0.02);
    let (mut lo, mut hi) = (lo - pad, hi + pad);
    if hi - lo < 0.5 {
        let mid = (hi + lo) / 2.0;
        lo = mid - 0.25;
        hi = mid + 0.25;
    }
    Some((lo, hi))
}

/// Tick values on a log axis: powers of ten, or 1-2-5 steps when the range is short.
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mantissas: &[f64] = if hi - lo < 1.5 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let mut out = vec![];
    for e in (lo.floor() as i32)..=(hi.ceil() as i32) {
        for m in mantissas {
            let v = m * 10f64.powi(e);
            if v.log10() >= lo && v.log10() <= hi {
                out.push(v);
            }
        }
    }
    out
}

/// Width and height of every chart, px (scaled by the viewBox on small screens).
pub const SIZE: (f64, f64) = (560.0, 340.0);

/// Renders a chart as a standalone SVG document.
pub fn render_svg(chart: &Chart) -> String {
    let (w, h) = SIZE;
    let (left, right, top, bottom) = (64.0, 16.0, 34.0, 62.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{}\" font-family=\"system-ui, sans-serif\" font-size=\"11\">",
        escape(&chart.title)
    );
    let _ = writeln!(s, "<title>{}</title>", escape(&chart.title));
    let _ = writeln!(s, "<rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>");
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"600\">{}</text>",
        w / 2.0,
        escape(&chart.title)
    );
    let xs = chart.series.iter().flat_map(|se| se.points.iter().map(|p| p.0));
    let ys = chart.series.iter().flat_map(|se| se.points.iter().map(|p| p.1));
    let marker_x = chart.marker.iter().map(|m| m.0);
    let marker_y = chart.marker.iter().map(|m| m.1);
    let (Some((x0, x1)), Some((y0, y1))) = (log_range(xs.chain(marker_x)), log_range(ys.chain(marker_y)))
    else {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">no data to draw</text>\n</svg>",
            w / 2.0,
            h / 2.0
        );
        return s;
    };
    let px = |v: f64| left + (v.log10() - x0) / (x1 - x0) * (w - left - right);
    let py = |v: f64| h - bottom - (v.log10() - y0) / (y1 - y0) * (h - top - bottom);
    let _ = writeln!(
        s,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#bbb\"/>",
        w - left - right,
        h - top - bottom
    );
    for v in ticks(x0, x1) {
        let _ = writeln!(
            s,
            "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#eee\"/><text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\" fill=\"#333\">{3}</text>",
            px(v),
            h - bottom,
            h - bottom + 14.0,
            escape(&chart.x_format.label(v))
        );
    }
    for v in ticks(y0, y1) {
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#eee\"/><text x=\"{2}\" y=\"{3:.1}\" text-anchor=\"end\" fill=\"#333\">{4}</text>",
            py(v),
            w - right,
            left - 4.0,
            py(v) + 4.0,
            escape(&chart.y_format.label(v))
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#333\">{}</text>",
        left + (w - left - right) / 2.0,
        h - bottom + 30.0,
        escape(&chart.x_label)
    );
    let _ = writeln!(
        s,
        "<text x=\"14\" y=\"{0}\" text-anchor=\"middle\" fill=\"#333\" transform=\"rotate(-90 14 {0})\">{1}</text>",
        top + (h - top - bottom) / 2.0,
        escape(&chart.y_label)
    );
    for (x, label) in &chart.guides {
        if x.is_finite() && *x > 0.0 && x.log10() >= x0 && x.log10() <= x1 {
            let _ = writeln!(
                s,
                "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#666\" stroke-dasharray=\"4 3\"/><text x=\"{2:.1}\" y=\"{3}\" fill=\"#444\">{4}</text>",
                px(*x),
                h - bottom,
                px(*x) + 3.0,
                top + 12.0,
                escape(label)
            );
        }
    }
    for (i, series) in chart.series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let pts: Vec<(f64, f64)> = series
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite() && *x > 0.0 && *y > 0.0)
            .collect();
        if series.points_only {
            for (x, y) in &pts {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{colour}\" fill-opacity=\"0.8\"/>",
                    px(*x),
                    py(*y)
                );
            }
        } else if !pts.is_empty() {
            let d: Vec<String> = pts
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
                .collect();
            let _ = writeln!(
                s,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
                d.join(" ")
            );
        }
        // Legend along the bottom.
        let lx = left + 8.0 + i as f64 * 130.0;
        let ly = h - 12.0;
        let _ = writeln!(
            s,
            "<rect x=\"{lx}\" y=\"{}\" width=\"12\" height=\"4\" fill=\"{colour}\"/><text x=\"{}\" y=\"{ly}\" fill=\"#333\">{}</text>",
            ly - 5.0,
            lx + 16.0,
            escape(&series.name)
        );
    }
    if let Some((x, y, label)) = &chart.marker
        && x.is_finite()
        && y.is_finite()
        && *x > 0.0
        && *y > 0.0
    {
        let _ = writeln!(
            s,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"6\" fill=\"none\" stroke=\"#000\" stroke-width=\"2\"/><text x=\"{:.1}\" y=\"{:.1}\" fill=\"#000\">{}</text>",
            px(*x),
            py(*y),
            px(*x) + 8.0,
            py(*y) - 8.0,
            escape(label)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Measured against predicted latency, log-log, with the line of perfect
/// prediction: its ends span every value, so both axes get the same range.
pub fn scatter_chart(title: &str, measured: &[f64], predicted: &[f64]) -> Chart {
    let drawn: Vec<(f64, f64)> = measured
        .iter()
        .zip(predicted)
        .map(|(m, p)| (*m, *p))
        .filter(|(m, p)| m.is_finite() && p.is_finite() && *m > 0.0 && *p > 0.0)
        .collect();
    let (lo, hi) = drawn
        .iter()
        .flat_map(|(m, p)| [*m, *p])
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    let diagonal = if lo.is_finite() {
        vec![(lo, lo), (hi, hi)]
    } else {
        vec![]
    };
    Chart {
        title: title.to_string(),
        x_label: "measured".into(),
        y_label: "predicted (held out)".into(),
        x_format: AxisFormat::Duration,
        y_format: AxisFormat::Duration,
        series: vec![
            Series {
                name: "shapes".into(),
                points: drawn,
                points_only: true,
            },
            Series {
                name: "predicted = measured".into(),
                points: diagonal,
                points_only: false,
            },
        ],
        marker: None,
        guides: vec![],
    }
}

/// Latency vs depth along the iso-parameter curve of `constraints`, one line
/// per backend, with the proposed shape marked.
pub fn depth_chart(
    profile: &Profile,
    base: &Shape,
    proposed: Option<&Shape>,
    c: &Constraints,
    objective: Objective,
) -> Chart {
    let shapes = iso_parameter_shapes(base, c);
    let mut series = vec![];
    for b in profile.backends.iter().filter(|b| objective.supported_by(b)) {
        // One point per depth: the width closest to the budget.
        let mut pts: Vec<(f64, f64)> = vec![];
        for s in &shapes {
            let Some(ms) = objective.latency_ms(b, s) else {
                continue;
            };
            match pts.last_mut() {
                Some(last) if last.0 == s.layers() as f64 => {}
                _ => pts.push((s.layers() as f64, ms)),
            }
        }
        series.push(Series {
            name: b.backend.clone(),
            points: pts,
            points_only: false,
        });
    }
    let marker = proposed.and_then(|p| {
        let best = profile
            .backends
            .iter()
            .filter_map(|b| objective.latency_ms(b, p))
            .fold(f64::INFINITY, f64::min);
        best.is_finite().then(|| {
            (
                p.layers() as f64,
                best,
                format!("proposed L={} d={}", p.layers(), p.d_model()),
            )
        })
    });
    Chart {
        title: format!(
            "Latency vs depth at {} non-embedding params (±{:.0}%)",
            count(c.budget_non_embedding),
            100.0 * c.tolerance
        ),
        x_label: "layers (width shrinks as depth grows)".into(),
        y_label: format!("predicted {}", objective.label()),
        x_format: AxisFormat::Plain,
        y_format: AxisFormat::Duration,
        series,
        marker,
        guides: vec![],
    }
}

/// Latency vs total parameters per backend along the scaling path, with
/// crossovers and the largest measured model (beyond it, lines extrapolate).
pub fn params_chart(
    scaling: &BackendScaling,
    proposed: Option<&Shape>,
    measured_max_params: Option<u64>,
    objective: Objective,
) -> Chart {
    let series = scaling
        .backends
        .iter()
        .enumerate()
        .map(|(i, name)| Series {
            name: name.clone(),
            points: scaling
                .path
                .iter()
                .map(|p| (p.params_total as f64, p.latency_ms[i]))
                .filter(|(_, ms)| ms.is_finite())
                .collect(),
            points_only: false,
        })
        .collect();
    let marker = proposed.and_then(|p| {
        let params = p.accounting().params.total;
        let here = scaling.path.iter().find(|pt| pt.params_total >= params)?;
        let best = here.latency_ms.iter().copied().fold(f64::INFINITY, f64::min);
        Some((params as f64, best, "proposed".to_string()))
    });
    Chart {
        title: "Latency vs model size per backend".into(),
        x_label: "total parameters (depth and width scaled together)".into(),
        y_label: format!("predicted {}", objective.label()),
        x_format: AxisFormat::Count,
        y_format: AxisFormat::Duration,
        series,
        marker,
        guides: scaling
            .crossovers
            .iter()
            .map(|c| {
                (
                    c.params_total as f64,
                    format!("{} → {}", c.faster_below, c.faster_above),
                )
            })
            .chain(measured_max_params.map(|p| (p as f64, format!("measured up to {}", count(p)))))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crossover::backend_scaling;
    use crate::shape::ShapeSpec;

    /// A frozen, rounded profile: snapshots do not move when the default is refitted.
    fn fixture() -> Profile {
        Profile::from_json(include_str!("../tests/fixtures/profile.json"))
            .expect("the fixture profile is valid")
    }

    fn chart(name: &str) -> Chart {
        Chart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            x_format: AxisFormat::Count,
            y_format: AxisFormat::Duration,
            series: vec![Series {
                name: name.into(),
                points: vec![(1e3, 1.0), (1e6, 100.0)],
                points_only: false,
            }],
            marker: None,
            guides: vec![],
        }
    }

    #[test]
    fn names_from_profiles_are_escaped() {
        let svg = render_svg(&chart("<script>alert('x')</script>&"));
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"));
    }

    #[test]
    fn scatter_axes_are_equal_and_titles_escaped() {
        let c = scatter_chart("<script> & flex", &[1.0, 10.0, 0.0], &[2.0, 8.0, 5.0]);
        assert_eq!(
            c.series[0].points,
            vec![(1.0, 2.0), (10.0, 8.0)],
            "non-positive values are not drawn"
        );
        assert_eq!(c.series[1].points, vec![(1.0, 1.0), (10.0, 10.0)]);
        let svg = render_svg(&c);
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt; &amp; flex"));
        assert!(render_svg(&scatter_chart("none", &[], &[])).contains("no data to draw"));
    }

    #[test]
    fn empty_charts_say_so() {
        let mut c = chart("a");
        c.series[0].points.clear();
        assert!(render_svg(&c).contains("no data to draw"));
        c.series[0].points = vec![(f64::NAN, -1.0)];
        assert!(render_svg(&c).contains("no data to draw"));
    }

    #[test]
    fn ticks_are_inside_the_range() {
        for (lo, hi) in [(0.0, 3.0), (-1.2, -0.4), (2.5, 2.9)] {
            for t in ticks(lo, hi) {
                assert!(t.log10() >= lo - 1e-12 && t.log10() <= hi + 1e-12);
            }
        }
        assert_eq!(ticks(0.0, 3.0), vec![1.0, 10.0, 100.0, 1000.0]);
    }

    #[test]
    fn depth_chart_has_one_point_per_depth_and_the_marker() {
        let p = fixture();
        let s = ShapeSpec::new(16, 512).validate().unwrap();
        let c = Constraints {
            max_layers: 48,
            ..Constraints::new(s.accounting().params.non_embedding)
        };
        let chart = depth_chart(&p, &s, Some(&s), &c, Objective::Prefill);
        assert_eq!(chart.series.len(), p.backends.len());
        let xs: Vec<f64> = chart.series[0].points.iter().map(|p| p.0).collect();
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
        assert!(xs.contains(&16.0));
        assert_eq!(chart.marker.as_ref().unwrap().0, 16.0);
    }

    #[test]
    fn params_chart_snapshot() {
        let p = fixture();
        let s = ShapeSpec::new(12, 768).validate().unwrap();
        let max = p.backends.iter().map(|b| b.validity.params_total[1]).max();
        let svg = render_svg(&params_chart(
            &backend_scaling(&p, &s, Objective::Prefill),
            Some(&s),
            max,
            Objective::Prefill,
        ));
        assert!(svg.contains("measured up to"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        insta::assert_snapshot!("params_chart_gpt2_small", svg);
    }
}
