//! Scaling regimes: segmented regression of ln latency on ln params.
//!
//! Instead of TR121's fixed 1M/50M/500M boundaries, breakpoints are searched
//! (0, 1 or 2 of them, each segment with at least 4 shapes) and their number
//! chosen by BIC, so a breakpoint must pay for its parameters.

use planner::profile::{Regimes, Segment};

/// Minimum shapes per segment.
pub const MIN_SEGMENT: usize = 4;

/// Smallest size range a segment may span (largest / smallest params): an
/// exponent fitted over a narrower range measures how shapes of about the same
/// size differ (deep vs wide), not how latency scales with size.
pub const MIN_SEGMENT_RANGE: f64 = 4.0;

fn line(xs: &[f64], ys: &[f64]) -> (f64, f64, f64) {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let intercept = my - slope * mx;
    let sse = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| (y - intercept - slope * x).powi(2))
        .sum();
    (slope, intercept, sse)
}

/// Least-squares slope of ln y on ln x and the R² of that line; `None` with
/// fewer than 3 points or no spread in x.
pub fn log_log_slope(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let pts: Vec<(f64, f64)> = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|&(x, y)| (x.ln(), y.ln()))
        .collect();
    if pts.len() < 3 {
        return None;
    }
    let (xs, ys): (Vec<f64>, Vec<f64>) = pts.into_iter().unzip();
    let (slope, _, sse) = line(&xs, &ys);
    let my = ys.iter().sum::<f64>() / ys.len() as f64;
    let sst: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
    let spread = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        - xs.iter().copied().fold(f64::INFINITY, f64::min);
    (spread > 0.0 && sst > 0.0).then(|| (slope, 1.0 - sse / sst))
}

/// Finds regimes in `(params, latency_ms)` pairs.
pub fn segmented(points: &[(f64, f64)]) -> Regimes {
    let mut pts: Vec<(f64, f64)> = points.iter().map(|&(p, t)| (p.ln(), t.ln())).collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = pts.len();
    let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
    let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
    let fit_range = |a: usize, b: usize| line(&xs[a..b], &ys[a..b]);
    let bic = |sse: f64, segments: usize| {
        let k = (3 * segments - 1) as f64;
        n as f64 * (sse.max(1e-12) / n as f64).ln() + k * (n as f64).ln()
    };
    // Candidate cut positions: between distinct x values.
    let cuts: Vec<usize> = (MIN_SEGMENT..=n.saturating_sub(MIN_SEGMENT))
        .filter(|&c| xs[c] > xs[c - 1])
        .collect();
    let wide = |a: usize, b: usize| xs[b - 1] - xs[a] >= MIN_SEGMENT_RANGE.ln();
    let mut best: (f64, Vec<usize>) = (bic(fit_range(0, n).2, 1), vec![]);
    for &c in cuts.iter().filter(|&&c| wide(0, c) && wide(c, n)) {
        let sse = fit_range(0, c).2 + fit_range(c, n).2;
        let b = bic(sse, 2);
        if b < best.0 {
            best = (b, vec![c]);
        }
    }
    for &c1 in cuts.iter().filter(|&&c1| wide(0, c1)) {
        for &c2 in cuts
            .iter()
            .filter(|&&c2| c2 >= c1 + MIN_SEGMENT && wide(c1, c2) && wide(c2, n))
        {
            let sse = fit_range(0, c1).2 + fit_range(c1, c2).2 + fit_range(c2, n).2;
            let b = bic(sse, 3);
            if b < best.0 {
                best = (b, vec![c1, c2]);
            }
        }
    }
    let bounds: Vec<usize> = std::iter::once(0)
        .chain(best.1.iter().copied())
        .chain(std::iter::once(n))
        .collect();
    let segments = bounds
        .windows(2)
        .map(|w| {
            let (slope, intercept, _) = fit_range(w[0], w[1]);
            Segment {
                from_params: xs[w[0]].exp(),
                to_params: xs[w[1] - 1].exp(),
                exponent: slope,
                intercept,
            }
        })
        .collect();
    let breakpoints_params = best
        .1
        .iter()
        .map(|&c| ((xs[c - 1] + xs[c]) / 2.0).exp())
        .collect();
    Regimes {
        breakpoints_params,
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_log_slope_recovers_a_power_law() {
        let pts: Vec<(f64, f64)> = [1.0, 2.0, 4.0, 8.0, 16.0]
            .iter()
            .map(|&l: &f64| (l, 3.0 * l.powf(1.25)))
            .collect();
        let (slope, r2) = log_log_slope(&pts).unwrap();
        assert!((slope - 1.25).abs() < 1e-12 && (r2 - 1.0).abs() < 1e-12);
        assert!(log_log_slope(&pts[..2]).is_none());
        assert!(log_log_slope(&[(2.0, 1.0), (2.0, 2.0), (2.0, 3.0)]).is_none());
    }

    #[test]
    fn finds_a_planted_break() {
        // Flat (overhead-bound) below 1e6 params, ∝ params^0.9 above.
        let pts: Vec<(f64, f64)> = (0..24)
            .map(|i| {
                let p = 10f64.powf(4.0 + i as f64 * 0.15);
                let t = if p < 1e6 { 0.5 } else { 0.5 * (p / 1e6).powf(0.9) };
                (p, t)
            })
            .collect();
        let r = segmented(&pts);
        assert_eq!(r.breakpoints_params.len(), 1, "{r:?}");
        assert!((r.breakpoints_params[0] / 1e6).log10().abs() < 0.2);
        assert!(r.segments[0].exponent.abs() < 0.05);
        assert!((r.segments[1].exponent - 0.9).abs() < 0.05);
    }

    #[test]
    fn a_cluster_of_equal_sizes_is_not_a_regime() {
        // A power law over 1e5..1e8, then five shapes of about 1.2e8 params
        // whose latencies differ by depth, not size: no segment of its own.
        let mut pts: Vec<(f64, f64)> = (0..16)
            .map(|i| {
                let p = 1e5 * 10f64.powf(i as f64 * 0.2);
                (p, 0.01 * p.powf(0.5))
            })
            .collect();
        for (i, f) in [1.0, 1.05, 1.1, 1.2, 1.3].iter().enumerate() {
            pts.push((
                1.2e8 * f,
                0.01 * 1.2e8f64.powf(0.5) * [1.4, 1.0, 1.3, 0.9, 0.8][i],
            ));
        }
        let r = segmented(&pts);
        for s in &r.segments {
            assert!(s.to_params / s.from_params >= MIN_SEGMENT_RANGE, "{r:?}");
        }
    }

    #[test]
    fn a_clean_power_law_has_no_break() {
        let pts: Vec<(f64, f64)> = (0..20)
            .map(|i| (1e5 * 1.5f64.powi(i), 0.01 * 1.5f64.powi(i).powf(0.7)))
            .collect();
        let r = segmented(&pts);
        assert!(r.breakpoints_params.is_empty());
        assert!((r.segments[0].exponent - 0.7).abs() < 1e-9);
    }
}
