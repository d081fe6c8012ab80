//! How far one prediction can be trusted: the held-out error of the profile
//! near the shape, the machine's run-to-run variability, and a label.
//!
//! * **Local error**: the mean absolute held-out (k-fold) error of the
//!   [`NEIGHBOURS`] measured shapes nearest to the asked one, distance taken
//!   in ln layers, ln d_model, ln seq, ln batch and ln vocab (a factor of two
//!   in any of them counts alike). A profile without stored held-out points
//!   (schema < 4) falls back to its overall held-out MAPE.
//! * **Run-to-run**: the larger of the profile's noise floor, the median
//!   relative difference between two runs of the same shapes (onboarding
//!   repeats a few shapes at its start and end; a full sweep repeats whole
//!   passes), and its session spread, the same between any two sessions
//!   that measured a shape (a cloud machine drifts 10–30% between sessions
//!   hours apart, far more than between back-to-back runs). A later session
//!   on the same machine differs from the prediction by that much again.
//! * **Expected error** = √(local² + run-to-run²), and the label:
//!
//! | label | expected error |
//! |---|---|
//! | excellent | ≤ 3% |
//! | good | ≤ 7% |
//! | fair | ≤ 15% |
//! | poor | > 15% |
//!
//! A shape outside the measured ranges gets one label lower.

use serde::{Deserialize, Serialize};

use crate::profile::BackendProfile;
use crate::shape::Shape;

/// Upper bounds (%) of the expected error for excellent, good and fair.
pub const LABEL_THRESHOLDS_PCT: [f64; 3] = [3.0, 7.0, 15.0];

/// Measured shapes whose held-out errors describe a region.
pub const NEIGHBOURS: usize = 5;

/// One measured shape and its held-out error, stored in the profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldOutPoint {
    /// Layers.
    pub layers: u64,
    /// Width.
    pub d_model: u64,
    /// Sequence (prefill) or context (decode).
    pub seq: u64,
    /// Batch.
    pub batch: u64,
    /// Vocabulary.
    pub vocab: u64,
    /// |measured / held-out prediction − 1|, %.
    pub error_pct: f64,
    /// Its architectural features ([`Shape::architecture_bits`]; 0: GPT-2's).
    /// Each feature two shapes do not share counts as far as a factor e in
    /// one dimension, so a Llama-style shape's neighbours are Llama-style
    /// where the profile measured such shapes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub architecture: u16,
}

fn is_zero(bits: &u16) -> bool {
    *bits == 0
}

impl HeldOutPoint {
    /// The point of `shape` with its held-out error.
    pub fn of(shape: &Shape, error_pct: f64) -> Self {
        Self {
            layers: shape.layers(),
            d_model: shape.d_model(),
            seq: shape.seq(),
            batch: shape.batch(),
            vocab: shape.vocab(),
            error_pct,
            architecture: shape.architecture_bits(),
        }
    }

    fn coordinates(&self) -> [f64; 5] {
        [self.layers, self.d_model, self.seq, self.batch, self.vocab].map(|v| (v.max(1) as f64).ln())
    }
}

/// How far to trust a prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Expected error ≤ 3%.
    Excellent,
    /// ≤ 7%.
    Good,
    /// ≤ 15%.
    Fair,
    /// More.
    Poor,
}

impl Confidence {
    /// The label of an expected error (%), one lower when extrapolated.
    pub fn of(expected_error_pct: f64, extrapolated: bool) -> Self {
        let [excellent, good, fair] = LABEL_THRESHOLDS_PCT;
        let level = match expected_error_pct {
            e if e <= excellent => Confidence::Excellent,
            e if e <= good => Confidence::Good,
            e if e <= fair => Confidence::Fair,
            _ => Confidence::Poor,
        };
        if extrapolated { level.lower() } else { level }
    }

    fn lower(self) -> Self {
        match self {
            Confidence::Excellent => Confidence::Good,
            Confidence::Good => Confidence::Fair,
            Confidence::Fair | Confidence::Poor => Confidence::Poor,
        }
    }

