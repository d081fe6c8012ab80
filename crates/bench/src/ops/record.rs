//! The operator measurement file format: one JSON object per line.
//!
//! `bench ops` appends one line per probe to `data/ops/*.jsonl`:
//!
//! ```text
//! {"schema_version":1, "backend":"flex", "gelu":"exact", "run_id":"…",
//!  "timestamp_utc":"2026-12-01T12:00:00Z",
//!  "probe":{"operator":{"kind":"linear","batch":1,"rows":128,"k":768,"n":2304}}
//!        | {"cold":{"op":{"kind":"linear",…},"working_set_bytes":268435456}}
//!        | {"stream":{"working_set_bytes":67108864}},
//!  "status":"ok" | "failed", "error": "why" (failed only),
//!  "median_ms":…, "ci95_ms":[lo,hi], "cold_ms":…, "samples":12, "samples_ms":[…],
//!  "round_medians_ms":[…], "converged":true,
//!  "load":{"other_cores":0.0,"steal_pct":0.0,"own_cores":1.9}   (ok only),
//!  "warnings":[…], "fingerprint":{…}, "fingerprint_id":"…"}
//! ```
//!
//! An `operator` probe times one run of a graph operator with its operands
//! hot (the kinds and sizes of `planner::operators::OpKind`); a `cold` probe
//! times the same operator with its weights (or KV cache) taken in turn from
//! a rotating set of copies of `working_set_bytes` in all, so every run reads
//! them from wherever a set that size lives, as a decode step of a large model
//! does; a `stream` probe reads a rotating set of plain buffers of
//! `working_set_bytes` on every core, outside the backend: the machine's
//! bandwidth at that working set is `working_set_bytes / median`. `load.own_cores`
//! (where recorded) is the cores the process kept busy while the probe ran:
//! which operators the backend splits across threads
//! ([`planner::parallelism`]). Readers skip lines that do not
//! parse and say so, as for whole-model measurements.

use std::path::Path;

use planner::operators::OpKind;
use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprint;
use crate::harness::load::LoadReading;
use crate::model::Gelu;
use crate::record::Status;

/// Version of this line format.
pub const OPERATOR_SCHEMA_VERSION: u32 = 1;

/// What one probe times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    /// One run of an operator, operands hot.
    Operator(OpKind),
    /// One run of an operator, its weights from a rotating set of copies.
    Cold {
        /// The operator.
        op: OpKind,
        /// Total bytes of the copies.
        working_set_bytes: u64,
    },
    /// One pass of matrix-vector products over a rotating set of weights.
    Stream {
        /// Total bytes of the set.
        working_set_bytes: u64,
    },
}

impl Probe {
    /// A stable text key.
    pub fn key(&self) -> String {
        match self {
            Probe::Operator(op) => op.key(),
            Probe::Cold {
                op,
                working_set_bytes,
            } => format!("cold {} set={working_set_bytes}", op.key()),
            Probe::Stream { working_set_bytes } => format!("stream bytes={working_set_bytes}"),
        }
    }

    /// Bytes the probe's tensors hold (to bound what is built at once).
    pub fn held_bytes(&self) -> u64 {
        match self {
            Probe::Operator(op) => match *op {
                // The whole cache buffer is held, not just the slot written.
                OpKind::KvWrite {
                    batch,
                    heads,
                    context,
                    d_head,
                } => 4 * batch * heads * context * d_head,
                OpKind::Embedding {
                    width, table_rows, ..
                } => 4 * width * table_rows + op.bytes_written(),
                _ => op.weight_bytes() + op.bytes_read() + op.bytes_written(),
            },
            Probe::Cold {
                op,
                working_set_bytes,
            } => working_set_bytes + Probe::Operator(*op).held_bytes(),
            Probe::Stream { working_set_bytes } => *working_set_bytes,
        }
    }
}

/// Timings of a successful probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeTiming {
    /// Median of all samples, ms.
    pub median_ms: f64,
    /// 95% bootstrap CI of the median, ms.
    pub ci95_ms: [f64; 2],
    /// First call, ms.
    pub cold_ms: f64,
    /// Number of timed samples.
    pub samples: usize,
    /// Every sample, ms, in order.
    pub samples_ms: Vec<f64>,
    /// Per-round medians, ms.
    pub round_medians_ms: Vec<f64>,
    /// Whether the precision target was met.
    pub converged: bool,
    /// Other load while measuring.
    pub load: LoadReading,
}

/// One line of an operator measurement file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperatorMeasurement {
    /// [`OPERATOR_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Backend name.
    pub backend: String,
    /// The GELU variant (what `gelu` probes run).
    pub gelu: Gelu,
    /// Identifies the invocation.
    pub run_id: String,
    /// When it finished (UTC).
    pub timestamp_utc: String,
    /// What was timed.
    pub probe: Probe,
    /// Ok or failed.
    pub status: Status,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Timings (absent when failed).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<ProbeTiming>,
    /// Warnings raised while measuring.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Where it was measured.
    pub fingerprint: Fingerprint,
    /// `fingerprint.id()`.
    pub fingerprint_id: String,
}

