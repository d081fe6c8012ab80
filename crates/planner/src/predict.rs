//! Latency prediction for one shape on one backend.

use serde::{Deserialize, Serialize};

use crate::compose::operator_sum;
use crate::confidence::{Confidence, expected_error_pct, run_to_run_pct, widen};
use crate::features::{Component, Term, term_value_in};
use crate::model::LatencyModel;
use crate::profile::{BackendProfile, Profile};
use crate::shape::Shape;

/// Probability bounds of the prediction interval (a central 90% interval).
pub const INTERVAL: [f64; 2] = [0.05, 0.95];

/// Time attributed to one component, ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentTime {
    /// Which component.
    pub component: Component,
    /// Its predicted time, ms.
    pub ms: f64,
}

/// A prediction for one shape and backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Backend name.
    pub backend: String,
    /// Point prediction, ms.
    pub latency_ms: f64,
    /// 90% prediction interval, ms: the held-out error distribution widened by
    /// the machine's run-to-run variability ([`crate::confidence::widen`]).
    pub interval_ms: [f64; 2],
    /// Expected error, %: held-out error near this shape and run-to-run
    /// variability combined ([`crate::confidence`]).
    pub expected_error_pct: f64,
    /// The label of that error (one lower when extrapolated).
    pub confidence: Confidence,
    /// Where the time goes (physics models only; empty otherwise).
    pub breakdown: Vec<ComponentTime>,
    /// Regime label: the fitted size segment and the dominant component.
    pub regime: String,
    /// ms that one more layer of this width costs ("depth tax").
    pub depth_tax_ms: f64,
    /// True when the shape lies outside the measured ranges.
    pub extrapolated: bool,
    /// Which dimensions lie outside the measured ranges.
    pub outside: Vec<String>,
}

/// Adds `ms` to `component`'s entry (creating it).
fn add_to(parts: &mut Vec<ComponentTime>, component: Component, ms: f64) {
    match parts.iter_mut().find(|p| p.component == component) {
        Some(p) => p.ms += ms,
        None => parts.push(ComponentTime { component, ms }),
    }
}

fn breakdown(model: &LatencyModel, shape: &Shape) -> Vec<ComponentTime> {
    let mut parts: Vec<ComponentTime> = vec![];
    match model {
        LatencyModel::Physics { terms, parallelism } => {
            let a = shape.accounting();
            for c in terms {
                let ms = c.value * term_value_in(c.term, shape, parallelism.as_ref());
                if matches!(
                    c.term,
                    Term::MatmulGflop
                        | Term::NarrowMatmulGflop
                        | Term::ShortMatmulGflop
                        | Term::DecodeMatmulGflop
                ) {
                    // Split projections vs MLP by their FLOP shares.
                    let proj = a.flops.attention_projections as f64;
                    let share = proj / (proj + a.flops.mlp as f64);
                    add_to(&mut parts, Component::Attention, ms * share);
                    add_to(&mut parts, Component::Mlp, ms * (1.0 - share));
                } else {
                    add_to(&mut parts, c.term.component(), ms);
                }
            }
        }
        LatencyModel::Operators {
            phase,
            calibration,
            laws,
        } => {
            let Ok(sum) = operator_sum(laws, shape, *phase) else {
                return vec![];
            };
            for (component, ms) in sum.by_component() {
                add_to(&mut parts, component, calibration.scale * ms);
            }
            let cold = calibration.cold_gap_share * sum.cold_gap_ms;
            if cold > 0.0 {
                add_to(&mut parts, Component::MemoryTraffic, cold);
            }
            let layers = shape.layers() as f64;
            let per_layer = (calibration.per_layer_ms
                + calibration.per_layer_sequence_ms * shape.batch() as f64)
                * layers;
            if per_layer > 0.0 {
                add_to(&mut parts, Component::PerLayerFixed, per_layer);
            }
            if calibration.constant_ms > 0.0 {
                add_to(&mut parts, Component::Constant, calibration.constant_ms);
            }
        }
        LatencyModel::Linear { .. } | LatencyModel::LogLinear { .. } => {}
    }
    parts.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    parts
}

/// Predicts one shape on one backend of a profile.
pub fn predict_backend(b: &BackendProfile, shape: &Shape) -> Prediction {
    let latency_ms = b.model.predict_ms(shape).max(f64::MIN_POSITIVE);
    let [lo, hi] = widen(
        b.residuals.ratio_at(INTERVAL[0]),
        b.residuals.ratio_at(INTERVAL[1]),
        run_to_run_pct(b),
    );
    let interval_ms = [latency_ms * lo, latency_ms * hi];
    let parts = breakdown(&b.model, shape);
    let depth_tax_ms = shape
        .with_depth_width(shape.layers() + 1, shape.d_model(), shape.heads())
        .map(|deeper| b.model.predict_ms(&deeper).max(0.0) - latency_ms)
        .unwrap_or(f64::NAN);
    let params = shape.accounting().params.total as f64;
    let segments = &b.regimes.segments;
    let segment = segments
        .iter()
        .position(|s| params <= s.to_params)
        .unwrap_or(segments.len().saturating_sub(1));
    let mut regime = match segments.get(segment) {
        Some(s) => format!(
            "segment {} of {} (latency ∝ params^{:.2})",
            segment + 1,
            segments.len(),
            s.exponent
        ),
        None => "unknown".to_string(),
    };
    if let Some(top) = parts.first() {
        let share = top.ms / latency_ms;
        regime.push_str(&format!(", {} {:.0}%", top.component.label(), 100.0 * share));
    }
    let outside: Vec<String> = b
        .validity
        .outside(shape)
        .into_iter()
        .map(|name| match name {
            "architecture" => format!(
                "architecture ({} never measured)",
                b.validity.unmeasured_features(shape).join(", ")
            ),
            other => other.to_string(),
        })
        .collect();
    let expected_error_pct = expected_error_pct(b, shape);
    Prediction {
        backend: b.backend.clone(),
        latency_ms,
        interval_ms,
        expected_error_pct,
        confidence: Confidence::of(expected_error_pct, !outside.is_empty()),
        breakdown: parts,
        regime,
        depth_tax_ms,
        extrapolated: !outside.is_empty(),
        outside,
    }
}

/// Predicts one shape on every backend of a profile, fastest first.
pub fn predict_all(profile: &Profile, shape: &Shape) -> Vec<Prediction> {
    let mut all: Vec<Prediction> = profile
        .backends
        .iter()
        .map(|b| predict_backend(b, shape))
        .collect();
    all.sort_by(|a, b| a.latency_ms.total_cmp(&b.latency_ms));
    all
}

/// TR121's fixed size classes, for comparison with the fitted segments.
pub fn tr121_size_class(params_total: u64) -> &'static str {
    match params_total {
        p if p < 1_000_000 => "tiny (<1M)",
        p if p < 50_000_000 => "small (1M–50M)",
        p if p < 500_000_000 => "medium (50M–500M)",
        _ => "large (>500M)",
    }
}