    /// Lower-case name.
    pub fn label(self) -> &'static str {
        match self {
            Confidence::Excellent => "excellent",
            Confidence::Good => "good",
            Confidence::Fair => "fair",
            Confidence::Poor => "poor",
        }
    }
}

/// Mean held-out error (%) of the [`NEIGHBOURS`] points nearest to `shape`;
/// `None` without points.
pub fn local_error_pct(points: &[HeldOutPoint], shape: &Shape) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    let asked = HeldOutPoint::of(shape, 0.0);
    let here = asked.coordinates();
    let mut by_distance: Vec<(f64, f64)> = points
        .iter()
        .map(|p| {
            let d2: f64 = p
                .coordinates()
                .iter()
                .zip(&here)
                .map(|(a, b)| (a - b).powi(2))
                .sum();
            let unlike = (p.architecture ^ asked.architecture).count_ones() as f64;
            (d2 + unlike, p.error_pct)
        })
        .collect();
    by_distance.sort_by(|a, b| a.0.total_cmp(&b.0));
    let nearest = &by_distance[..NEIGHBOURS.min(by_distance.len())];
    Some(nearest.iter().map(|(_, e)| e).sum::<f64>() / nearest.len() as f64)
}

/// Expected error (%) of `backend`'s prediction of `shape`: local held-out
/// error and run-to-run variability combined (module doc).
pub fn expected_error_pct(backend: &BackendProfile, shape: &Shape) -> f64 {
    local(backend, shape).hypot(run_to_run_pct(backend).unwrap_or(0.0))
}

/// As [`expected_error_pct`] with the noise floor alone for run-to-run: the
/// error of one shape against another measured in the same session on the
/// same backend, whose level moves both alike.
pub fn shape_error_pct(backend: &BackendProfile, shape: &Shape) -> f64 {
    local(backend, shape).hypot(backend.noise_floor_pct.unwrap_or(0.0))
}

fn local(backend: &BackendProfile, shape: &Shape) -> f64 {
    local_error_pct(&backend.held_out_points, shape).unwrap_or(backend.held_out.mape_pct)
}

