//! Wide-vs-deep recommendations at a fixed parameter budget.

use serde::{Deserialize, Serialize};

use crate::objective::Objective;
use crate::profile::{BackendProfile, Profile};
use crate::shape::Shape;

/// Limits on the shapes considered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constraints {
    /// Non-embedding parameter budget.
    pub budget_non_embedding: u64,
    /// Accept shapes within ±this fraction of the budget.
    pub tolerance: f64,
    /// Fewest layers.
    pub min_layers: u64,
    /// Most layers.
    pub max_layers: u64,
    /// Width of one head (d_model is a multiple of it; small widths use one head).
    pub head_size: u64,
}

/// Default accepted deviation from the budget (a fraction).
pub const DEFAULT_TOLERANCE: f64 = 0.10;
/// Default fewest layers considered.
pub const DEFAULT_MIN_LAYERS: u64 = 1;
/// Default most layers considered.
pub const DEFAULT_MAX_LAYERS: u64 = 128;
/// Default width of one attention head.
pub const DEFAULT_HEAD_SIZE: u64 = 64;

impl Constraints {
    /// Defaults: ±10%, 1..=128 layers, heads of 64.
    pub fn new(budget_non_embedding: u64) -> Self {
        Self {
            budget_non_embedding,
            tolerance: DEFAULT_TOLERANCE,
            min_layers: DEFAULT_MIN_LAYERS,
            max_layers: DEFAULT_MAX_LAYERS,
            head_size: DEFAULT_HEAD_SIZE,
        }
    }
}

/// A candidate shape with its best predicted latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Layers.
    pub layers: u64,
    /// Width.
    pub d_model: u64,
    /// Heads.
    pub heads: u64,
    /// Non-embedding params.
    pub params_non_embedding: u64,
    /// Total params.
    pub params_total: u64,
    /// Fastest backend for it.
    pub backend: String,
    /// Predicted latency on that backend by the recommendation's objective, ms.
    pub latency_ms: f64,
    /// Proposed latency / this latency (>1: faster than the proposal).
    pub speedup: f64,
    /// Expected error of `latency_ms`, % ([`crate::confidence`]).
    pub expected_error_pct: f64,
    /// The speedup lies inside the two predictions' combined uncertainty
    /// (always false without a proposal).
    pub within_noise: bool,
    /// Outside the measured ranges.
    pub extrapolated: bool,
}

/// The answer to "wide or deep?".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// What the candidates are ranked by.
    pub objective: Objective,
    /// Budget searched.
    pub constraints: Constraints,
    /// Latency of the proposed shape on its fastest backend, ms (if a shape was proposed).
    pub proposed_ms: Option<f64>,
    /// Expected error of `proposed_ms`, %.
    pub proposed_error_pct: Option<f64>,
    /// Every candidate, fastest first.
    pub candidates: Vec<Candidate>,
    /// Candidates on the params-vs-latency Pareto frontier, fewest params first.
    pub pareto: Vec<Candidate>,
    /// The fastest candidate.
    pub fastest: Option<Candidate>,
    /// Fastest candidate shallower than the proposal (or than the median depth).
    pub best_shallow_wide: Option<Candidate>,
    /// Fastest candidate deeper than the proposal (or than the median depth).
    pub best_deep_narrow: Option<Candidate>,
}

fn widths_for(c: &Constraints, layers: u64) -> Vec<u64> {
    // 12·L·d² ≈ budget, solved for d, then snapped to multiples of the head size.
    let ideal = (c.budget_non_embedding as f64 / (12.0 * layers as f64)).sqrt();
    let step = if ideal < c.head_size as f64 * 2.0 {
        16
    } else {
        c.head_size
    } as f64;
    let lo = ((ideal / step).floor() * step).max(step) as u64;
    let mut v = vec![lo, lo + step as u64];
    v.dedup();
    v
}

