//! Peak memory of one step, measured as the process's resident set on Linux,
//! and the file format that records it.
//!
//! Each shape is measured in a fresh child process (`bench memory-probe`), so
//! nothing another shape allocated is counted:
//! 1. the backend's thread pool is started by a small matmul, then the resident
//!    set is read as the baseline;
//! 2. the model (and for decode its KV cache) is built and one step run, so
//!    one-time allocations are done; the resident set minus the baseline is
//!    what the workload holds between steps;
//! 3. the peak counter is reset (`/proc/self/clear_refs` ← 5) and one more step
//!    runs; `VmHWM` minus the baseline is the step's peak.
//!
//! The child runs with `MALLOC_MMAP_THRESHOLD_=65536`, so glibc serves large
//! tensors with mmap and returns them on free: the resident set then follows
//! live tensors instead of the allocator's retained heap.
//!
//! Lines of `data/memory/*.jsonl` (JSON Lines, schema version 1):
//!
//! ```text
//! {"schema_version":1, "kind":"prefill" | "decode", "backend":"flex",
//!  "layers":12, "d_model":768, "heads":12, "d_ff":3072, "seq":128, "batch":1,
//!  "vocab":50257, "positions":1024, "params_total":124439808,
//!  "baseline_rss_bytes":…, "held_bytes":…, "peak_bytes":…,
//!  "predicted":{"weights_bytes":…, "kv_cache_bytes":…, "activations_bytes":…, "total_bytes":…},
//!  "timestamp_utc":"…", "fingerprint":{…}, "fingerprint_id":"…"}
//! ```
//!
//! `held_bytes` and `peak_bytes` are relative to the baseline.

use anyhow::Context;
use burn::tensor::{Device, Tensor};
use planner::{Phase, Shape};
use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprint;
use crate::model::{Decoder, Gelu};

/// Version of the memory line format.
pub const MEMORY_SCHEMA_VERSION: u32 = 1;

/// What the probe child prints: bytes of resident set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReading {
    /// Resident set once the backend is started, before the model.
    pub baseline_rss_bytes: u64,
    /// Resident set after building and one step, minus the baseline.
    pub held_bytes: u64,
    /// Peak resident set during a second step, minus the baseline.
    pub peak_bytes: u64,
}

/// One line of a memory measurement file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryMeasurement {
    /// [`MEMORY_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `prefill` or `decode` (see [`planner::Phase`]).
    pub kind: String,
    /// Backend name.
    pub backend: String,
    /// The shape (`seq` is the context for decode).
    #[serde(flatten)]
    pub shape: crate::record::ShapeFields,
    /// Total parameters.
    pub params_total: u64,
    /// Resident set before the model was built.
    pub baseline_rss_bytes: u64,
    /// Held between steps (weights, cache, allocator overhead), above the baseline.
    pub held_bytes: u64,
    /// Peak during a step, above the baseline.
    pub peak_bytes: u64,
    /// The planner's estimate for this shape and phase.
    pub predicted: planner::memory::MemoryEstimate,
    /// When it was measured (UTC).
    pub timestamp_utc: String,
    /// Where it was measured.
    pub fingerprint: Fingerprint,
    /// `fingerprint.id()`.
    pub fingerprint_id: String,
}

impl MemoryMeasurement {
    /// Predicted total / measured peak − 1.
    pub fn relative_error(&self) -> f64 {
        self.predicted.total_bytes as f64 / self.peak_bytes.max(1) as f64 - 1.0
    }
}

/// Appends one line (the same torn-line-safe writer as timing files use).
pub fn append(path: &std::path::Path, m: &MemoryMeasurement) -> std::io::Result<()> {
    let line = serde_json::to_string(m).map_err(std::io::Error::other)?;
    crate::record::append_line(path, &line)
}

/// Reads a memory file; a missing file is empty. Unreadable lines are an error
/// that names the line (these files are small and written by one process).
pub fn read(path: &std::path::Path) -> anyhow::Result<Vec<MemoryMeasurement>> {
    if !path.exists() {
        return Ok(vec![]);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let m: MemoryMeasurement =
                serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1))?;
            anyhow::ensure!(
                m.schema_version == MEMORY_SCHEMA_VERSION,
                "{} line {}: schema version {} (this build reads {MEMORY_SCHEMA_VERSION})",
                path.display(),
                i + 1,
                m.schema_version
            );
            Ok(m)
        })
        .collect()
}

fn samples_of(all: &[&MemoryMeasurement]) -> Vec<planner::memory::MemorySample> {
    all.iter()
        .filter_map(|m| {
            let phase = Phase::from_name(&m.kind)?;
            let shape = m.shape.shape().ok()?;
            Some(planner::memory::MemorySample {
                estimated_bytes: planner::memory::estimate(&shape, phase).total_bytes,
                measured_bytes: m.peak_bytes,
                matrix_products: planner::memory::uses_matrix_products(&shape, phase),
            })
        })
        .collect()
}

/// Peaks below this are dominated by a backend's fixed few MiB: reported apart.
pub const SMALL_PEAK_BYTES: u64 = 32 << 20;

