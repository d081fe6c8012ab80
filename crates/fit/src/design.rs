//! Which shapes to measure when time is short: a sequential experimental
//! design for onboarding a machine.
//!
//! Each candidate shape is a row of the physics terms ([`Term::DESIGN`]) divided
//! by its guessed latency, because the fit minimises relative error. Two
//! greedy criteria are offered, both per second of measuring:
//!
//! - [`Criterion::DOptimal`]: the growth of log det of the information matrix,
//!   `log(1 + xᵀ M⁻¹ x)` (matrix determinant lemma). It pins down the
//!   coefficients, and favours cheap shapes, which are all alike in size.
//! - [`Criterion::IOptimal`] (the default): the drop in the summed prediction
//!   variance over the whole pool, `Σₜ (tᵀ M⁻¹ x)² / (1 + xᵀ M⁻¹ x)`
//!   (Sherman–Morrison). It asks for the shapes that make predictions good
//!   where users will predict, large models included, and pays for them.

use planner::features::{Term, term_value};
use planner::{Shape, ShapeSpec};

use crate::lstsq::nnls;

/// A shape the onboarding run may measure.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Family tag recorded with the measurement.
    pub family: crate::Family,
    /// The shape.
    pub shape: Shape,
}

/// Largest model the candidate pool holds (total parameters).
pub const POOL_MAX_PARAMS: u64 = 170_000_000;
/// Largest forward pass the candidate pool holds (FLOPs).
pub const POOL_MAX_FLOPS: u64 = 60_000_000_000;

