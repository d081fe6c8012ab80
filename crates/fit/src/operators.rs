//! The operator-level model's fit: cost laws from micro-benchmark medians,
//! the whole-model calibration from a few anchors, and the checks of both.
//!
//! 1. [`fit_laws`]: per operator class (attention: per causal flag), the base
//!    law `overhead + c_f·GFLOP + c_b·MB + c_d·dispatches` by non-negative least
//!    squares on relative error, then the width of the correction's smoothing
//!    chosen by leave-one-out error among a few candidates (none included:
//!    the base law alone wins where the points add nothing).
//! 2. [`additivity`]: how much of each measured whole-model latency the
//!    uncorrected operator sum explains (nn-Meter's check that kernel
//!    latencies add up).
//! 3. [`calibrate`]: `t = scale·Σ + cold_gap_share·gap + per_layer·L +
//!    per_layer_sequence·L·b + constant`, non-negative,
//!    on relative error, per backend and phase; [`cross_validate`] scores it
//!    on anchors left out.

use planner::compose::{Calibration, operator_sum};
use planner::costlaw::{BaseLaw, ClassLaw, LawError, LawPoint, OperatorLaws, StreamPoint, causal_of};
use planner::profile::Accuracy;
use planner::{Phase, Shape};
use serde::Serialize;

use crate::lstsq::nnls;
use crate::metrics::accuracy;
use crate::stats::{mean_abs_pct, median};

/// Candidate widths of the correction's Gaussian weights, ln units (`None`: no correction).
pub const SMOOTHING_CANDIDATES: [Option<f64>; 5] = [None, Some(0.25), Some(0.5), Some(1.0), Some(2.0)];

/// A fitted class law with its leave-one-out error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LawFit {
    /// The law.
    pub law: ClassLaw,
    /// Leave-one-out mean absolute % error over its points (the point left
    /// out of the correction; the base law is fitted once).
    pub loo_mape_pct: f64,
    /// The same for the base law alone.
    pub base_mape_pct: f64,
}

/// Fits the base law of one class on relative error.
fn fit_base(points: &[LawPoint]) -> BaseLaw {
    let rows: Vec<[f64; 4]> = points.iter().map(|p| BaseLaw::features(&p.op)).collect();
    // Each row divided by its measurement: least squares on relative error.
    let columns: Vec<Vec<f64>> = (0..4)
        .map(|j| rows.iter().zip(points).map(|(r, p)| r[j] / p.ms).collect())
        .collect();
    let ones = vec![1.0; points.len()];
    let c = nnls(&columns, &ones);
    BaseLaw {
        overhead_ms: c[0],
        ms_per_gflop: c[1],
        ms_per_mb: c[2],
        ms_per_dispatch: c[3],
    }
}

fn loo_mape(law: &ClassLaw) -> f64 {
    let errors: Vec<f64> = law
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| law.hot_ms_without(&p.op, Some(i)) / p.ms - 1.0)
        .collect();
    mean_abs_pct(&errors)
}

/// What the micro-benchmarks of one backend measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OperatorData {
    /// Operators with their operands hot.
    pub hot: Vec<LawPoint>,
    /// Operators with their weights (or cache) rotated through copies.
    pub cold: Vec<LawPoint>,
    /// Total bytes of those copies.
    pub cold_working_set_bytes: Option<u64>,
    /// The machine's bandwidth curve.
    pub streams: Vec<StreamPoint>,
    /// Cores busy while each hot operator ran, where recorded.
    pub cores: Vec<planner::parallelism::CoresReading>,
}