/// n, MAPE %, % within ±10%, signed worst % of relative errors.
fn error_summary(errors: &[f64]) -> (usize, f64, f64, f64) {
    let n = errors.len().max(1) as f64;
    let mape = 100.0 * errors.iter().map(|e| e.abs()).sum::<f64>() / n;
    let within = 100.0 * errors.iter().filter(|e| e.abs() <= 0.10).count() as f64 / n;
    let worst = errors
        .iter()
        .fold(0.0f64, |w, e| if e.abs() > w.abs() { *e } else { w });
    (errors.len(), mape, within, 100.0 * worst)
}

/// Leave-one-shape-out error of the calibrated estimate, per backend, phase
/// and size (peaks under / over 32 MiB), as a text table.
pub fn calibrated_table(all: &[MemoryMeasurement]) -> String {
    use std::fmt::Write;
    let mut backends: Vec<&str> = all.iter().map(|m| m.backend.as_str()).collect();
    backends.sort_unstable();
    backends.dedup();
    let mut groups: std::collections::BTreeMap<(String, String, &str), Vec<f64>> = Default::default();
    for b in backends {
        let ms: Vec<&MemoryMeasurement> = all
            .iter()
            .filter(|m| m.backend == b && Phase::from_name(&m.kind).is_some() && m.shape.shape().is_ok())
            .collect();
        let errors = planner::memory::leave_one_out_errors(&samples_of(&ms));
        for (m, e) in ms.iter().zip(errors) {
            let size = if m.peak_bytes < SMALL_PEAK_BYTES {
                "< 32 MiB"
            } else {
                ">= 32 MiB"
            };
            groups
                .entry((b.to_string(), m.kind.clone(), size))
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

/// The overheads of `backend` beyond tensors, fitted from its measurements on
/// the CPU named `cpu` (when given: another machine's overheads are not this
/// one's). The planner's tensor estimate is recomputed, not read from the file.
pub fn calibration(
    all: &[MemoryMeasurement],
    backend: &str,
    cpu: Option<&str>,
) -> Option<planner::memory::MemoryCalibration> {
    let ms: Vec<&MemoryMeasurement> = all
        .iter()
        .filter(|m| m.backend == backend && cpu.is_none_or(|c| m.fingerprint.cpu == c))
        .collect();
    planner::memory::calibrate(&samples_of(&ms))
}

/// Prediction error per backend and phase: n, MAPE, within ±10%, worst.
pub fn accuracy_table(all: &[MemoryMeasurement]) -> String {
    use std::fmt::Write;
    let mut groups: std::collections::BTreeMap<(String, String), Vec<f64>> = Default::default();
    for m in all {
        groups
            .entry((m.backend.clone(), m.kind.clone()))
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

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`).
pub fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kb(&status, field).map(|kb| kb * 1024)
}

fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Resets `VmHWM` to the current resident set.
pub fn reset_peak() -> std::io::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5")
}

/// Environment the probe child runs under (see the module doc).
pub const PROBE_ENV: [(&str, &str); 1] = [("MALLOC_MMAP_THRESHOLD_", "65536")];

fn rss() -> anyhow::Result<u64> {
    status_bytes("VmRSS").context("memory is measured from /proc/self/status, which this OS lacks")
}

/// Measures one shape in this process (run it in a fresh child: see the module doc).
pub fn probe(backend: &str, shape: &Shape, phase: Phase, gelu: Gelu) -> anyhow::Result<ProbeReading> {
    let device: Device = crate::backend::device(backend)?;
    // Start the backend's thread pool and allocator arenas.
    let warm = Tensor::<2>::ones([64, 64], &device);
    let _ = warm.clone().matmul(warm).into_data();
    device
        .sync()
        .map_err(|e| anyhow::anyhow!("device sync failed: {e:?}"))?;
    let baseline = rss()?;

    let model = Decoder::new(shape, gelu, &device);
    let mut step: Box<dyn FnMut()> = match phase {
        Phase::Prefill => {
            let input = Decoder::input(shape, &device);
            // CPU backends compute eagerly: the step's tensors exist when it returns.
            Box::new(move || drop(std::hint::black_box(model.forward(input.clone()))))
        }
        Phase::Decode => {
            let input = Decoder::decode_input(shape, &device);
            let mut cache = Some(model.kv_cache(shape.batch() as usize, shape.seq() as usize, &device));
            Box::new(move || {
                let (logits, next) =
                    model.decode_step(input.clone(), cache.take().expect("cache is put back"));
                cache = Some(next);
                drop(std::hint::black_box(logits));
            })
        }
    };
    step();
    let held = rss()?.saturating_sub(baseline);
    reset_peak().context("resetting the peak resident set (/proc/self/clear_refs)")?;
    step();
    let peak = status_bytes("VmHWM").context("reading VmHWM")?;
    Ok(ProbeReading {
        baseline_rss_bytes: baseline,
        held_bytes: held,
        peak_bytes: peak.saturating_sub(baseline),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_parse() {
        let status = "Name:\tbench\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(102_400));
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(204_800));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn peak_follows_a_large_allocation_on_linux() {
        let (Some(before), Ok(())) = (status_bytes("VmRSS"), reset_peak()) else {
            return; // not Linux
        };
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        let peak = status_bytes("VmHWM").unwrap();
        drop(block);
        assert!(peak >= before + (60 << 20), "peak {peak} before {before}");
    }
}