/// How far a later run on the machine can land from the prediction's level
/// (%): the larger of the noise floor and the session spread (module doc).
pub fn run_to_run_pct(backend: &BackendProfile) -> Option<f64> {
    match (backend.noise_floor_pct, backend.session_spread_pct) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// z of a central 90% normal interval.
const Z90: f64 = 1.645;

/// Median of |X| for X normal with σ = 1: a median absolute difference of
/// `n` means σ = n / this.
const MEDIAN_ABS_NORMAL: f64 = 0.6745;

/// Widens a ratio interval `[lo, hi]` (measured/predicted, from one
/// session's held-out errors) by the run-to-run variability: in ln space its
/// half-width w becomes √(w² + (1.645·σ)²), σ the spread of a run-to-run
/// difference ([`run_to_run_pct`] / 0.6745, since it is a median absolute
/// difference).
pub fn widen(lo: f64, hi: f64, run_to_run_pct: Option<f64>) -> [f64; 2] {
    let Some(nf) = run_to_run_pct.filter(|n| *n > 0.0) else {
        return [lo, hi];
    };
    let sigma = (1.0 + nf / 100.0).ln() / MEDIAN_ABS_NORMAL;
    let (l, h) = (lo.ln(), hi.ln());
    let centre = (l + h) / 2.0;
    let half = ((h - l) / 2.0).hypot(Z90 * sigma);
    [(centre - half).exp(), (centre + half).exp()]
}

/// Whether a speedup of `speedup`× between two predictions with expected
/// errors `a_pct` and `b_pct` lies inside their combined uncertainty.
pub fn within_noise(speedup: f64, a_pct: f64, b_pct: f64) -> bool {
    let combined = a_pct.hypot(b_pct) / 100.0;
    speedup.ln().abs() < (1.0 + combined).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_share_the_architecture_where_they_can() {
        let gpt2 = crate::ShapeSpec::new(4, 512).validate().unwrap();
        let llama = crate::ShapeSpec {
            kv_heads: Some(2),
            mlp: Some(crate::Mlp::Gated),
            ..crate::ShapeSpec::new(4, 512)
        }
        .validate()
        .unwrap();
        let mut points = vec![HeldOutPoint::of(&gpt2, 1.0); 5];
        // Llama-style points a little farther in size still come first.
        let wider = llama.with_depth_width(5, 512, 8).unwrap();
        points.extend(vec![HeldOutPoint::of(&wider, 20.0); 5]);
        assert_eq!(local_error_pct(&points, &llama), Some(20.0));
        assert_eq!(local_error_pct(&points, &gpt2), Some(1.0));
    }
    use crate::ShapeSpec;

    fn shape(layers: u64, d: u64) -> Shape {
        ShapeSpec::new(layers, d).validate().unwrap()
    }

    #[test]
    fn labels_follow_the_documented_thresholds() {
        assert_eq!(Confidence::of(2.9, false), Confidence::Excellent);
        assert_eq!(Confidence::of(3.1, false), Confidence::Good);
        assert_eq!(Confidence::of(7.0, false), Confidence::Good);
        assert_eq!(Confidence::of(14.0, false), Confidence::Fair);
        assert_eq!(Confidence::of(40.0, false), Confidence::Poor);
        assert_eq!(Confidence::of(2.0, true), Confidence::Good);
        assert_eq!(Confidence::of(40.0, true), Confidence::Poor);
    }

    #[test]
    fn the_local_error_is_that_of_the_nearest_shapes() {
        // Small shapes predicted well, large ones badly.
        let mut points: Vec<HeldOutPoint> =
            (0..6).map(|i| HeldOutPoint::of(&shape(1 + i, 64), 2.0)).collect();
        points.extend((0..6).map(|i| HeldOutPoint::of(&shape(24 - i, 1024), 30.0)));
        assert_eq!(local_error_pct(&points, &shape(2, 64)), Some(2.0));
        assert_eq!(local_error_pct(&points, &shape(20, 1024)), Some(30.0));
        assert_eq!(local_error_pct(&[], &shape(2, 64)), None);
    }

    #[test]
    fn widening_keeps_the_centre_and_grows_with_the_noise_floor() {
        assert_eq!(widen(0.9, 1.1, None), [0.9, 1.1]);
        let [lo, hi] = widen(0.9, 1.1, Some(5.0));
        assert!(lo < 0.9 && hi > 1.1, "{lo} {hi}");
        assert!(((lo * hi).ln() - (0.9f64 * 1.1).ln()).abs() < 1e-12);
        let [lo2, hi2] = widen(0.9, 1.1, Some(10.0));
        assert!(lo2 < lo && hi2 > hi);
    }

    #[test]
    fn the_session_spread_widens_expected_errors_but_not_shape_comparisons() {
        let mut b = crate::default_profile().backends.remove(0);
        let s = shape(4, 256);
        (b.noise_floor_pct, b.session_spread_pct) = (Some(2.0), None);
        assert_eq!(run_to_run_pct(&b), Some(2.0));
        let (expected, shape_only) = (expected_error_pct(&b, &s), shape_error_pct(&b, &s));
        assert_eq!(expected, shape_only);
        b.session_spread_pct = Some(10.0);
        assert_eq!(run_to_run_pct(&b), Some(10.0));
        assert!(expected_error_pct(&b, &s) > expected, "the spread counts");
        assert_eq!(
            shape_error_pct(&b, &s),
            shape_only,
            "one session's level moves both shapes alike"
        );
        // The larger of the two decides, whichever it is.
        (b.noise_floor_pct, b.session_spread_pct) = (Some(12.0), Some(10.0));
        assert_eq!(run_to_run_pct(&b), Some(12.0));
        (b.noise_floor_pct, b.session_spread_pct) = (None, None);
        assert_eq!(run_to_run_pct(&b), None);
    }

    #[test]
    fn small_speedups_between_uncertain_predictions_are_noise() {
        assert!(within_noise(1.06, 5.0, 5.0));
        assert!(within_noise(1.0 / 1.06, 5.0, 5.0));
        assert!(!within_noise(1.25, 5.0, 5.0));
        assert!(!within_noise(1.06, 1.0, 1.0));
    }
}