impl OperatorMeasurement {
    /// What a rerun matches to skip a probe already measured.
    pub fn resume_key(&self) -> String {
        resume_key(&self.fingerprint_id, self.gelu, &self.probe)
    }
}

/// Fingerprint, GELU variant and probe.
pub fn resume_key(fingerprint_id: &str, gelu: Gelu, probe: &Probe) -> String {
    format!("{fingerprint_id}|{}|{}", gelu.name(), probe.key())
}

/// What reading a file found.
#[derive(Debug, Default)]
pub struct ReadResult {
    /// Parsed lines, in file order.
    pub measurements: Vec<OperatorMeasurement>,
    /// `(line number, reason)` of lines skipped.
    pub skipped: Vec<(usize, String)>,
}

/// Reads an operator measurement file (none yet: empty), skipping unreadable lines.
pub fn read(path: &Path) -> std::io::Result<ReadResult> {
    let (measurements, skipped) = crate::record::read_lines(
        path,
        |m: &OperatorMeasurement| m.schema_version,
        OPERATOR_SCHEMA_VERSION,
    )?;
    Ok(ReadResult {
        measurements,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(probe: Probe) -> OperatorMeasurement {
        OperatorMeasurement {
            schema_version: OPERATOR_SCHEMA_VERSION,
            backend: "flex".into(),
            gelu: Gelu::Exact,
            run_id: "r".into(),
            timestamp_utc: "2026-12-01T12:00:00Z".into(),
            probe,
            status: Status::Ok,
            error: None,
            timing: Some(ProbeTiming {
                median_ms: 1.5,
                ci95_ms: [1.4, 1.6],
                cold_ms: 3.0,
                samples: 3,
                samples_ms: vec![1.4, 1.5, 1.6],
                round_medians_ms: vec![1.5],
                converged: true,
                load: LoadReading::default(),
            }),
            warnings: vec![],
            fingerprint: Fingerprint::current("flex"),
            fingerprint_id: "fp".into(),
        }
    }

    #[test]
    fn the_line_layout_is_locked() {
        let m = line(Probe::Operator(OpKind::Gelu { elements: 64 }));
        let v = serde_json::to_value(&m).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "backend",
                "ci95_ms",
                "cold_ms",
                "converged",
                "fingerprint",
                "fingerprint_id",
                "gelu",
                "load",
                "median_ms",
                "probe",
                "round_medians_ms",
                "run_id",
                "samples",
                "samples_ms",
                "schema_version",
                "status",
                "timestamp_utc",
                "warnings"
            ]
        );
        assert_eq!(
            v["probe"],
            serde_json::json!({"operator": {"kind": "gelu", "elements": 64}})
        );
        // The cores busy while it ran travel in `load`; a line without them reads as None.
        let mut busy = m.clone();
        busy.timing.as_mut().unwrap().load = LoadReading {
            other_cores: Some(0.0),
            steal_pct: Some(0.0),
            own_cores: Some(1.9),
        };
        let v = serde_json::to_value(&busy).unwrap();
        assert_eq!(
            v["load"],
            serde_json::json!({"other_cores": 0.0, "steal_pct": 0.0, "own_cores": 1.9})
        );
        let mut old = v.clone();
        old["load"] = serde_json::json!({"other_cores": 0.0, "steal_pct": 0.0});
        let back: OperatorMeasurement = serde_json::from_value(old).unwrap();
        assert_eq!(back.timing.unwrap().load.own_cores, None);
        let s = line(Probe::Stream {
            working_set_bytes: 1 << 20,
        });
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["probe"],
            serde_json::json!({"stream": {"working_set_bytes": 1048576}})
        );
        let c = line(Probe::Cold {
            op: OpKind::Gelu { elements: 8 },
            working_set_bytes: 1 << 28,
        });
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v["probe"],
            serde_json::json!({"cold": {"op": {"kind": "gelu", "elements": 8}, "working_set_bytes": 268435456}})
        );
        for m in [m, s, c] {
            let back: OperatorMeasurement =
                serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
            assert_eq!(back, m);
        }
    }

    #[test]
    fn unreadable_lines_are_skipped_and_reported() {
        let dir = std::env::temp_dir().join(format!("chimera-ops-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ops.jsonl");
        let good = serde_json::to_string(&line(Probe::Operator(OpKind::Add { elements: 8 }))).unwrap();
        std::fs::write(&path, format!("{good}\n{{\"schema_version\":1,\"back\n{good}\n")).unwrap();
        let r = read(&path).unwrap();
        assert_eq!(r.measurements.len(), 2);
        assert_eq!(r.skipped.len(), 1);
        assert_eq!(r.skipped[0].0, 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
