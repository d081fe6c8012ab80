//! A profile put on the level of the session it is used in.
//!
//! A shared cloud machine runs faster or slower from one hour to the next
//! while shapes measured together keep their ratios (flex decode on one VM,
//! 2026-12-01: identical shapes ×1.15–1.6 apart between sessions of one day,
//! the Llama-style ones included). A profile fitted in other sessions
//! therefore predicts today's *ratios* better than today's *level*. `bench
//! calibrate` measures a few anchor shapes now; the median of their
//! measured/predicted ratios multiplies every prediction of that backend and
//! phase — when its 95% confidence interval excludes 1, so that eight noisy
//! anchors do not move a profile that was already on level — and the profile
//! keeps where it came from. The ratio is fitted in `fit::session_level`;
//! this module applies it.

use serde::{Deserialize, Serialize};

use crate::model::LatencyModel;
use crate::profile::BackendProfile;

/// The level of one session, relative to the fit's, for one backend and phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionLevel {
    /// What every prediction was multiplied by: the product of every
    /// calibration applied since the fit.
    pub factor: f64,
    /// The last calibration's median measured/predicted ratio of its anchors.
    pub ratio: f64,
    /// Its 95% confidence interval (percentile bootstrap of the median).
    pub ratio_ci95: [f64; 2],
    /// Whether the last calibration moved the model: false when the
    /// interval includes 1 (the anchors do not show the session differs) or
    /// the level lies within the profile's run-to-run variability (its
    /// intervals already allow for that much).
    pub applied: bool,
    /// Why it did not (empty when it did).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub not_moved_because: String,
    /// Anchor shapes the last calibration measured.
    pub anchors: usize,
    /// Smallest and largest measured/predicted ratio among those anchors,
    /// after the last calibration's factor was divided out: how evenly the
    /// session moved.
    pub ratio_range: [f64; 2],
    /// When the anchors were measured (RFC 3339, UTC; the last one's timestamp).
    pub measured_utc: String,
    /// Where they came from (file and run).
    pub source: String,
}

impl SessionLevel {
    /// One line: "flex decode ×1.261 (anchors ×1.261, 95% CI 1.178–1.388; 8 anchors measured …, spread −24.0% … +19.7%)".
    pub fn describe(&self, backend: &str, phase: crate::phase::Phase) -> String {
        let [lo, hi] = self.ratio_range;
        let [c0, c1] = self.ratio_ci95;
        let moved = if self.applied {
            String::new()
        } else {
            format!(", not moved: {}", self.not_moved_because)
        };
        format!(
            "{backend} {} ×{:.3} (anchors ×{:.3}, 95% CI {c0:.3}–{c1:.3}{moved}; {} anchors measured {}, spread {:+.1}% … {:+.1}%)",
            phase.name(),
            self.factor,
            self.ratio,
            self.anchors,
            self.measured_utc,
            100.0 * (lo - 1.0),
            100.0 * (hi - 1.0)
        )
    }

    /// Checks that the numbers are usable.
    pub fn check(&self) -> Result<(), String> {
        let [lo, hi] = self.ratio_range;
        let [c0, c1] = self.ratio_ci95;
        for (name, v) in [("factor", self.factor), ("ratio", self.ratio)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("session level {name} {v} is not a positive number"));
            }
        }
        if !(c0.is_finite() && c1.is_finite() && c0 > 0.0 && c0 <= c1) {
            return Err(format!(
                "session level ratio CI [{c0}, {c1}] is not ascending and positive"
            ));
        }
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
            return Err(format!(
                "session level ratio range [{lo}, {hi}] is not ascending and positive"
            ));
        }
        if self.anchors == 0 {
            return Err("a session level needs at least one anchor".into());
        }
        Ok(())
    }
}

impl LatencyModel {
    /// This model with every prediction multiplied by `factor` (> 0), exactly:
    /// each model is linear in its output or in its logarithm.
    pub fn scaled(&self, factor: f64) -> LatencyModel {
        let mut model = self.clone();
        match &mut model {
            LatencyModel::Physics { terms, .. } => terms.iter_mut().for_each(|t| {
                t.value *= factor;
                t.std_error = t.std_error.map(|e| e * factor);
            }),
            LatencyModel::Linear { coefficients } => coefficients.iter_mut().for_each(|c| {
                c.value *= factor;
                c.std_error = c.std_error.map(|e| e * factor);
            }),
            LatencyModel::LogLinear { coefficients } => {
                if let Some(c) = coefficients
                    .iter_mut()
                    .find(|c| c.variable == crate::model::Variable::Intercept)
                {
                    c.value += factor.ln();
                } else {
                    coefficients.push(crate::model::Coefficient {
                        variable: crate::model::Variable::Intercept,
                        value: factor.ln(),
                        std_error: None,
                    });
                }
            }
            LatencyModel::Operators { calibration, .. } => {
                calibration.scale *= factor;
                calibration.cold_gap_share *= factor;
                calibration.per_layer_ms *= factor;
                calibration.per_layer_sequence_ms *= factor;
                calibration.constant_ms *= factor;
            }
        }
        model
    }
}

