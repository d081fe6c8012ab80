//! Memory calibration: each backend's overheads beyond the tensors the
//! planner counts, fitted from measured peaks and scored leave-one-shape-out.
//! The planner applies them (`planner::memory::estimate_on`); this fits them.

use std::collections::BTreeMap;
use std::fmt::Write;

use planner::memory::{MemoryCalibration, estimate, uses_matrix_products};
use planner::{Phase, Shape};

use crate::stats;

/// One measured peak of one step, as the fit sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryObservation {
    /// Backend name.
    pub backend: String,
    /// Prefill or decode.
    pub phase: Phase,
    /// The shape.
    pub shape: Shape,
    /// Measured peak above the process baseline, bytes.
    pub peak_bytes: u64,
    /// The planner's tensor estimate recorded with the measurement (the
    /// estimate of the build that measured it), bytes.
    pub recorded_estimate_bytes: u64,
    /// The CPU it was measured on (another machine's overheads are not this one's).
    pub cpu: String,
}

impl MemoryObservation {
    /// Recorded estimate / measured peak − 1.
    pub fn relative_error(&self) -> f64 {
        self.recorded_estimate_bytes as f64 / self.peak_bytes.max(1) as f64 - 1.0
    }
}

/// One measured step: the planner's tensor estimate, the measured peak, and
/// whether it multiplied matrices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemorySample {
    /// [`estimate`]'s total (no calibration).
    pub estimated_bytes: u64,
    /// Measured peak above the process baseline.
    pub measured_bytes: u64,
    /// [`uses_matrix_products`].
    pub matrix_products: bool,
}

impl MemorySample {
    /// The sample of an observation, with the tensor estimate recomputed by
    /// this build (not read from the file).
    pub fn of(o: &MemoryObservation) -> Self {
        MemorySample {
            estimated_bytes: estimate(&o.shape, o.phase).total_bytes,
            measured_bytes: o.peak_bytes,
            matrix_products: uses_matrix_products(&o.shape, o.phase),
        }
    }
}

/// Runtime and workspace overheads: medians of measured − estimated over
/// matrix-vector steps, and over matrix-matrix steps beyond that (medians,
/// so one odd shape moves nothing).
fn overheads(samples: &[MemorySample]) -> (u64, u64) {
    let gap = |s: &MemorySample| s.measured_bytes as f64 - s.estimated_bytes as f64;
    let vector: Vec<f64> = samples.iter().filter(|s| !s.matrix_products).map(gap).collect();
    let matrix: Vec<f64> = samples.iter().filter(|s| s.matrix_products).map(gap).collect();
    let runtime = stats::median_of(&vector)
        .or_else(|| stats::median_of(&matrix))
        .unwrap_or(0.0)
        .max(0.0);
    let beyond: Vec<f64> = matrix.into_iter().map(|g| g - runtime).collect();
    let workspace = stats::median_of(&beyond).unwrap_or(0.0).max(0.0);
    (runtime as u64, workspace as u64)
}

/// Fewest samples a calibration is fitted from.
pub const MIN_SAMPLES: usize = 3;

/// Fits a backend's overheads and measures them leave-one-shape-out.
/// `None` with fewer than [`MIN_SAMPLES`] samples.
pub fn calibrate(samples: &[MemorySample]) -> Option<MemoryCalibration> {
    if samples.len() < MIN_SAMPLES {
        return None;
    }
    let (runtime_bytes, matmul_workspace_bytes) = overheads(samples);
    let errors: Vec<f64> = leave_one_out_errors(samples).iter().map(|e| e.abs()).collect();
    Some(MemoryCalibration {
        runtime_bytes,
        matmul_workspace_bytes,
        measurements: samples.len(),
        held_out_mape_pct: stats::mean_abs_pct(&errors),
        held_out_within_10pct: stats::fraction_within(&errors, 0.10),
        held_out_worst_pct: 100.0 * errors.iter().copied().fold(0.0, f64::max),
    })
}

/// Per sample, predicted / measured − 1 with overheads fitted on the others.
pub fn leave_one_out_errors(samples: &[MemorySample]) -> Vec<f64> {
    (0..samples.len())
        .map(|i| {
            let rest: Vec<MemorySample> = samples
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, s)| *s)
                .collect();
            let (runtime, workspace) = overheads(&rest);
            let s = samples[i];
            let predicted = s.estimated_bytes + runtime + if s.matrix_products { workspace } else { 0 };
            predicted as f64 / s.measured_bytes.max(1) as f64 - 1.0
        })
        .collect()
}

/// The overheads of `backend`, fitted from its observations on the CPU named
/// `cpu` (when given).
pub fn calibration(all: &[MemoryObservation], backend: &str, cpu: Option<&str>) -> Option<MemoryCalibration> {
    let samples: Vec<MemorySample> = all
        .iter()
        .filter(|m| m.backend == backend && cpu.is_none_or(|c| m.cpu == c))
        .map(MemorySample::of)
        .collect();
    calibrate(&samples)
}

/// Peaks below this are dominated by a backend's fixed few MiB: reported apart.
pub const SMALL_PEAK_BYTES: u64 = 32 << 20;

/// n, MAPE %, % within ±10%, signed worst % of relative errors.
fn error_summary(errors: &[f64]) -> (usize, f64, f64, f64) {
    (
        errors.len(),
        stats::mean_abs_pct(errors),
        100.0 * stats::fraction_within(errors, 0.10),
        100.0 * stats::signed_worst(errors),
    )
}