/// The grid of shapes onboarding chooses from: depth × width × sequence ×
/// batch × vocabulary, within [`POOL_MAX_PARAMS`] and [`POOL_MAX_FLOPS`].
/// Families are named after the width, so "latency vs depth at fixed width"
/// can be read from the data.
pub fn candidate_pool() -> Vec<Candidate> {
    let mut pool = vec![];
    for d_model in [64u64, 128, 256, 384, 512, 768, 1024] {
        for layers in [1u64, 2, 4, 6, 8, 12, 16, 24] {
            for seq in [32u64, 128, 512] {
                for batch in [1u64, 4] {
                    for vocab in [256u64, 50_257] {
                        let spec = ShapeSpec {
                            heads: Some((d_model / 64).max(1)),
                            seq: Some(seq),
                            batch: Some(batch),
                            vocab: Some(vocab),
                            ..ShapeSpec::new(layers, d_model)
                        };
                        // Each shape GPT-2-style, and where its heads split into
                        // groups of four a Llama-style twin (GQA 4, gated MLP,
                        // RMSNorm, RoPE, no biases), so an onboarding covers
                        // today's architectures too.
                        let heads = (d_model / 64).max(1);
                        let llama = (heads % 4 == 0).then_some(ShapeSpec {
                            kv_heads: Some(heads / 4),
                            mlp: Some(planner::Mlp::Gated),
                            norm: Some(planner::Norm::RmsNorm),
                            position_encoding: Some(planner::PositionEncoding::Rope),
                            qkv_bias: Some(false),
                            dense_bias: Some(false),
                            ..spec
                        });
                        for (spec, tag) in std::iter::once((spec, "")).chain(llama.map(|l| (l, "-llama"))) {
                            let Ok(shape) = spec.validate() else { continue };
                            let a = shape.accounting();
                            if a.params.total <= POOL_MAX_PARAMS && a.flops.total <= POOL_MAX_FLOPS {
                                pool.push(Candidate {
                                    family: crate::Family::Other(format!("onboard-d{d_model}{tag}")),
                                    shape,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    pool
}

/// A rough latency guess used to weight rows and price measurements:
/// `fixed + per_gflop·GFLOP + per_layer·L`, ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guess {
    /// ms per forward regardless of size.
    pub fixed_ms: f64,
    /// ms per GFLOP.
    pub ms_per_gflop: f64,
    /// ms per layer.
    pub ms_per_layer: f64,
}

impl Guess {
    /// Before any measurement: 50 GFLOP/s and small fixed costs, a modest CPU.
    pub const PRIOR: Guess = Guess {
        fixed_ms: 0.2,
        ms_per_gflop: 20.0,
        ms_per_layer: 0.05,
    };

    /// Guessed latency of a shape, ms.
    pub fn latency_ms(&self, shape: &Shape) -> f64 {
        let gflop = shape.accounting().flops.total as f64 / 1e9;
        self.fixed_ms + self.ms_per_gflop * gflop + self.ms_per_layer * shape.layers() as f64
    }

    /// Refits the guess to measured `(shape, ms)` pairs by non-negative least
    /// squares on relative error; with fewer than 4 points, or a degenerate
    /// fit, the prior is rescaled by the median measured/guessed ratio instead.
    pub fn from_measured(measured: &[(Shape, f64)]) -> Guess {
        if measured.is_empty() {
            return Self::PRIOR;
        }
        if measured.len() >= 4 {
            let w: Vec<f64> = measured.iter().map(|(_, ms)| 1.0 / ms).collect();
            let columns = vec![
                w.clone(),
                measured
                    .iter()
                    .zip(&w)
                    .map(|((s, _), w)| w * s.accounting().flops.total as f64 / 1e9)
                    .collect(),
                measured
                    .iter()
                    .zip(&w)
                    .map(|((s, _), w)| w * s.layers() as f64)
                    .collect(),
            ];
            let y = vec![1.0; measured.len()];
            let x = nnls(&columns, &y);
            if x.len() == 3 && x[1] > 0.0 && x.iter().all(|v| v.is_finite()) {
                return Guess {
                    fixed_ms: x[0],
                    ms_per_gflop: x[1],
                    ms_per_layer: x[2],
                };
            }
        }
        let mut ratios: Vec<f64> = measured
            .iter()
            .map(|(s, ms)| ms / Self::PRIOR.latency_ms(s))
            .collect();
        ratios.sort_by(f64::total_cmp);
        let r = crate::stats::median_sorted(&ratios);
        Guess {
            fixed_ms: Self::PRIOR.fixed_ms * r,
            ms_per_gflop: Self::PRIOR.ms_per_gflop * r,
            ms_per_layer: Self::PRIOR.ms_per_layer * r,
        }
    }
}

/// Ridge added to the information matrix so the first choices are defined.
const RIDGE: f64 = 1e-3;

/// Design rows: every physics term of each shape divided by its guessed
/// latency, each column scaled to a maximum of 1 over the pool.
pub fn design_rows(shapes: &[&Shape], guess: &Guess) -> Vec<Vec<f64>> {
    let mut rows: Vec<Vec<f64>> = shapes
        .iter()
        .map(|s| {
            let t = guess.latency_ms(s).max(1e-6);
            Term::DESIGN.iter().map(|&term| term_value(term, s) / t).collect()
        })
        .collect();
    for j in 0..Term::DESIGN.len() {
        let max = rows.iter().map(|r| r[j].abs()).fold(0.0, f64::max);
        if max > 0.0 {
            rows.iter_mut().for_each(|r| r[j] /= max);
        }
    }
    rows
}

/// Cholesky factor (lower) of a symmetric positive definite matrix.
fn cholesky(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = m[i][j] - (0..j).map(|k| l[i][k] * l[j][k]).sum::<f64>();
            if i == j {
                if s <= 0.0 {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    Some(l)
}

/// `xᵀ M⁻¹ x` given the Cholesky factor of M: ‖L⁻¹x‖².
fn mahalanobis(l: &[Vec<f64>], x: &[f64]) -> f64 {
    let n = x.len();
    let mut z = vec![0.0; n];
    for i in 0..n {
        z[i] = (x[i] - (0..i).map(|k| l[i][k] * z[k]).sum::<f64>()) / l[i][i];
    }
    z.iter().map(|v| v * v).sum()
}

/// The information matrix of the chosen rows, plus the ridge.
pub fn information(rows: &[Vec<f64>], chosen: &[bool]) -> Vec<Vec<f64>> {
    let p = rows.first().map_or(0, Vec::len);
    let mut m = vec![vec![0.0; p]; p];
    for (i, row) in m.iter_mut().enumerate() {
        row[i] = RIDGE;
    }
    for (r, _) in rows.iter().zip(chosen).filter(|(_, c)| **c) {
        for i in 0..p {
            for j in 0..p {
                m[i][j] += r[i] * r[j];
            }
        }
    }
    m
}

/// Information gained by adding `row`: log(1 + xᵀ M⁻¹ x).
pub fn information_gain(info: &[Vec<f64>], row: &[f64]) -> f64 {
    cholesky(info).map_or(0.0, |l| (1.0 + mahalanobis(&l, row)).ln())
}

/// What a measurement is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Criterion {
    /// Coefficient precision: log det growth.
    DOptimal,
    /// Prediction precision over the pool: summed variance drop.
    #[default]
    IOptimal,
}

/// Solves `L Lᵀ u = x` given the Cholesky factor.
fn solve(l: &[Vec<f64>], x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let mut z = vec![0.0; n];
    for i in 0..n {
        z[i] = (x[i] - (0..i).map(|k| l[i][k] * z[k]).sum::<f64>()) / l[i][i];
    }
    let mut u = vec![0.0; n];
    for i in (0..n).rev() {
        u[i] = (z[i] - (i + 1..n).map(|k| l[k][i] * u[k]).sum::<f64>()) / l[i][i];
    }
    u
}

/// The next row to measure: the best gain per second under `criterion` among
/// rows not yet chosen whose cost fits in `remaining_s`; `None` when none fits.
pub fn choose_next(
    criterion: Criterion,
    rows: &[Vec<f64>],
    costs_s: &[f64],
    chosen: &[bool],
    remaining_s: f64,
) -> Option<usize> {
    let info = information(rows, chosen);
    let l = cholesky(&info)?;
    let p = info.len();
    // Σ t tᵀ over the pool: the prediction targets.
    let mut targets = vec![vec![0.0; p]; p];
    if criterion == Criterion::IOptimal {
        for r in rows {
            for i in 0..p {
                for j in 0..p {
                    targets[i][j] += r[i] * r[j];
                }
            }
        }
    }
    let gain = |x: &[f64]| match criterion {
        Criterion::DOptimal => (1.0 + mahalanobis(&l, x)).ln(),
        Criterion::IOptimal => {
            let u = solve(&l, x);
            let xu: f64 = x.iter().zip(&u).map(|(a, b)| a * b).sum();
            let utu: f64 = (0..p)
                .map(|i| u[i] * (0..p).map(|j| targets[i][j] * u[j]).sum::<f64>())
                .sum();
            utu / (1.0 + xu)
        }
    };
    rows.iter()
        .enumerate()
        .filter(|&(i, _)| !chosen[i] && costs_s[i] > 0.0 && costs_s[i] <= remaining_s)
        .map(|(i, r)| (i, gain(r) / costs_s[i]))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(l: u64, d: u64) -> Shape {
        ShapeSpec::new(l, d).validate().unwrap()
    }

    #[test]
    fn pool_is_large_bounded_and_valid() {
        let pool = candidate_pool();
        assert!(pool.len() > 200, "{}", pool.len());
        for c in &pool {
            let a = c.shape.accounting();
            assert!(a.params.total <= POOL_MAX_PARAMS && a.flops.total <= POOL_MAX_FLOPS);
        }
    }

    #[test]
    fn guess_recovers_a_known_cost_law() {
        let truth = Guess {
            fixed_ms: 0.5,
            ms_per_gflop: 7.0,
            ms_per_layer: 0.3,
        };
        let measured: Vec<(Shape, f64)> = [(1, 64), (2, 128), (4, 256), (8, 256), (2, 512), (12, 768)]
            .iter()
            .map(|&(l, d)| {
                let s = shape(l, d);
                let t = truth.latency_ms(&s);
                (s, t)
            })
            .collect();
        let g = Guess::from_measured(&measured);
        assert!((g.ms_per_gflop - 7.0).abs() < 1e-6, "{g:?}");
        assert!((g.ms_per_layer - 0.3).abs() < 1e-6, "{g:?}");
        assert!((g.fixed_ms - 0.5).abs() < 1e-6, "{g:?}");
    }

    #[test]
    fn few_points_rescale_the_prior() {
        let s = shape(4, 256);
        let g = Guess::from_measured(&[(s, 3.0 * Guess::PRIOR.latency_ms(&s))]);
        assert!((g.latency_ms(&s) / Guess::PRIOR.latency_ms(&s) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn gain_matches_the_determinant_lemma() {
        // M = diag(2, 3), x = (1, 1): log(1 + 1/2 + 1/3).
        let m = vec![vec![2.0, 0.0], vec![0.0, 3.0]];
        let g = information_gain(&m, &[1.0, 1.0]);
        assert!((g - (1.0f64 + 0.5 + 1.0 / 3.0).ln()).abs() < 1e-12);
    }

    #[test]
    fn prefers_cheap_rows_and_then_new_directions() {
        let rows = vec![
            vec![1.0, 0.0],
            vec![1.0, 0.01], // nearly the same direction as row 0
            vec![0.0, 1.0],
            vec![0.7, 0.7],
        ];
        let costs = [1.0, 1.0, 1.0, 50.0];
        let mut chosen = vec![false; 4];
        let first = choose_next(Criterion::DOptimal, &rows, &costs, &chosen, 100.0).unwrap();
        chosen[first] = true;
        let second = choose_next(Criterion::DOptimal, &rows, &costs, &chosen, 100.0).unwrap();
        assert!(
            [first, second].contains(&2),
            "the orthogonal row is chosen before the duplicate: {first}, {second}"
        );
        assert_ne!(second, 3, "the expensive row waits");
    }

    #[test]
    fn nothing_is_chosen_beyond_the_budget() {
        let rows = vec![vec![1.0], vec![0.5]];
        for c in [Criterion::DOptimal, Criterion::IOptimal] {
            assert_eq!(choose_next(c, &rows, &[10.0, 20.0], &[false, false], 5.0), None);
            assert_eq!(choose_next(c, &rows, &[10.0, 2.0], &[false, false], 5.0), Some(1));
        }
    }

    #[test]
    fn solve_inverts_the_factored_matrix() {
        let m = vec![vec![4.0, 2.0], vec![2.0, 3.0]];
        let u = solve(&cholesky(&m).unwrap(), &[2.0, 5.0]);
        assert!((4.0 * u[0] + 2.0 * u[1] - 2.0).abs() < 1e-12);
        assert!((2.0 * u[0] + 3.0 * u[1] - 5.0).abs() < 1e-12);
    }

    #[test]
    fn i_optimal_pays_for_the_direction_most_targets_need() {
        // Nine targets lie along the second axis; after one measurement of each
        // axis, another along the second axis helps predictions more, even at
        // twice the cost, while D-optimality is indifferent and takes the cheap one.
        let mut rows = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0, 0.0], vec![0.0, 1.0]];
        rows.extend(std::iter::repeat_n(vec![0.0, 0.9], 9));
        let mut costs = vec![1.0, 1.0, 1.0, 2.0];
        costs.extend(std::iter::repeat_n(1e9, 9));
        let mut chosen = vec![false; rows.len()];
        chosen[0] = true;
        chosen[1] = true;
        assert_eq!(
            choose_next(Criterion::IOptimal, &rows, &costs, &chosen, 10.0),
            Some(3)
        );
        assert_eq!(
            choose_next(Criterion::DOptimal, &rows, &costs, &chosen, 10.0),
            Some(2)
        );
    }

    #[test]
    fn rows_are_scaled_to_unit_maximum() {
        let shapes = [shape(1, 64), shape(12, 768)];
        let refs: Vec<&Shape> = shapes.iter().collect();
        let rows = design_rows(&refs, &Guess::PRIOR);
        for j in 0..Term::DESIGN.len() {
            let max = rows.iter().map(|r| r[j]).fold(0.0, f64::max);
            assert!((max - 1.0).abs() < 1e-12 || max == 0.0);
        }
    }
}