/// Fits one law per class, causal flag and hot/cold present in the data.
pub fn fit_laws(data: &OperatorData) -> (OperatorLaws, Vec<LawFit>) {
    let usable = |p: &&LawPoint| p.ms > 0.0 && p.ms.is_finite();
    let tagged: Vec<(&LawPoint, bool)> = data
        .hot
        .iter()
        .filter(usable)
        .map(|p| (p, false))
        .chain(data.cold.iter().filter(usable).map(|p| (p, true)))
        .collect();
    let mut groups: Vec<(planner::operators::OpClass, Option<bool>, bool)> = tagged
        .iter()
        .map(|(p, cold)| (p.op.class(), causal_of(&p.op), *cold))
        .collect();
    groups.sort();
    groups.dedup();
    let mut fits = vec![];
    for (class, causal, cold) in groups {
        let mine: Vec<LawPoint> = tagged
            .iter()
            .filter(|(p, c)| p.op.class() == class && causal_of(&p.op) == causal && *c == cold)
            .map(|(p, _)| (*p).clone())
            .collect();
        let base = fit_base(&mine);
        let candidates: Vec<(ClassLaw, f64)> = SMOOTHING_CANDIDATES
            .iter()
            .map(|&smoothing| {
                let law = ClassLaw {
                    class,
                    causal,
                    cold,
                    base,
                    smoothing,
                    points: mine.clone(),
                };
                let e = loo_mape(&law);
                (law, e)
            })
            .collect();
        let base_mape_pct = candidates[0].1;
        let (law, loo_mape_pct) = candidates
            .into_iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .expect("there are candidates");
        fits.push(LawFit {
            law,
            loo_mape_pct,
            base_mape_pct,
        });
    }
    let laws = OperatorLaws {
        laws: fits.iter().map(|f| f.law.clone()).collect(),
        streams: data.streams.clone(),
        cold_working_set_bytes: data.cold_working_set_bytes,
        parallelism: planner::parallelism::Parallelism::fit(&data.cores),
    };
    (laws, fits)
}

/// A whole-model measurement the composition is checked or calibrated on.
#[derive(Debug, Clone, PartialEq)]
pub struct Anchor {
    /// The shape.
    pub shape: Shape,
    /// Which step.
    pub phase: Phase,
    /// Its measured median, ms.
    pub measured_ms: f64,
}

/// The uncorrected operator sum against one measured shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AdditivityRow {
    /// The shape.
    pub shape: Shape,
    /// Which step.
    pub phase: Phase,
    /// Measured, ms.
    pub measured_ms: f64,
    /// Σ operators, ms.
    pub operator_sum_ms: f64,
    /// What the operators with cold laws would take more fully cold, ms.
    pub cold_gap_ms: f64,
}

impl AdditivityRow {
    /// Σ / measured.
    pub fn ratio(&self) -> f64 {
        self.operator_sum_ms / self.measured_ms
    }
}

/// The operator sum of every anchor.
pub fn additivity(laws: &OperatorLaws, anchors: &[Anchor]) -> Result<Vec<AdditivityRow>, LawError> {
    anchors
        .iter()
        .map(|a| {
            let sum = operator_sum(laws, &a.shape, a.phase)?;
            Ok(AdditivityRow {
                shape: a.shape,
                phase: a.phase,
                measured_ms: a.measured_ms,
                operator_sum_ms: sum.total_ms,
                cold_gap_ms: sum.cold_gap_ms,
            })
        })
        .collect()
}

/// Summary of an additivity check: the share within ±15% and ±10%, and the median ratio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AdditivitySummary {
    /// Shapes.
    pub n: usize,
    /// Fraction with Σ within ±15% of the measurement.
    pub within_15pct: f64,
    /// Fraction within ±10%.
    pub within_10pct: f64,
    /// Median Σ / measured.
    pub median_ratio: f64,
    /// Mean |Σ / measured − 1|, %.
    pub mape_pct: f64,
}

/// Summarises rows (of one phase, usually).
pub fn summarize_additivity(rows: &[AdditivityRow]) -> AdditivitySummary {
    let errors: Vec<f64> = rows.iter().map(|r| r.ratio() - 1.0).collect();
    let within = |limit: f64| {
        if rows.is_empty() {
            return 0.0;
        }
        errors.iter().filter(|e| e.abs() <= limit).count() as f64 / rows.len() as f64
    };
    AdditivitySummary {
        n: rows.len(),
        within_15pct: within(0.15),
        within_10pct: within(0.10),
        median_ratio: if rows.is_empty() {
            f64::NAN
        } else {
            median(&rows.iter().map(AdditivityRow::ratio).collect::<Vec<_>>())
        },
        mape_pct: mean_abs_pct(&errors),
    }
}

/// One shape's operator sum and measurement, for the calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationRow {
    /// Σ operators, ms.
    pub operator_sum_ms: f64,
    /// What the operators with cold laws would take more fully cold, ms.
    pub cold_gap_ms: f64,
    /// The shape.
    pub shape: Shape,
    /// Measured, ms.
    pub measured_ms: f64,
}

impl From<&AdditivityRow> for CalibrationRow {
    fn from(r: &AdditivityRow) -> Self {
        CalibrationRow {
            operator_sum_ms: r.operator_sum_ms,
            cold_gap_ms: r.cold_gap_ms,
            shape: r.shape,
            measured_ms: r.measured_ms,
        }
    }
}