/// Valid shapes within the budget's tolerance, by depth; at each depth the
/// width closest to the budget comes first. Sequence, batch and vocabulary
/// are those of `base`.
pub fn iso_parameter_shapes(base: &Shape, c: &Constraints) -> Vec<Shape> {
    let budget = c.budget_non_embedding as f64;
    let mut shapes = vec![];
    for layers in c.min_layers.max(1)..=c.max_layers.max(c.min_layers.max(1)) {
        let mut at_depth: Vec<(f64, Shape)> = vec![];
        for d in widths_for(c, layers) {
            let heads = if d >= c.head_size && d % c.head_size == 0 {
                d / c.head_size
            } else {
                1
            };
            let Ok(shape) = base.with_depth_width(layers, d, heads) else {
                continue;
            };
            let off = (shape.accounting().params.non_embedding as f64 / budget - 1.0).abs();
            if off <= c.tolerance {
                at_depth.push((off, shape));
            }
        }
        at_depth.sort_by(|a, b| a.0.total_cmp(&b.0));
        shapes.extend(at_depth.into_iter().map(|(_, s)| s));
    }
    shapes
}

/// Enumerates shapes at the budget, predicts them on every backend by
/// `objective`, and picks the fastest, the Pareto frontier and the best
/// shallow/deep options. Backends without the objective's model are skipped.
pub fn recommend(
    profile: &Profile,
    base: &Shape,
    proposed: Option<&Shape>,
    c: &Constraints,
    objective: Objective,
) -> Recommendation {
    // Only the latency is needed to rank: the model alone, not a full
    // prediction with breakdown and interval (this runs for every candidate).
    let best_on = |s: &Shape| -> Option<(&BackendProfile, f64)> {
        profile
            .backends
            .iter()
            .filter_map(|b| Some((b, objective.latency_ms(b, s)?)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    };
    let error_of = |b: &BackendProfile, s: &Shape| objective.expected_error_pct(b, s).unwrap_or(f64::NAN);
    let proposed_best = proposed.and_then(|p| best_on(p).map(|(b, ms)| (ms, error_of(b, p))));
    let proposed_ms = proposed_best.map(|(ms, _)| ms);
    let proposed_error_pct = proposed_best.map(|(_, e)| e);
    let mut candidates = vec![];
    for shape in iso_parameter_shapes(base, c) {
        let a = shape.accounting();
        let Some((b, latency_ms)) = best_on(&shape) else {
            continue;
        };
        let expected_error_pct = error_of(b, &shape);
        let speedup = proposed_ms.map_or(1.0, |m| m / latency_ms);
        candidates.push(Candidate {
            layers: shape.layers(),
            d_model: shape.d_model(),
            heads: shape.heads(),
            params_non_embedding: a.params.non_embedding,
            params_total: a.params.total,
            backend: b.backend.clone(),
            latency_ms,
            speedup,
            expected_error_pct,
            within_noise: proposed_error_pct
                .is_some_and(|e| crate::confidence::within_noise(speedup, e, expected_error_pct)),
            extrapolated: !b.validity.outside(&shape).is_empty(),
        });
    }
    candidates.sort_by(|a, b| a.latency_ms.total_cmp(&b.latency_ms));
    let mut by_params = candidates.clone();
    by_params.sort_by_key(|c| c.params_non_embedding);
    let mut pareto: Vec<Candidate> = vec![];
    // A shape is dominated if another has no more params and no more latency.
    for cand in &by_params {
        let dominated = by_params.iter().any(|o| {
            o.params_non_embedding <= cand.params_non_embedding
                && o.latency_ms <= cand.latency_ms
                && (o.params_non_embedding < cand.params_non_embedding || o.latency_ms < cand.latency_ms)
        });
        if !dominated {
            pareto.push(cand.clone());
        }
    }
    let pivot = proposed.map(|p| p.layers()).unwrap_or_else(|| {
        let mut depths: Vec<u64> = candidates.iter().map(|c| c.layers).collect();
        depths.sort();
        depths.get(depths.len() / 2).copied().unwrap_or(1)
    });
    let best_shallow_wide = candidates.iter().find(|c| c.layers < pivot).cloned();
    let best_deep_narrow = candidates.iter().find(|c| c.layers > pivot).cloned();
    Recommendation {
        objective,
        constraints: c.clone(),
        proposed_ms,
        proposed_error_pct,
        fastest: candidates.first().cloned(),
        candidates,
        pareto,
        best_shallow_wide,
        best_deep_narrow,
    }
}