/// Leave-one-shape-out error of the calibrated estimate, per backend, phase
/// and size (peaks under / over 32 MiB), as a text table.
pub fn calibrated_table(all: &[MemoryObservation]) -> String {
    let mut backends: Vec<&str> = all.iter().map(|m| m.backend.as_str()).collect();
    backends.sort_unstable();
    backends.dedup();
    let mut groups: BTreeMap<(String, &str, &str), Vec<f64>> = BTreeMap::new();
    for b in backends {
        let ms: Vec<&MemoryObservation> = all.iter().filter(|m| m.backend == b).collect();
        let samples: Vec<MemorySample> = ms.iter().map(|m| MemorySample::of(m)).collect();
        for (m, e) in ms.iter().zip(leave_one_out_errors(&samples)) {
            let size = if m.peak_bytes < SMALL_PEAK_BYTES {
                "< 32 MiB"
            } else {
                ">= 32 MiB"
            };
            groups
                .entry((b.to_string(), m.phase.name(), size))
                .or_default()
                .push(e);
        }
    }
    let mut out = format!(
        "with fitted overheads, leave-one-shape-out:\n{:<8} {:<7} {:<9} {:>4} {:>8} {:>11} {:>8}\n",
        "backend", "phase", "peak", "n", "MAPE %", "within 10%", "worst %"
    );
    for ((backend, kind, size), errors) in groups {
        let (n, mape, within, worst) = error_summary(&errors);
        let _ = writeln!(
            out,
            "{backend:<8} {kind:<7} {size:<9} {n:>4} {mape:>8.1} {within:>10.0}% {worst:>+8.1}"
        );
    }
    out
}

/// Error of the recorded tensor estimate per backend and phase: n, MAPE,
/// within ±10%, worst.
pub fn accuracy_table(all: &[MemoryObservation]) -> String {
    let mut groups: BTreeMap<(String, &str), Vec<f64>> = BTreeMap::new();
    for m in all {
        groups
            .entry((m.backend.clone(), m.phase.name()))
            .or_default()
            .push(m.relative_error());
    }
    let mut out = format!(
        "tensors alone (planner::memory::estimate):\n{:<8} {:<7} {:>4} {:>8} {:>11} {:>8}\n",
        "backend", "phase", "n", "MAPE %", "within 10%", "worst %"
    );
    for ((backend, kind), errors) in groups {
        let (n, mape, within, worst) = error_summary(&errors);
        let _ = writeln!(
            out,
            "{backend:<8} {kind:<7} {n:>4} {mape:>8.1} {within:>10.0}% {worst:>+8.1}"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use planner::ShapeSpec;
    use planner::memory::estimate_on;

    fn gpt2(seq: u64, batch: u64) -> Shape {
        ShapeSpec {
            heads: Some(12),
            seq: Some(seq),
            batch: Some(batch),
            ..ShapeSpec::new(12, 768)
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn calibration_recovers_known_overheads_and_scores_held_out() {
        // A backend that holds 2 MB always and 28 MB more for matrix products.
        let samples: Vec<MemorySample> = (1..=12u64)
            .map(|i| {
                let estimated = i * 10_000_000;
                let matrix = i % 3 != 0;
                MemorySample {
                    estimated_bytes: estimated,
                    measured_bytes: estimated + 2_000_000 + if matrix { 28_000_000 } else { 0 },
                    matrix_products: matrix,
                }
            })
            .collect();
        let c = calibrate(&samples).unwrap();
        assert_eq!(
            (c.runtime_bytes, c.matmul_workspace_bytes),
            (2_000_000, 28_000_000)
        );
        assert!(c.held_out_mape_pct < 1e-9 && c.held_out_within_10pct == 1.0);
        assert!(calibrate(&samples[..2]).is_none());
        // Applied: decode at b = 1 is matrix-vector, prefill is not.
        let shape = gpt2(128, 1);
        let plain = estimate(&shape, Phase::Decode);
        let on = estimate_on(Some(&c), &shape, Phase::Decode);
        assert_eq!(on.total_bytes, plain.total_bytes + 2_000_000);
        let on = estimate_on(Some(&c), &shape, Phase::Prefill);
        assert_eq!(
            on.total_bytes,
            estimate(&shape, Phase::Prefill).total_bytes + 30_000_000
        );
    }

    #[test]
    fn another_cpus_peaks_do_not_calibrate_this_one() {
        let obs = |cpu: &str, extra: u64| -> Vec<MemoryObservation> {
            [(64, 1), (128, 1), (256, 1), (128, 2)]
                .map(|(c, b)| {
                    let shape = gpt2(c, b);
                    let estimated = estimate(&shape, Phase::Decode).total_bytes;
                    MemoryObservation {
                        backend: "flex".into(),
                        phase: Phase::Decode,
                        shape,
                        peak_bytes: estimated + extra,
                        recorded_estimate_bytes: estimated,
                        cpu: cpu.into(),
                    }
                })
                .to_vec()
        };
        let mut all = obs("here", 4_000_000);
        all.extend(obs("there", 90_000_000));
        let here = calibration(&all, "flex", Some("here")).unwrap();
        assert_eq!(here.runtime_bytes, 4_000_000);
        assert_eq!(here.measurements, 4);
        assert!(calibration(&all, "ndarray", None).is_none());
        let table = calibrated_table(&all);
        assert!(table.contains("flex     decode"), "{table}");
        assert!(accuracy_table(&all).contains("flex     decode     8"));
    }
}