/// Fits `t = scale·Σ + cold_gap_share·gap + per_layer·L + per_layer_sequence·L·b
/// + constant` (all ≥ 0) on relative error.
pub fn calibrate(rows: &[CalibrationRow]) -> Calibration {
    if rows.is_empty() {
        return Calibration::IDENTITY;
    }
    let column = |f: &dyn Fn(&CalibrationRow) -> f64| -> Vec<f64> {
        rows.iter().map(|r| f(r) / r.measured_ms).collect()
    };
    let layers = |r: &CalibrationRow| r.shape.layers() as f64;
    let columns = vec![
        column(&|r| r.operator_sum_ms),
        column(&layers),
        column(&|r| layers(r) * r.shape.batch() as f64),
        column(&|_| 1.0),
        column(&|r| r.cold_gap_ms),
    ];
    let c = nnls(&columns, &vec![1.0; rows.len()]);
    Calibration {
        scale: c[0],
        per_layer_ms: c[1],
        per_layer_sequence_ms: c[2],
        constant_ms: c[3],
        cold_gap_share: c[4],
    }
}

/// Calibration rows of the anchors (their operator sums).
pub fn calibration_rows(laws: &OperatorLaws, anchors: &[Anchor]) -> Result<Vec<CalibrationRow>, LawError> {
    Ok(additivity(laws, anchors)?
        .iter()
        .map(CalibrationRow::from)
        .collect())
}

/// Leave-one-out accuracy of the calibration over the anchors: each is
/// predicted by the calibration fitted on the others.
pub fn cross_validate(rows: &[CalibrationRow]) -> Accuracy {
    let predicted: Vec<f64> = (0..rows.len())
        .map(|i| {
            let others: Vec<CalibrationRow> = rows
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, r)| *r)
                .collect();
            calibrate(&others).apply(rows[i].operator_sum_ms, rows[i].cold_gap_ms, &rows[i].shape)
        })
        .collect();
    let measured: Vec<f64> = rows.iter().map(|r| r.measured_ms).collect();
    accuracy("leave-one-out", &predicted, &measured)
}

/// Accuracy of a calibration on rows it was not fitted on.
pub fn evaluate(calibration: &Calibration, rows: &[CalibrationRow], method: &str) -> Accuracy {
    let predicted: Vec<f64> = rows
        .iter()
        .map(|r| calibration.apply(r.operator_sum_ms, r.cold_gap_ms, &r.shape))
        .collect();
    let measured: Vec<f64> = rows.iter().map(|r| r.measured_ms).collect();
    accuracy(method, &predicted, &measured)
}

/// A shape as a point of the space [`cover`] and [`medoid`] measure distance in:
/// (ln L, ln d, ln h, ln n, ln b, ln V).
fn log_point(s: &Shape) -> [f64; 6] {
    [s.layers(), s.d_model(), s.heads(), s.seq(), s.batch(), s.vocab()].map(|x| (x as f64).ln())
}

