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
    /// Also try other counts of key/value heads (query heads per key/value
    /// head 1, 2, 4, 8), each at the depths and widths that keep the budget.
    #[serde(default)]
    pub vary_kv_heads: bool,
    /// Also try other MLP widths (d_ff / d_model: GELU 2, 3, 4, 6; gated 2,
    /// 8/3, 3.5, 4), each at the depths and widths that keep the budget.
    #[serde(default)]
    pub vary_mlp_ratio: bool,
}

/// The MLP widths tried per d_model when the ratio varies (`None`: the default rule).
fn mlp_ratios(mlp: crate::Mlp) -> [Option<f64>; 4] {
    match mlp {
        crate::Mlp::Gelu => [Some(2.0), Some(3.0), None, Some(6.0)],
        crate::Mlp::Gated => [Some(2.0), None, Some(3.5), Some(4.0)],
    }
}

/// One architectural variant of the base searched at every depth.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Variant {
    /// Query heads per key/value head.
    group: u64,
    /// d_ff / d_model, or the base's (a ratio kept, or the default rule).
    mlp_ratio: Option<f64>,
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
            vary_kv_heads: false,
            vary_mlp_ratio: false,
        }
    }

    fn variants(&self, base: &Shape) -> Vec<Variant> {
        let groups: Vec<u64> = if self.vary_kv_heads {
            let mut g = vec![base.group_size(), 1, 2, 4, 8];
            g.sort();
            g.dedup();
            g
        } else {
            vec![base.group_size()]
        };
        let ratios: Vec<Option<f64>> = if self.vary_mlp_ratio {
            mlp_ratios(base.mlp()).to_vec()
        } else {
            vec![None]
        };
        groups
            .iter()
            .flat_map(|&group| ratios.iter().map(move |&mlp_ratio| Variant { group, mlp_ratio }))
            .collect()
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
    /// Key/value heads.
    #[serde(default)]
    pub kv_heads: u64,
    /// MLP width.
    #[serde(default)]
    pub d_ff: u64,
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
    /// (always false without a proposal): their shape errors where both run
    /// on one backend, whose session level moves them alike; their expected
    /// errors, session spread included, across backends.
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
    /// What each axis buys, when key/value heads or the MLP ratio vary too:
    /// depth and width alone, then each further axis on top.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub axes: Vec<AxisGain>,
}

/// The best candidate reachable by changing one more axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AxisGain {
    /// `depth and width`, `kv heads` or `mlp ratio`.
    pub axis: String,
    /// The fastest candidate that keeps every other axis at the base's.
    pub best: Candidate,
    /// Latency of the axis's reference (the proposal for depth and width;
    /// the best depth-and-width candidate for the others) / `best`'s.
    pub speedup: f64,
}

