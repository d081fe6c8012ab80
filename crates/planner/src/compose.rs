//! Whole-model latency composed from operators: Σ operator costs, then a
//! small calibration fitted on a few whole-model measurements.
//!
//! The operator sum prices every entry of [`crate::operators::graph`] with the
//! backend's measured [`OperatorLaws`], each at the bandwidth of the step's
//! whole working set. What the sum misses — framework work between kernels,
//! allocation, caches other operators evicted — is absorbed by
//! `t = scale · Σ + cold_gap_share · gap + per_layer · L + per_layer_sequence · L·b + constant`
//! (gap: what the operators with cold laws would take more fully cold),
//! fitted per backend and phase.

use serde::{Deserialize, Serialize};

use crate::costlaw::{LawError, OperatorLaws};
use crate::features::Component;
use crate::operators::{Operator, graph, step_bytes};
use crate::phase::Phase;
use crate::shape::Shape;

/// The time of one operator of the graph, all its runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorTime {
    /// The operator.
    pub operator: Operator,
    /// ms of all its runs in one step.
    pub ms: f64,
}

/// The uncorrected operator sum of one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorSum {
    /// Σ of the operator times, ms.
    pub total_ms: f64,
    /// Σ of what the operators with cold laws would take more fully cold,
    /// ms ([`OperatorLaws::op_ms_and_cold_gap`]).
    pub cold_gap_ms: f64,
    /// Bytes the step reads and writes (the working set its bandwidth is read at).
    pub working_set_bytes: u64,
    /// Every operator with its time, in graph order.
    pub operators: Vec<OperatorTime>,
}

impl OperatorSum {
    /// Time per component, largest first.
    pub fn by_component(&self) -> Vec<(Component, f64)> {
        let mut parts: Vec<(Component, f64)> = vec![];
        for o in &self.operators {
            match parts.iter_mut().find(|(c, _)| *c == o.operator.component) {
                Some((_, ms)) => *ms += o.ms,
                None => parts.push((o.operator.component, o.ms)),
            }
        }
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        parts
    }
}

/// Prices every operator of one step of `phase` for `shape`.
pub fn operator_sum(laws: &OperatorLaws, shape: &Shape, phase: Phase) -> Result<OperatorSum, LawError> {
    let ops = graph(shape, phase);
    let working_set_bytes = step_bytes(&ops);
    let mut cold_gap_ms = 0.0;
    let operators = ops
        .into_iter()
        .map(|operator| {
            let (one, gap) = laws.op_ms_and_cold_gap(&operator.kind, working_set_bytes)?;
            cold_gap_ms += gap * operator.count as f64;
            Ok(OperatorTime {
                ms: one * operator.count as f64,
                operator,
            })
        })
        .collect::<Result<Vec<_>, LawError>>()?;
    Ok(OperatorSum {
        total_ms: operators.iter().map(|o| o.ms).sum(),
        cold_gap_ms,
        working_set_bytes,
        operators,
    })
}

/// The whole-model correction of one backend and phase (all ≥ 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Multiplies the operator sum.
    pub scale: f64,
    /// ms per layer beyond the operators.
    pub per_layer_ms: f64,
    /// ms per layer and sequence beyond the operators (work a backend does
    /// per sequence between kernels).
    #[serde(default)]
    pub per_layer_sequence_ms: f64,
    /// ms per step beyond the operators.
    pub constant_ms: f64,
    /// Share of the operators' cold gap the whole step pays (0: the
    /// bandwidth curve's blend is right, 1: the step runs fully cold).
    #[serde(default)]
    pub cold_gap_share: f64,
}

impl Calibration {
    /// No correction: the operator sum as it is.
    pub const IDENTITY: Calibration = Calibration {
        scale: 1.0,
        per_layer_ms: 0.0,
        per_layer_sequence_ms: 0.0,
        constant_ms: 0.0,
        cold_gap_share: 0.0,
    };

    /// The calibrated latency of a step of `shape` with this operator sum, ms.
    pub fn apply(&self, operator_sum_ms: f64, cold_gap_ms: f64, shape: &Shape) -> f64 {
        let layers = shape.layers() as f64;
        self.scale * operator_sum_ms
            + self.cold_gap_share * cold_gap_ms
            + self.per_layer_ms * layers
            + self.per_layer_sequence_ms * layers * shape.batch() as f64
            + self.constant_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::costlaw::BaseLaw;
    use crate::operators::OpClass;
    use crate::shape::ShapeSpec;

    /// Every class costs 1 µs plus 1 ms per GFLOP.
    fn flat_laws() -> OperatorLaws {
        OperatorLaws::uniform(BaseLaw {
            overhead_ms: 0.001,
            ms_per_gflop: 1.0,
            ..BaseLaw::default()
        })
    }

    #[test]
    fn the_sum_prices_every_operator_by_its_count() {
        let s = ShapeSpec::new(4, 256).validate().unwrap();
        for phase in Phase::ALL {
            let sum = operator_sum(&flat_laws(), &s, phase).unwrap();
            let ops = graph(&s, phase);
            let runs: u64 = ops.iter().map(|o| o.count).sum();
            let gflop = phase.flops(&s) as f64 / 1e9;
            assert!(
                (sum.total_ms - (0.001 * runs as f64 + gflop)).abs() < 1e-9,
                "{phase}"
            );
            let parts: f64 = sum.by_component().iter().map(|p| p.1).sum();
            assert!((parts - sum.total_ms).abs() < 1e-9);
            assert_eq!(sum.working_set_bytes, step_bytes(&ops));
        }
    }

    #[test]
    fn a_missing_class_names_itself() {
        let mut laws = flat_laws();
        laws.laws.retain(|l| l.class != OpClass::KvWrite);
        let s = ShapeSpec::new(2, 128).validate().unwrap();
        assert!(operator_sum(&laws, &s, Phase::Prefill).is_ok());
        let e = operator_sum(&laws, &s, Phase::Decode).unwrap_err();
        assert!(e.to_string().contains("kv_write"), "{e}");
    }

    #[test]
    fn calibration_scales_and_adds() {
        let c = Calibration {
            scale: 1.1,
            per_layer_ms: 0.5,
            per_layer_sequence_ms: 0.25,
            constant_ms: 2.0,
            cold_gap_share: 0.5,
        };
        let s = ShapeSpec {
            batch: Some(2),
            ..ShapeSpec::new(4, 64)
        }
        .validate()
        .unwrap();
        assert!((c.apply(10.0, 4.0, &s) - (11.0 + 2.0 + 2.0 + 2.0 + 2.0)).abs() < 1e-12);
        assert_eq!(Calibration::IDENTITY.apply(7.0, 3.0, &s), 7.0);
    }
}
