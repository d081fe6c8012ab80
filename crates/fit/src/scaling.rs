//! Scaling read straight from measurements: latency vs depth at fixed width,
//! vs width at fixed depth, and where one backend overtakes another.

use std::collections::BTreeMap;

use planner::Shape;

use crate::Point;
use crate::regimes::log_log_slope;

/// Which dimension a series varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vary {
    /// Layers at fixed width.
    Depth,
    /// Width at fixed depth (heads follow the width).
    Width,
}

/// Measured shapes that differ in one dimension only, with the power law fitted to them.
#[derive(Debug, Clone)]
pub struct ScalingSeries {
    /// What is held fixed, in words.
    pub fixed: String,
    /// (varied value, median ms, shape), ascending.
    pub points: Vec<(f64, f64, Shape)>,
    /// Exponent of latency in the varied dimension (log-log slope).
    pub exponent: f64,
    /// R² of the log-log line.
    pub r2: f64,
}

/// The largest set of measured shapes that share every dimension except the
/// varied one (at least 3 distinct values); ties go to the larger fixed value.
pub fn series(points: &[Point], vary: Vary) -> Option<ScalingSeries> {
    let mut groups: BTreeMap<(u64, u64, u64, u64), Vec<&Point>> = BTreeMap::new();
    for p in points {
        let s = &p.shape;
        let fixed = match vary {
            Vary::Depth => s.d_model(),
            Vary::Width => s.layers(),
        };
        // Heads follow d_model in both series: depth series keep them fixed
        // with the width; width series scale them with it.
        if vary == Vary::Depth || s.heads() == (s.d_model() / 64).max(1) {
            groups
                .entry((fixed, s.seq(), s.batch(), s.vocab()))
                .or_default()
                .push(p);
        }
    }
    let value = |p: &Point| match vary {
        Vary::Depth => p.shape.layers(),
        Vary::Width => p.shape.d_model(),
    } as f64;
    let ((fixed, seq, batch, vocab), members) = groups
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_by(|a, b| value(a).total_cmp(&value(b)));
            v.dedup_by(|a, b| value(a) == value(b));
            (k, v)
        })
        .filter(|(_, v)| v.len() >= 3)
        .max_by_key(|(k, v)| (v.len(), k.0))?;
    let pts: Vec<(f64, f64, Shape)> = members.iter().map(|p| (value(p), p.median_ms, p.shape)).collect();
    let (exponent, r2) = log_log_slope(&pts.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>())?;
    let fixed = match vary {
        Vary::Depth => format!("d_model = {fixed}, n = {seq}, b = {batch}, V = {vocab}"),
        Vary::Width => format!("L = {fixed}, heads = d_model/64, n = {seq}, b = {batch}, V = {vocab}"),
    };
    Some(ScalingSeries {
        fixed,
        points: pts,
        exponent,
        r2,
    })
}

/// Two backends measured on the same shapes.
#[derive(Debug, Clone)]
pub struct BackendComparison {
    /// First backend.
    pub a: String,
    /// Second backend.
    pub b: String,
    /// (shape, a ms, b ms), by total parameters.
    pub rows: Vec<(Shape, f64, f64)>,
    /// Changes of the faster backend along increasing size, among shapes at
    /// the base sequence and batch: (params between the two shapes, faster
    /// below, faster above).
    pub switches: Vec<(u64, String, String)>,
}

/// Compares two backends on the shapes both measured.
pub fn compare(a: &str, a_points: &[Point], b: &str, b_points: &[Point]) -> Option<BackendComparison> {
    let mut rows: Vec<(Shape, f64, f64)> = a_points
        .iter()
        .filter_map(|p| {
            b_points
                .iter()
                .find(|q| q.shape == p.shape)
                .map(|q| (p.shape, p.median_ms, q.median_ms))
        })
        .collect();
    if rows.len() < 2 {
        return None;
    }
    rows.sort_by_key(|r| (r.0.accounting().params.total, r.0.layers()));
    let (seq, batch) = crate::profile_fit::base_configuration(rows.iter().map(|r| &r.0));
    let base: Vec<&(Shape, f64, f64)> = rows
        .iter()
        .filter(|r| r.0.seq() == seq && r.0.batch() == batch)
        .collect();
    let faster = |r: &(Shape, f64, f64)| if r.1 <= r.2 { a } else { b };
    let mut switches = vec![];
    for w in base.windows(2) {
        let (lo, hi) = (faster(w[0]), faster(w[1]));
        if lo != hi {
            let p =
                (w[0].0.accounting().params.total as f64 * w[1].0.accounting().params.total as f64).sqrt();
            switches.push((p as u64, lo.to_string(), hi.to_string()));
        }
    }
    Some(BackendComparison {
        a: a.to_string(),
        b: b.to_string(),
        rows,
        switches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use planner::ShapeSpec;

    fn point(l: u64, d: u64, ms: f64) -> Point {
        Point {
            shape: ShapeSpec::new(l, d).validate().unwrap(),
            family: crate::Family::Other("x".into()),
            median_ms: ms,
            rel_uncertainty: 0.01,
        }
    }

    #[test]
    fn depth_series_finds_the_fixed_width_group_and_its_exponent() {
        let mut pts: Vec<Point> = [1u64, 2, 4, 8]
            .iter()
            .map(|&l| point(l, 512, 2.0 * (l as f64).powf(1.3)))
            .collect();
        pts.push(point(3, 256, 1.0));
        pts.push(point(5, 256, 1.5));
        let s = series(&pts, Vary::Depth).unwrap();
        assert_eq!(s.points.len(), 4);
        assert!((s.exponent - 1.3).abs() < 1e-9 && s.r2 > 0.999);
        assert!(s.fixed.contains("d_model = 512"));
        assert!(series(&pts[..2], Vary::Depth).is_none());
    }

    #[test]
    fn width_series_scales_heads_with_width() {
        let pts: Vec<Point> = [128u64, 256, 512]
            .iter()
            .map(|&d| point(8, d, (d as f64).powi(2) / 1e4))
            .collect();
        let s = series(&pts, Vary::Width).unwrap();
        assert!((s.exponent - 2.0).abs() < 1e-9);
    }

    #[test]
    fn comparison_finds_where_the_faster_backend_changes() {
        let shapes = [(1u64, 64u64), (2, 128), (4, 256), (8, 512)];
        let a: Vec<Point> = shapes.iter().map(|&(l, d)| point(l, d, 1.0 + l as f64)).collect();
        let b: Vec<Point> = shapes
            .iter()
            .map(|&(l, d)| point(l, d, 0.5 * (1.0 + l as f64).powf(1.5)))
            .collect();
        // b: 1.41, 2.6, 5.6, 13.5 vs a: 2, 3, 5, 9 → b faster below, a from L=4.
        let c = compare("a", &a, "b", &b).unwrap();
        assert_eq!(c.rows.len(), 4);
        assert_eq!(c.switches.len(), 1);
        assert_eq!((c.switches[0].1.as_str(), c.switches[0].2.as_str()), ("b", "a"));
    }
}