fn squared_distance(a: &[f64; 6], b: &[f64; 6]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

/// Indices of `n` shapes that cover `shapes`: the `seeds` first, then again
/// and again the shape farthest (in ln L, ln d, ln h, ln n, ln b, ln V) from
/// every one chosen so far. Deterministic (ties: the first).
pub fn cover(shapes: &[Shape], seeds: &[usize], n: usize) -> Vec<usize> {
    let points: Vec<[f64; 6]> = shapes.iter().map(log_point).collect();
    let mut picked: Vec<usize> = vec![];
    for &s in seeds {
        if s < shapes.len() && !picked.contains(&s) && picked.len() < n {
            picked.push(s);
        }
    }
    while picked.len() < n.min(shapes.len()) {
        let gap = |i: usize| {
            picked
                .iter()
                .map(|&p| squared_distance(&points[i], &points[p]))
                .fold(f64::INFINITY, f64::min)
        };
        let next =
            (0..shapes.len())
                .filter(|i| !picked.contains(i))
                .fold(None, |best: Option<(usize, f64)>, i| {
                    let g = gap(i);
                    match best {
                        Some((_, bg)) if bg >= g => best,
                        _ => Some((i, g)),
                    }
                });
        match next {
            Some((i, _)) => picked.push(i),
            None => break,
        }
    }
    picked
}

/// The most typical of the shapes `among` (indices into `shapes`): the one
/// with the least summed squared distance to the others, in [`cover`]'s
/// space. Farthest-point cover picks a set's corners; the medoid is its
/// middle. `None` when `among` is empty; ties: the first.
pub fn medoid(shapes: &[Shape], among: &[usize]) -> Option<usize> {
    let points: Vec<[f64; 6]> = among.iter().map(|&i| log_point(&shapes[i])).collect();
    let spread = |p: &[f64; 6]| points.iter().map(|q| squared_distance(p, q)).sum::<f64>();
    // `min_by` returns the first of equal minima.
    among
        .iter()
        .zip(&points)
        .map(|(&i, p)| (i, spread(p)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use planner::ShapeSpec;
    use planner::operators::{OpClass, OpKind, graph};

    /// Points of a synthetic backend with known parameters: overhead 2 µs,
    /// 50 GFLOP/s, 20 GB/s, 1 µs per dispatch.
    fn synthetic_points() -> Vec<LawPoint> {
        let truth = BaseLaw {
            overhead_ms: 0.002,
            ms_per_gflop: 20.0,
            ms_per_mb: 0.05,
            ms_per_dispatch: 0.001,
        };
        let mut points = vec![];
        for batch in [1, 2, 4, 8] {
            for rows in [1, 32, 128] {
                for d in [64, 128, 256, 512, 1024] {
                    for (k, n) in [(d, 3 * d), (d, d), (d, 4 * d), (4 * d, d)] {
                        let op = OpKind::Linear {
                            batch,
                            rows,
                            k,
                            n,
                            bias: true,
                        };
                        points.push(LawPoint {
                            op,
                            ms: truth.ms(&op),
                        });
                    }
                }
            }
        }
        points
    }

    #[test]
    fn the_base_law_recovers_known_parameters() {
        let (laws, fits) = fit_laws(&OperatorData {
            hot: synthetic_points(),
            ..OperatorData::default()
        });
        assert_eq!(fits.len(), 1);
        let b = laws.laws[0].base;
        assert!((b.overhead_ms / 0.002 - 1.0).abs() < 1e-6, "{b:?}");
        assert!((b.ms_per_gflop / 20.0 - 1.0).abs() < 1e-6, "{b:?}");
        assert!((b.ms_per_mb / 0.05 - 1.0).abs() < 1e-6, "{b:?}");
        assert!((b.ms_per_dispatch / 0.001 - 1.0).abs() < 1e-6, "{b:?}");
        assert!(fits[0].base_mape_pct < 1e-6);
    }

    #[test]
    fn a_regime_change_the_base_law_cannot_express_is_read_from_the_points() {
        // Products of fewer than 64 rows in all run at a third of the speed:
        // a kink no term names. The correction must find it held out.
        let points: Vec<LawPoint> = synthetic_points()
            .into_iter()
            .map(|p| {
                let slow = matches!(p.op, OpKind::Linear { batch, rows, .. } if batch * rows < 64);
                LawPoint {
                    ms: if slow { 3.0 * p.ms } else { p.ms },
                    ..p
                }
            })
            .collect();
        let (_, fits) = fit_laws(&OperatorData {
            hot: points,
            ..OperatorData::default()
        });
        let f = &fits[0];
        assert!(f.law.smoothing.is_some(), "{:?}", f.law.smoothing);
        assert!(
            f.loo_mape_pct < 0.5 * f.base_mape_pct,
            "held out {} vs base {}",
            f.loo_mape_pct,
            f.base_mape_pct
        );
    }

    fn laws_for_every_class() -> OperatorLaws {
        OperatorLaws::uniform(BaseLaw {
            overhead_ms: 0.001,
            ms_per_gflop: 10.0,
            ms_per_mb: 0.01,
            ms_per_dispatch: 0.0,
        })
    }

    fn anchors(truth: impl Fn(f64, &Shape) -> f64) -> Vec<Anchor> {
        let laws = laws_for_every_class();
        let mut out = vec![];
        for (l, d, b) in [
            (2, 128, 1),
            (4, 256, 2),
            (8, 256, 1),
            (3, 512, 4),
            (12, 384, 1),
            (6, 768, 2),
            (1, 1024, 1),
        ] {
            for phase in Phase::ALL {
                let shape = ShapeSpec {
                    batch: Some(b),
                    ..ShapeSpec::new(l, d)
                }
                .validate()
                .unwrap();
                let sum = operator_sum(&laws, &shape, phase).unwrap().total_ms;
                out.push(Anchor {
                    shape,
                    phase,
                    measured_ms: truth(sum, &shape),
                });
            }
        }
        out
    }

    #[test]
    fn composition_adds_up_and_the_calibration_recovers_a_known_correction() {
        let laws = laws_for_every_class();
        // Exactly additive: every ratio is 1.
        let exact = anchors(|sum, _| sum);
        let rows = additivity(&laws, &exact).unwrap();
        let s = summarize_additivity(&rows);
        assert_eq!((s.n, s.within_15pct), (14, 1.0));
        assert!((s.median_ratio - 1.0).abs() < 1e-12);
        // 1.2× the sum, 0.3 ms per layer, 0.1 ms per layer and sequence, 1 ms.
        let skewed = anchors(|sum, s| {
            let l = s.layers() as f64;
            1.2 * sum + 0.3 * l + 0.1 * l * s.batch() as f64 + 1.0
        });
        let rows = calibration_rows(&laws, &skewed).unwrap();
        let c = calibrate(&rows);
        assert!((c.scale - 1.2).abs() < 1e-6, "{c:?}");
        assert!((c.per_layer_ms - 0.3).abs() < 1e-6, "{c:?}");
        assert!((c.constant_ms - 1.0).abs() < 1e-6, "{c:?}");
        assert!((c.per_layer_sequence_ms - 0.1).abs() < 1e-6, "{c:?}");
        let held_out = cross_validate(&rows);
        assert!(held_out.mape_pct < 1e-6, "{held_out:?}");
        assert_eq!(evaluate(&c, &rows, "same").within_10pct, 1.0);
    }

    #[test]
    fn the_calibration_recovers_how_much_of_the_cold_gap_a_step_pays() {
        // Steps whose cold gap is not proportional to their sum: 60% of it is paid.
        let rows: Vec<CalibrationRow> = [
            (1, 1.0, 0.5),
            (2, 3.0, 4.0),
            (4, 2.0, 0.1),
            (8, 9.0, 6.0),
            (3, 5.0, 1.0),
        ]
        .into_iter()
        .map(|(layers, sum, gap)| CalibrationRow {
            operator_sum_ms: sum,
            cold_gap_ms: gap,
            shape: ShapeSpec::new(layers, 64).validate().unwrap(),
            measured_ms: sum + 0.6 * gap,
        })
        .collect();
        let c = calibrate(&rows);
        assert!((c.cold_gap_share - 0.6).abs() < 1e-6, "{c:?}");
        assert!((c.scale - 1.0).abs() < 1e-6, "{c:?}");
        assert!(cross_validate(&rows).mape_pct < 1e-6);
    }

    /// GPT-2-style shapes of the given (layers, d_model).
    fn layers_and_widths(pairs: &[(u64, u64)]) -> Vec<Shape> {
        pairs
            .iter()
            .map(|&(l, d)| ShapeSpec::new(l, d).validate().unwrap())
            .collect()
    }

    #[test]
    fn cover_starts_from_the_seeds_and_takes_the_farthest_next() {
        let shapes = layers_and_widths(&[(1, 64), (2, 64), (48, 64), (2, 1536), (3, 64)]);
        assert_eq!(cover(&shapes, &[0], 3), vec![0, 3, 2]);
        assert_eq!(cover(&shapes, &[1, 1], 1), vec![1]);
        assert_eq!(cover(&shapes, &[], 9).len(), 5);
    }

    #[test]
    fn the_medoid_is_the_middle_of_the_shapes_asked_about() {
        let shapes = layers_and_widths(&[(1, 64), (4, 256), (48, 64), (2, 1536), (8, 512)]);
        assert_eq!(medoid(&shapes, &[0, 1, 2, 3]), Some(1));
        assert_eq!(medoid(&shapes, &[2, 3]), Some(2), "ties: the first");
        assert_eq!(medoid(&shapes, &[3]), Some(3));
        assert_eq!(medoid(&shapes, &[]), None);
    }

    #[test]
    fn a_missing_class_stops_the_check_with_its_name() {
        let mut laws = laws_for_every_class();
        laws.laws.retain(|l| l.class != OpClass::Gelu);
        let e = additivity(&laws, &anchors(|sum, _| sum)).unwrap_err();
        assert!(e.to_string().contains("gelu"));
        // The graph has a GELU in every block.
        let s = ShapeSpec::new(1, 64).validate().unwrap();
        assert!(
            graph(&s, Phase::Prefill)
                .iter()
                .any(|o| o.kind.class() == OpClass::Gelu)
        );
    }
}
