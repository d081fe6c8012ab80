//! Which backend is fastest as a model grows, and where that changes.
//!
//! A shape is scaled along its own depth:width ratio (head size, sequence,
//! batch and vocabulary kept), from 1/16× to 16× its width; every backend of
//! the profile is predicted at each step. A crossover is where the fastest
//! backend changes between two neighbouring steps.

use serde::{Deserialize, Serialize};

use crate::objective::Objective;
use crate::profile::Profile;
use crate::shape::Shape;

/// Steps per doubling of width along the path.
const STEPS_PER_DOUBLING: i32 = 8;
/// The path spans 2^-4 .. 2^4 times the width.
const DOUBLINGS: i32 = 4;

/// One shape along the scaling path with every backend's prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathPoint {
    /// Depth.
    pub layers: u64,
    /// Width.
    pub d_model: u64,
    /// Heads.
    pub heads: u64,
    /// Total parameters.
    pub params_total: u64,
    /// Predicted latency per backend by the objective, ms, in the profile's
    /// backend order (infinite where a backend lacks the objective's model).
    pub latency_ms: Vec<f64>,
}

/// Where the fastest backend changes along the path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crossover {
    /// Fastest just below.
    pub faster_below: String,
    /// Fastest from here on.
    pub faster_above: String,
    /// Total parameters where it changes (geometric mean of the two neighbouring steps).
    pub params_total: u64,
    /// The first shape where `faster_above` wins: depth.
    pub layers: u64,
    /// ... and width.
    pub d_model: u64,
}

/// The backends along a scaling path and the crossovers between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendScaling {
    /// Backend names, in the order of `PathPoint::latency_ms`.
    pub backends: Vec<String>,
    /// The path, smallest first.
    pub path: Vec<PathPoint>,
    /// Changes of the fastest backend along the path, smallest first.
    pub crossovers: Vec<Crossover>,
}

/// Scales `shape` along its depth:width ratio; `None` for steps that are not valid shapes.
fn scaled(shape: &Shape, factor: f64) -> Option<Shape> {
    let head = shape.head_dim();
    let heads = ((shape.heads() as f64 * factor).round() as u64).max(1);
    let layers = ((shape.layers() as f64 * factor).round() as u64).max(1);
    shape.with_depth_width(layers, heads * head, heads).ok()
}

fn fastest(latencies: &[f64]) -> usize {
    latencies
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// Predicts every backend along the scaling path of `shape` by `objective`.
pub fn backend_scaling(profile: &Profile, shape: &Shape, objective: Objective) -> BackendScaling {
    let backends: Vec<String> = profile.backends.iter().map(|b| b.backend.clone()).collect();
    let mut path: Vec<PathPoint> = vec![];
    for step in -DOUBLINGS * STEPS_PER_DOUBLING..=DOUBLINGS * STEPS_PER_DOUBLING {
        let factor = 2f64.powf(step as f64 / STEPS_PER_DOUBLING as f64);
        let Some(s) = scaled(shape, factor) else { continue };
        let params_total = s.accounting().params.total;
        if path.last().is_some_and(|p| p.params_total >= params_total) {
            continue; // rounding repeated a shape
        }
        path.push(PathPoint {
            layers: s.layers(),
            d_model: s.d_model(),
            heads: s.heads(),
            params_total,
            latency_ms: profile
                .backends
                .iter()
                .map(|b| objective.latency_ms(b, &s).unwrap_or(f64::INFINITY))
                .collect(),
        });
    }
    let mut crossovers = vec![];
    for pair in path.windows(2) {
        let (a, b) = (fastest(&pair[0].latency_ms), fastest(&pair[1].latency_ms));
        if a != b {
            crossovers.push(Crossover {
                faster_below: backends[a].clone(),
                faster_above: backends[b].clone(),
                params_total: ((pair[0].params_total as f64 * pair[1].params_total as f64).sqrt()) as u64,
                layers: pair[1].layers,
                d_model: pair[1].d_model,
            });
        }
    }
    BackendScaling {
        backends,
        path,
        crossovers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::ShapeSpec;

    fn two_backend_profile() -> Profile {
        // Backend "a": 0.5 ms fixed + 0.02 ms/GFLOP... built from the embedded
        // profile so the schema stays real: a constant-heavy and a FLOP-heavy copy.
        let mut p = crate::default_profile();
        let mut fast_small = p.backends[0].clone();
        let mut fast_big = p.backends[0].clone();
        use crate::features::Term;
        use crate::model::{LatencyModel, TermCoefficient};
        let physics = |constant: f64, per_gflop: f64| LatencyModel::Physics {
            terms: vec![
                TermCoefficient {
                    term: Term::Constant,
                    value: constant,
                    std_error: None,
                },
                TermCoefficient {
                    term: Term::MatmulGflop,
                    value: per_gflop,
                    std_error: None,
                },
            ],
            parallelism: None,
        };
        fast_small.backend = "small".into();
        fast_small.model = physics(0.1, 20.0);
        fast_big.backend = "big".into();
        fast_big.model = physics(5.0, 2.0);
        p.backends = vec![fast_small, fast_big];
        p
    }

    #[test]
    fn finds_the_crossover_of_a_fixed_cost_and_a_fast_backend() {
        let p = two_backend_profile();
        let s = ShapeSpec::new(6, 384).validate().unwrap();
        let scaling = backend_scaling(&p, &s, Objective::Prefill);
        assert_eq!(scaling.crossovers.len(), 1, "{:?}", scaling.crossovers);
        let c = &scaling.crossovers[0];
        assert_eq!(
            (c.faster_below.as_str(), c.faster_above.as_str()),
            ("small", "big")
        );
        // 0.1 + 20 g = 5 + 2 g  ⇒  g ≈ 0.272 GFLOP of matmuls at the crossover.
        let at = ShapeSpec::new(c.layers, c.d_model).validate().unwrap();
        let g = crate::features::term_value(crate::features::Term::MatmulGflop, &at);
        assert!(g > 0.272 && g < 0.272 * 1.6, "{g}");
    }

    #[test]
    fn path_grows_monotonically_in_params() {
        let p = crate::default_profile();
        let s = ShapeSpec::new(12, 768).validate().unwrap();
        let scaling = backend_scaling(&p, &s, Objective::Prefill);
        assert!(scaling.path.len() > 40);
        assert!(
            scaling
                .path
                .windows(2)
                .all(|w| w[0].params_total < w[1].params_total)
        );
        assert!(
            scaling
                .path
                .iter()
                .all(|pt| pt.latency_ms.len() == p.backends.len())
        );
    }

    #[test]
    fn one_backend_has_no_crossover() {
        let mut p = crate::default_profile();
        p.backends.truncate(1);
        let s = ShapeSpec::new(4, 256).validate().unwrap();
        assert!(backend_scaling(&p, &s, Objective::Prefill).crossovers.is_empty());
    }
}