/// Widths whose non-embedding parameters at `layers` come near the budget
/// for blocks of `per_d2` parameters per d_model² (GPT-2: 12), snapped to
/// multiples of the head size.
fn widths_for(c: &Constraints, layers: u64, per_d2: f64) -> Vec<u64> {
    let ideal = (c.budget_non_embedding as f64 / (per_d2 * layers as f64)).sqrt();
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

/// The base changed to `variant` at depth `layers` and width `d`.
fn variant_shape(base: &Shape, variant: Variant, layers: u64, d: u64, head_size: u64) -> Option<Shape> {
    let heads = if d >= head_size && d.is_multiple_of(head_size) {
        d / head_size
    } else {
        1
    };
    if !heads.is_multiple_of(variant.group) && heads >= variant.group {
        return None;
    }
    let kv_heads = (heads / variant.group).max(1);
    let d_ff = variant
        .mlp_ratio
        .map(|r| ((r * d as f64 / 16.0).round() as u64 * 16).max(16));
    let same_ratio = variant.group == base.group_size() && variant.mlp_ratio.is_none();
    if same_ratio {
        return base.with_depth_width(layers, d, heads).ok();
    }
    let spec = crate::ShapeSpec {
        layers,
        d_model: d,
        heads: Some(heads),
        kv_heads: Some(kv_heads),
        head_dim: None,
        d_ff: d_ff.or(Some(crate::architecture::default_d_ff(base.mlp(), d))),
        ..crate::ShapeSpec::from(*base)
    };
    spec.validate().ok()
}

/// Block parameters per d_model² of `variant` (2 + 2/g attention matrices,
/// MLP matrices · ratio), what the widths at a depth are solved for.
fn params_per_d2(base: &Shape, variant: Variant) -> f64 {
    let ratio = variant
        .mlp_ratio
        .unwrap_or(base.d_ff() as f64 / base.d_model() as f64);
    2.0 + 2.0 / variant.group as f64 + base.mlp().matrices() as f64 * ratio
}

/// Valid shapes within the budget's tolerance, by depth; at each depth the
/// width closest to the budget comes first. Sequence, batch, vocabulary and
/// architecture are those of `base`; key/value heads and the MLP ratio vary
/// too where the constraints say.
pub fn iso_parameter_shapes(base: &Shape, c: &Constraints) -> Vec<Shape> {
    let budget = c.budget_non_embedding as f64;
    let variants = c.variants(base);
    let mut shapes = vec![];
    for layers in c.min_layers.max(1)..=c.max_layers.max(c.min_layers.max(1)) {
        let mut at_depth: Vec<(f64, Shape)> = vec![];
        for &variant in &variants {
            for d in widths_for(c, layers, params_per_d2(base, variant)) {
                let Some(shape) = variant_shape(base, variant, layers, d, c.head_size) else {
                    continue;
                };
                let off = (shape.accounting().params.non_embedding as f64 / budget - 1.0).abs();
                if off <= c.tolerance && !at_depth.iter().any(|(_, s)| *s == shape) {
                    at_depth.push((off, shape));
                }
            }
        }
        at_depth.sort_by(|a, b| a.0.total_cmp(&b.0));
        shapes.extend(at_depth.into_iter().map(|(_, s)| s));
    }
    shapes
}

/// What each axis buys: depth and width alone against the proposal (or the
/// median-depth candidate), then key/value heads and the MLP ratio each on
/// top of the best depth and width. Empty unless another axis varies.
fn axis_gains(
    base: &Shape,
    c: &Constraints,
    candidates: &[Candidate],
    proposed_ms: Option<f64>,
) -> Vec<AxisGain> {
    if !c.vary_kv_heads && !c.vary_mlp_ratio {
        return vec![];
    }
    let base_ratio = base.d_ff() as f64 / base.d_model() as f64;
    let same_group = |x: &Candidate| x.heads / x.kv_heads.max(1) == base.group_size().min(x.heads);
    let same_ratio = |x: &Candidate| {
        let r = x.d_ff as f64 / x.d_model as f64;
        (r - base_ratio).abs() < 0.02 * base_ratio
            || x.d_ff == crate::architecture::default_d_ff(base.mlp(), x.d_model)
                && base.d_ff() == crate::architecture::default_d_ff(base.mlp(), base.d_model())
    };
    // Candidates are sorted fastest first: the first match is the best.
    let Some(depth_width) = candidates.iter().find(|x| same_group(x) && same_ratio(x)) else {
        return vec![];
    };
    let mut gains = vec![AxisGain {
        axis: "depth and width".into(),
        best: depth_width.clone(),
        speedup: proposed_ms.unwrap_or(depth_width.latency_ms) / depth_width.latency_ms,
    }];
    let mut on_top = |axis: &str, keep: &dyn Fn(&Candidate) -> bool| {
        if let Some(best) = candidates.iter().find(|x| keep(x)) {
            gains.push(AxisGain {
                axis: axis.into(),
                best: best.clone(),
                speedup: depth_width.latency_ms / best.latency_ms,
            });
        }
    };
    if c.vary_kv_heads {
        on_top("kv heads", &|x| same_ratio(x));
    }
    if c.vary_mlp_ratio {
        on_top("mlp ratio", &|x| same_group(x));
    }
    gains
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
    let shape_error_of = |b: &BackendProfile, s: &Shape| objective.shape_error_pct(b, s).unwrap_or(f64::NAN);
    // The proposal on its fastest backend: that backend, its latency, its
    // expected error and its shape error.
    let proposed_best =
        proposed.and_then(|p| best_on(p).map(|(b, ms)| (b, ms, error_of(b, p), shape_error_of(b, p))));
    let proposed_ms = proposed_best.map(|(_, ms, _, _)| ms);
    let proposed_error_pct = proposed_best.map(|(_, _, e, _)| e);
    // Two shapes on one backend share the session's level: only their shape
    // errors separate them; on two backends the levels differ as well.
    let within_noise = |b: &BackendProfile, shape: &Shape, speedup: f64| {
        proposed_best.is_some_and(|(pb, _, error, shape_error)| {
            let (e_proposed, e_candidate) = if pb.backend == b.backend {
                (shape_error, shape_error_of(b, shape))
            } else {
                (error, error_of(b, shape))
            };
            crate::confidence::within_noise(speedup, e_proposed, e_candidate)
        })
    };
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
            kv_heads: shape.kv_heads(),
            d_ff: shape.d_ff(),
            params_non_embedding: a.params.non_embedding,
            params_total: a.params.total,
            backend: b.backend.clone(),
            latency_ms,
            speedup,
            expected_error_pct,
            within_noise: within_noise(b, &shape, speedup),
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
    let axes = axis_gains(base, c, &candidates, proposed_ms);
    Recommendation {
        axes,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::ShapeSpec;

    #[test]
    fn a_session_spread_widens_the_errors_but_not_what_is_noise_on_one_backend() {
        let mut profile = crate::default_profile();
        profile.backends.truncate(1);
        let proposed = ShapeSpec::new(16, 512).validate().unwrap();
        let c = Constraints::new(proposed.accounting().params.non_embedding);
        let run = |p: &Profile| recommend(p, &proposed, Some(&proposed), &c, Objective::Prefill).candidates;
        let before = run(&profile);
        assert!(
            before.iter().any(|c| !c.within_noise),
            "some candidate is a finding"
        );
        profile.backends[0].session_spread_pct = Some(50.0);
        let after = run(&profile);
        assert_eq!(before.len(), after.len());
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(
                b.within_noise, a.within_noise,
                "one session's level moves both shapes alike"
            );
            assert!(
                a.expected_error_pct > b.expected_error_pct,
                "the latency itself is less certain"
            );
        }
    }
}
