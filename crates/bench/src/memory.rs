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

use std::path::Path;

use crate::fingerprint::Fingerprint;
use crate::model::{Decoder, Gelu};
use crate::sweep::Sweep;

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
    /// Parameters of the model the child built (the parent checks it is
    /// the shape it asked for).
    #[serde(default)]
    pub params_built: u64,
}

/// One line of a memory measurement file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryMeasurement {
    /// [`MEMORY_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `prefill` or `decode`.
    pub kind: Phase,
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
    let params_built = burn::module::Module::num_params(&model) as u64;
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
        params_built,
    })
}

/// What `run` measures.
pub struct RunOptions<'a> {
    /// CPU backends, checked by the caller.
    pub backends: &'a [String],
    /// The sweeps, each in its phase.
    pub sweeps: &'a [(Phase, Sweep)],
    /// The file to append to; shapes already in it under this machine's
    /// fingerprint are skipped (a rerun resumes).
    pub out: &'a Path,
    /// The program whose hidden `memory-probe` command measures one shape.
    pub probe_program: &'a Path,
}

/// One shape's outcome, as `run` reports it while it goes.
pub enum Progress<'a> {
    /// Measured and appended.
    Measured(&'a MemoryMeasurement),
    /// The probe failed: backend, phase, shape and why; `run` goes on.
    Failed(&'a str, Phase, &'a Shape, &'a anyhow::Error),
}

/// Measures the peak memory of every shape of every sweep on every backend,
/// each in a fresh child process, appending one line per shape as it
/// finishes (the latency runner's `runner::run` is the twin of this).
/// Returns the shapes that could not be measured.
pub fn run(opts: &RunOptions, mut progress: impl FnMut(Progress)) -> anyhow::Result<Vec<String>> {
    let existing = read(opts.out)?;
    let mut failed = vec![];
    for name in opts.backends {
        let fp = Fingerprint::current(name);
        let fp_id = fp.id();
        for (phase, sweep) in opts.sweeps {
            for entry in &sweep.entries {
                let s = &entry.shape;
                let key = (fp_id.as_str(), *phase, crate::record::shape_key(s));
                if existing
                    .iter()
                    .any(|m| (m.fingerprint_id.as_str(), m.kind, m.shape.key()) == key)
                {
                    continue;
                }
                let reading = match probe_in_child(opts.probe_program, name, *phase, s) {
                    Ok(r) => r,
                    Err(e) => {
                        progress(Progress::Failed(name, *phase, s, &e));
                        failed.push(format!("{name} {} {s}", phase.name()));
                        continue;
                    }
                };
                let m = MemoryMeasurement {
                    schema_version: MEMORY_SCHEMA_VERSION,
                    kind: *phase,
                    backend: name.clone(),
                    shape: crate::record::ShapeFields::of(s),
                    params_total: s.accounting().params.total,
                    baseline_rss_bytes: reading.baseline_rss_bytes,
                    held_bytes: reading.held_bytes,
                    peak_bytes: reading.peak_bytes,
                    predicted: planner::memory::estimate(s, *phase),
                    timestamp_utc: crate::runner::now_utc(),
                    fingerprint: fp.clone(),
                    fingerprint_id: fp_id.clone(),
                };
                append(opts.out, &m).with_context(|| format!("appending to {}", opts.out.display()))?;
                progress(Progress::Measured(&m));
            }
        }
    }
    Ok(failed)
}

/// Runs `<program> memory-probe` for one shape in a fresh process.
fn probe_in_child(
    program: &Path,
    backend: &str,
    phase: Phase,
    shape: &Shape,
) -> anyhow::Result<ProbeReading> {
    // Every field, architecture included (six numbers would measure a
    // GPT-2-style model with default d_ff and positions instead).
    let spec = serde_json::to_string(shape).context("writing the shape for the probe")?;
    let mut command = std::process::Command::new(program);
    // The probe's allocator state is its own, whatever the parent measures in.
    for (name, _) in crate::allocator::KEEP_FREED_MEMORY {
        command.env_remove(name);
    }
    let output = command
        .args([
            "memory-probe",
            "--backend",
            backend,
            "--mode",
            phase.name(),
            "--shape-json",
            &spec,
        ])
        .envs(PROBE_ENV)
        .stderr(std::process::Stdio::piped())
        .output()
        .context("starting the memory probe")?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        anyhow::bail!(
            "probe failed ({}): {}",
            output.status,
            err.trim().lines().last().unwrap_or("")
        );
    }
    let reading: ProbeReading =
        serde_json::from_slice(&output.stdout).context("reading the probe's answer")?;
    let wanted = shape.accounting().params.total;
    if reading.params_built != wanted {
        anyhow::bail!(
            "the probe built {} parameters for {shape}, not its {wanted}",
            reading.params_built
        );
    }
    Ok(reading)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_lines_round_trip_and_keep_kind_as_its_string() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/memory/cpu.jsonl");
        let text = std::fs::read_to_string(path).expect("committed memory measurements");
        for line in text.lines().take(50) {
            let m: MemoryMeasurement = serde_json::from_str(line).unwrap();
            let mut written = serde_json::to_value(&m).unwrap();
            let original: serde_json::Value = serde_json::from_str(line).unwrap();
            // Lines older than the calibration lack `predicted.runtime_bytes` (read as 0).
            if original["predicted"].get("runtime_bytes").is_none() {
                assert_eq!(written["predicted"]["runtime_bytes"], 0);
                written["predicted"]
                    .as_object_mut()
                    .unwrap()
                    .remove("runtime_bytes");
            }
            assert_eq!(written, original);
            assert_eq!(written["kind"], m.kind.name());
        }
    }

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
