//! Which operators a CPU backend splits across threads, as measured.
//!
//! `bench ops` records beside each operator's time how many cores the process
//! kept busy while it ran (CPU time of all its threads / wall time): about one
//! for a kernel that runs on one thread, more for one split across threads.
//! Per operator class, one threshold on the operator's work (the product of its
//! sizes: multiply-adds of a matrix product, elements of an elementwise op) is
//! fitted to those readings, the one that classifies most of them right; where
//! a backend's kernels start to split is whatever its points say, not a
//! constant of one Burn version. Kernels take other code paths where a size is
//! 1 (a matrix-vector product for one row, no split over a batch of one), so
//! each pattern of unit sizes measured gets its own threshold, and the class's
//! threshold over all its readings serves the patterns not measured. A class
//! never seen busy on more than one core (every class on a one-core machine)
//! has no threshold: never parallel. A pool that keeps its threads spinning
//! between operations reads busy everywhere, which says nothing: no
//! parallelism is fitted from it ([`pool_spins`]).
//!
//! What it is for: which batched products of a decode step stay on one
//! thread ([`crate::features::Term::DecodeSerialGemmWeightMb`]), and a decode
//! step that alternates operators on one thread with operators split across
//! threads pays, at each switch, for waking the backend's worker threads
//! ([`crate::features::Term::DecodeParallelWakes`]).

use serde::{Deserialize, Serialize};

use crate::costlaw::causal_of;
use crate::operators::{OpClass, OpKind};

/// Above this many busy cores on average, a second thread did measurable
/// work on the operator. A kernel on one thread reads 1.00–1.03 (the harness
/// and the clock reads add a little); a split one anything above, down to
/// ~1.1 where the split part is short (the flex probes of 2026-12-03).
pub const PARALLEL_CORES: f64 = 1.1;

/// One measured operator and the cores the process kept busy while it ran.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoresReading {
    /// The operator.
    pub op: OpKind,
    /// Average busy cores (own CPU time / wall time).
    pub cores: f64,
}

/// The fitted threshold of one class (attention: of one causal flag), over
/// all its operators or those with one pattern of unit sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParallelClass {
    /// The class.
    pub class: OpClass,
    /// For attention: causal (prefill) or not (decode); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causal: Option<bool>,
    /// Which of the class's sizes ([`OpKind::sizes`], by position) are 1 in
    /// the operators this threshold is for; `None`: all of the class's
    /// operators (the threshold for a pattern not measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_sizes: Option<Vec<usize>>,
    /// Work (product of the operator's sizes) from which it runs on more than
    /// one thread; `None`: it never did.
    pub parallel_from_work: Option<f64>,
    /// Operators measured.
    pub measured: usize,
    /// Of them, how many the threshold classifies wrongly.
    pub misclassified: usize,
}

/// Which operators of a backend run on more than one thread.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parallelism {
    /// One threshold per class measured.
    pub classes: Vec<ParallelClass>,
}

/// An operator's work: the product of its sizes.
pub fn work(op: &OpKind) -> f64 {
    op.sizes().iter().map(|&s| s.max(1) as f64).product()
}

impl Parallelism {
    /// Fits one threshold per class (and causal flag) to the readings, and
    /// one per pattern of unit sizes within it; `None` when there are none,
    /// or when they cannot tell a split from a busy pool ([`pool_spins`]).
    pub fn fit(readings: &[CoresReading]) -> Option<Self> {
        if pool_spins(readings) {
            return None;
        }
        let mut groups: Vec<(OpClass, Option<bool>, Option<Vec<usize>>)> = readings
            .iter()
            .flat_map(|r| {
                let (class, causal) = (r.op.class(), causal_of(&r.op));
                [(class, causal, None), (class, causal, Some(unit_sizes(&r.op)))]
            })
            .collect();
        groups.sort();
        groups.dedup();
        let classes: Vec<ParallelClass> = groups
            .into_iter()
            .map(|(class, causal, units)| {
                let mut points: Vec<(f64, bool)> = readings
                    .iter()
                    .filter(|r| r.op.class() == class && causal_of(&r.op) == causal)
                    .filter(|r| units.as_ref().is_none_or(|u| *u == unit_sizes(&r.op)))
                    .map(|r| (work(&r.op), r.cores > PARALLEL_CORES))
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                let (parallel_from_work, misclassified) = stump(&points);
                ParallelClass {
                    class,
                    causal,
                    unit_sizes: units,
                    parallel_from_work,
                    measured: points.len(),
                    misclassified,
                }
            })
            .collect();
        (!classes.is_empty()).then_some(Self { classes })
    }