impl BackendProfile {
    /// This backend's profile (one phase) with a calibration recorded: where
    /// `level.applied`, its model scaled by `level.ratio` (the factor
    /// compounds with an earlier calibration's). Held-out errors and
    /// intervals are relative and stay.
    pub fn at_session_level(&self, mut level: SessionLevel) -> BackendProfile {
        let mut moved = self.clone();
        let ratio = if level.applied { level.ratio } else { 1.0 };
        moved.model = self.model.scaled(ratio);
        level.factor = ratio * self.session.as_ref().map_or(1.0, |s| s.factor);
        moved.session = Some(level);
        moved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::default_profile;
    use crate::shape::ShapeSpec;
    use proptest::prelude::*;

    fn level(ratio: f64, anchors: usize) -> SessionLevel {
        SessionLevel {
            factor: 1.0,
            ratio,
            ratio_ci95: [0.9 * ratio, 1.1 * ratio],
            applied: true,
            not_moved_because: String::new(),
            anchors,
            ratio_range: [0.95, 1.05],
            measured_utc: "2026-12-01T19:00:00Z".into(),
            source: "test".into(),
        }
    }

    proptest! {
        /// Every model kind of the default profile scales its predictions exactly.
        #[test]
        fn a_scaled_model_predicts_factor_times_as_much(
            factor in 0.2f64..5.0,
            layers in 1u64..24,
            width in 1u64..16,
            seq in 1u64..512,
        ) {
            let shape = ShapeSpec { seq: Some(seq), ..ShapeSpec::new(layers, 64 * width) }.validate().unwrap();
            for b in default_profile().backends {
                let decode = b.decode.as_deref().cloned();
                let models = std::iter::once(b.model.clone())
                    .chain(b.alternatives.iter().map(|a| a.model.clone()))
                    .chain(decode.map(|d| d.model));
                for model in models {
                    let (base, scaled) = (model.predict_ms(&shape), model.scaled(factor).predict_ms(&shape));
                    prop_assert!((scaled - factor * base).abs() <= 1e-9 * (factor * base).abs().max(1e-9),
                        "{model:?}: {scaled} vs {factor} × {base}");
                }
            }
        }
    }

    #[test]
    fn calibrations_compound_and_are_recorded() {
        let b = default_profile().backends[0].clone();
        let shape = ShapeSpec::new(8, 512).validate().unwrap();
        let once = b.at_session_level(level(1.5, 8));
        let twice = once.at_session_level(level(0.8, 4));
        assert!((once.model.predict_ms(&shape) / b.model.predict_ms(&shape) - 1.5).abs() < 1e-12);
        let s = twice.session.as_ref().unwrap();
        assert!((s.factor - 1.2).abs() < 1e-12);
        assert_eq!(s.anchors, 4);
        assert_eq!(
            s.describe("flex", crate::phase::Phase::Decode),
            "flex decode ×1.200 (anchors ×0.800, 95% CI 0.720–0.880; 4 anchors measured 2026-12-01T19:00:00Z, spread -5.0% … +5.0%)"
        );
        // An interval that includes 1 records the ratio and moves nothing.
        let kept = twice.at_session_level(SessionLevel {
            applied: false,
            not_moved_because: "the interval includes 1".into(),
            ..level(1.05, 8)
        });
        assert_eq!(kept.model, twice.model);
        let s = kept.session.as_ref().unwrap();
        assert!((s.factor - 1.2).abs() < 1e-12);
        assert!(
            s.describe("flex", crate::phase::Phase::Decode)
                .contains("95% CI 0.945–1.155, not moved: the interval includes 1;")
        );
        assert_eq!(twice.held_out, b.held_out, "relative errors stay");
    }

    #[test]
    fn bad_levels_are_refused() {
        let mut l = level(1.1, 3);
        assert!(l.check().is_ok());
        l.factor = f64::NAN;
        assert!(l.check().unwrap_err().contains("factor"));
        let mut l = level(1.1, 3);
        l.ratio_range = [1.2, 1.1];
        assert!(l.check().unwrap_err().contains("ratio range"));
        let mut l = level(1.1, 3);
        l.ratio_ci95 = [1.2, 1.1];
        assert!(l.check().unwrap_err().contains("ratio CI"));
        assert!(level(-1.0, 3).check().unwrap_err().contains("ratio"));
        assert!(level(1.1, 0).check().unwrap_err().contains("anchor"));
    }
}