    /// Whether `op` runs on more than one thread: by the threshold of its
    /// pattern of unit sizes, else of its class; `false` for a class not measured.
    pub fn runs_parallel(&self, op: &OpKind) -> bool {
        let of_class = |c: &&ParallelClass| c.class == op.class() && c.causal == causal_of(op);
        let units = unit_sizes(op);
        let pattern = self
            .classes
            .iter()
            .filter(of_class)
            .find(|c| c.unit_sizes.as_ref() == Some(&units));
        pattern
            .or_else(|| {
                self.classes
                    .iter()
                    .filter(of_class)
                    .find(|c| c.unit_sizes.is_none())
            })
            .and_then(|c| c.parallel_from_work)
            .is_some_and(|from| work(op) >= from)
    }
}

/// Whether the readings show a thread pool that keeps other cores busy
/// between operations rather than kernels that split: in most classes
/// measured, the smallest operator already reads split, which no kernel
/// worth splitting is (ndarray's pool on the Zen 5 VM of 2026-12-03: 9
/// classes of 12, RMSNorm of 32 elements at 1.9 cores; flex's: none).
pub fn pool_spins(readings: &[CoresReading]) -> bool {
    let mut smallest: Vec<((OpClass, Option<bool>), f64, bool)> = vec![];
    for r in readings {
        let key = (r.op.class(), causal_of(&r.op));
        let (w, split) = (work(&r.op), r.cores > PARALLEL_CORES);
        match smallest.iter_mut().find(|(k, _, _)| *k == key) {
            Some(entry) if w < entry.1 => *entry = (key, w, split),
            // Of equal smallest operators, all must read split.
            Some(entry) if w == entry.1 => entry.2 &= split,
            Some(_) => {}
            None => smallest.push((key, w, split)),
        }
    }
    let split = smallest.iter().filter(|(_, _, split)| *split).count();
    2 * split > smallest.len()
}

/// Positions of the sizes of `op` that are 1.
fn unit_sizes(op: &OpKind) -> Vec<usize> {
    (op.sizes().into_iter().enumerate())
        .filter(|&(_, s)| s <= 1)
        .map(|(i, _)| i)
        .collect()
}

/// The threshold that misclassifies fewest of `points` (sorted by work):
/// never parallel, else parallel from the first point or from the geometric
/// midpoint of two neighbours of different work; of equally good ones the
/// first in that order. Returns it and its errors.
fn stump(points: &[(f64, bool)]) -> (Option<f64>, usize) {
    let parallel_total = points.iter().filter(|p| p.1).count();
    // Never parallel: every parallel reading is an error.
    let mut best = (None, parallel_total);
    let mut parallel_below = 0;
    for i in 0..points.len() {
        // Parallel from points[i] on: errors are the parallel readings below
        // and the serial readings from i on.
        let serial_from_here = (points.len() - i) - (parallel_total - parallel_below);
        let errors = parallel_below + serial_from_here;
        // Equal work on both sides of a split cannot be told apart.
        let separable = i == 0 || points[i - 1].0 < points[i].0;
        if separable && errors < best.1 {
            let from = if i == 0 {
                points[0].0
            } else {
                (points[i - 1].0 * points[i].0).sqrt()
            };
            best = (Some(from), errors);
        }
        parallel_below += usize::from(points[i].1);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linear(n: u64) -> OpKind {
        OpKind::Linear {
            batch: 1,
            rows: 1,
            k: 64,
            n,
            bias: false,
        }
    }

    fn reading(op: OpKind, cores: f64) -> CoresReading {
        CoresReading { op, cores }
    }

    #[test]
    fn the_threshold_lies_between_the_last_serial_and_the_first_parallel_point() {
        let readings: Vec<CoresReading> = [(64, 1.0), (128, 1.05), (256, 1.9), (512, 1.95)]
            .into_iter()
            .map(|(n, c)| reading(linear(n), c))
            .collect();
        let p = Parallelism::fit(&readings).unwrap();
        let class = &p.classes[0];
        let from = class.parallel_from_work.unwrap();
        assert!(
            (from - (64.0 * 128.0 * 64.0 * 256.0_f64).sqrt()).abs() < 1e-6,
            "{from}"
        );
        assert_eq!((class.measured, class.misclassified), (4, 0));
        assert!(!p.runs_parallel(&linear(128)));
        assert!(p.runs_parallel(&linear(256)));
        assert!(p.runs_parallel(&linear(10_000)));
    }

    #[test]
    fn a_class_never_busy_on_two_cores_never_runs_parallel() {
        let readings: Vec<CoresReading> = [64, 4096, 1 << 20]
            .into_iter()
            .map(|n| reading(linear(n), 1.0))
            .collect();
        let p = Parallelism::fit(&readings).unwrap();
        assert_eq!(p.classes[0].parallel_from_work, None);
        assert!(!p.runs_parallel(&linear(1 << 22)));
        // Nor does a class that was not measured.
        assert!(!p.runs_parallel(&OpKind::Add { elements: 1 << 30 }));
    }

    #[test]
    fn one_stray_reading_does_not_move_the_threshold_past_the_majority() {
        let readings: Vec<CoresReading> = [
            (64, 1.0),
            (128, 1.7),
            (256, 1.0),
            (512, 1.0),
            (1024, 1.9),
            (2048, 1.9),
            (4096, 1.9),
        ]
        .into_iter()
        .map(|(n, c)| reading(linear(n), c))
        .collect();
        let p = Parallelism::fit(&readings).unwrap();
        assert_eq!(p.classes[0].misclassified, 1);
        assert!(!p.runs_parallel(&linear(512)));
        assert!(p.runs_parallel(&linear(1024)));
    }

    #[test]
    fn attention_is_fitted_per_causal_flag() {
        let attention = |causal, kv| OpKind::Attention {
            batch: 1,
            heads: 8,
            q: 1,
            kv,
            d_head: 64,
            causal,
        };
        let readings = [
            reading(attention(false, 16), 1.0),
            reading(attention(false, 4096), 1.9),
            reading(attention(true, 16), 1.0),
            reading(attention(true, 4096), 1.0),
        ];
        let p = Parallelism::fit(&readings).unwrap();
        // Per flag: the class-wide threshold and that of the one pattern measured.
        assert_eq!(p.classes.len(), 4);
        assert!(p.runs_parallel(&attention(false, 4096)));
        assert!(!p.runs_parallel(&attention(true, 4096)));
        assert_eq!(Parallelism::fit(&[]), None);
    }

    #[test]
    fn a_pattern_of_unit_sizes_has_its_own_threshold_and_the_class_serves_the_rest() {
        let gemm = |batch, rows, n| OpKind::Linear {
            batch,
            rows,
            k: 1024,
            n,
            bias: false,
        };
        // One row of one sequence stays on one thread at any size; a batch of
        // single rows splits from 2·1024·2048 multiply-adds on.
        let readings = [
            reading(gemm(1, 1, 1024), 1.0),
            reading(gemm(1, 1, 8192), 1.0),
            reading(gemm(1, 1, 65536), 1.01),
            reading(gemm(2, 1, 512), 1.0),
            reading(gemm(2, 1, 1024), 1.0),
            reading(gemm(2, 1, 2048), 1.6),
            reading(gemm(2, 1, 8192), 1.8),
        ];
        let p = Parallelism::fit(&readings).unwrap();
        assert!(!p.runs_parallel(&gemm(1, 1, 65536)));
        assert!(!p.runs_parallel(&gemm(4, 1, 256)));
        assert!(p.runs_parallel(&gemm(4, 1, 8192)));
        // The class-wide threshold, over all seven, misclassifies some; the
        // patterns' own none.
        let wide = p.classes.iter().find(|c| c.unit_sizes.is_none()).unwrap();
        assert_eq!(wide.measured, 7);
        assert!(wide.misclassified > 0);
        let patterns: Vec<_> = p.classes.iter().filter(|c| c.unit_sizes.is_some()).collect();
        assert_eq!(patterns.len(), 2);
        assert!(patterns.iter().all(|c| c.misclassified == 0));
        // No reading had rows > 1 and batch 1: the class-wide threshold decides.
        let unseen = gemm(1, 64, 4096);
        let by_class = wide.parallel_from_work.is_some_and(|from| work(&unseen) >= from);
        assert_eq!(p.runs_parallel(&unseen), by_class);
    }

    #[test]
    fn a_pool_busy_even_on_the_smallest_operators_gives_no_parallelism() {
        let norm = |rows| OpKind::RmsNorm { rows, width: 32 };
        let add = |elements| OpKind::Add { elements };
        // Two classes of three read split at their smallest size: a spinning pool.
        let spinning = [
            reading(linear(64), 1.9),
            reading(linear(4096), 1.9),
            reading(norm(1), 1.9),
            reading(norm(64), 2.0),
            reading(add(32), 1.0),
            reading(add(1 << 20), 1.0),
        ];
        assert!(pool_spins(&spinning));
        assert_eq!(Parallelism::fit(&spinning), None);
        // One class of three: kernels that split, fitted.
        let splitting = [
            reading(linear(64), 1.0),
            reading(linear(4096), 1.9),
            reading(norm(1), 1.9),
            reading(add(32), 1.0),
        ];
        assert!(!pool_spins(&splitting));
        assert!(Parallelism::fit(&splitting).is_some());
    }
}
