//! The measurement file format: one JSON object per line (JSON Lines).
//!
//! Files live under `data/measurements/` and are only ever appended to.
//! Each line is one (shape, backend, configuration) measurement:
//!
//! ```text
//! {"schema_version":1, "kind":"prefill" | "decode", "status":"ok" | "failed",
//!  "error": null | "why it failed",
//!  "backend":"flex", "gelu":"exact", "sweep":"default", "family":"iso-85M", "run_id":"…",
//!  "timestamp_utc":"2026-11-26T09:12:03Z",
//!  "layers":12, "d_model":768, "heads":12, "d_ff":3072, "seq":128, "batch":1,
//!  "vocab":50257, "positions":1024,
//!  "params_total":124439808, "params_non_embedding":85056000, "flops":…,
//!  "median_ms":…, "ci95_ms":[lo,hi], "mean_ms":…, "std_ms":…, "min_ms":…, "max_ms":…,
//!  "p10_ms":…, "p90_ms":…, "mad_ms":…, "cold_ms":…, "samples":41, "warmup_runs":3,
//!  "samples_ms":[…], "round_medians_ms":[…], "between_round_spread_pct":…,
//!  "converged":true, "outliers":{"low_severe":0,"low_mild":0,"high_mild":2,"high_severe":0},
//!  "gflops":…, "load":{"other_cores":0.02,"steal_pct":0.0,"own_cores":1.0}, "warnings":[…],
//!  "fingerprint":{…}, "fingerprint_id":"…"}
//! ```
//!
//! `kind` says what one sample times: `prefill`, a forward over `seq` tokens per
//! sequence, or `decode`, one new token per sequence against a KV cache holding
//! `seq` tokens (the context c, the new one included); `flops` and `gflops` are
//! those of one such step. Timing fields are absent on failed lines. Readers skip a line that does
//! not parse (a write cut off by SIGKILL) and say so; writers start a file
//! that lacks a final newline with one, so such a line never swallows the next.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use planner::{Phase, Shape};
use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprint;
use crate::harness::load::LoadReading;
use crate::model::Gelu;
use fit::stats::Outliers;

/// Version of this line format.
pub const MEASUREMENT_SCHEMA_VERSION: u32 = 1;

/// Whether the shape was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Timings present.
    Ok,
    /// `error` says why.
    Failed,
}

/// Timing fields of a successful measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingFields {
    /// Median of all samples, ms.
    pub median_ms: f64,
    /// 95% bootstrap CI of the median, ms.
    pub ci95_ms: [f64; 2],
    /// Mean, ms.
    pub mean_ms: f64,
    /// Sample standard deviation, ms.
    pub std_ms: f64,
    /// Fastest sample, ms.
    pub min_ms: f64,
    /// Slowest sample, ms.
    pub max_ms: f64,
    /// 10th percentile, ms.
    pub p10_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// Median absolute deviation, ms.
    pub mad_ms: f64,
    /// First call, ms.
    pub cold_ms: f64,
    /// Number of timed samples.
    pub samples: usize,
    /// Untimed warm-up runs.
    pub warmup_runs: usize,
    /// Whether each round timed a model built anew (`--renew-each-round`),
    /// so the rounds sample different instances; absent: one instance.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub renewed_each_round: bool,
    /// Every sample, ms, in order.
    pub samples_ms: Vec<f64>,
    /// Per-round medians, ms.
    pub round_medians_ms: Vec<f64>,
    /// Spread of round medians, % of the median.
    pub between_round_spread_pct: f64,
    /// Whether the precision target was met.
    pub converged: bool,
    /// Tukey outliers (kept in `samples_ms`).
    pub outliers: Outliers,
    /// Achieved GFLOP/s at the median.
    pub gflops: f64,
    /// Other load while measuring.
    pub load: LoadReading,
}

/// One line of a measurement file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// [`MEASUREMENT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// What was timed: `prefill` (one forward over n tokens) or `decode`
    /// (one token per sequence at context c = `seq`); written as those strings.
    pub kind: Phase,
    /// Ok or failed.
    pub status: Status,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Backend name.
    pub backend: String,
    /// MLP activation.
    pub gelu: Gelu,
    /// Sweep name.
    pub sweep: String,
    /// Family tag of the shape in its sweep (iso-parameter family, ...).
    pub family: String,
    /// Identifies the invocation that measured it.
    pub run_id: String,
    /// When it finished (UTC).
    pub timestamp_utc: String,
    /// The shape (flattened: `layers`, `d_model`, `heads`, `d_ff`, `seq`,
    /// `batch`, `vocab`, `positions`; for decode `seq` is the context).
    #[serde(flatten)]
    pub shape: ShapeFields,
    /// Total parameters.
    pub params_total: u64,
    /// Non-embedding parameters.
    pub params_non_embedding: u64,
    /// Forward FLOPs.
    pub flops: u64,
    /// Timings (absent when failed).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<TimingFields>,
    /// Warnings raised while measuring.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Where it was measured.
    pub fingerprint: Fingerprint,
    /// `fingerprint.id()`, for grouping.
    pub fingerprint_id: String,
}

/// The shape fields a measurement line carries, flattened into it: eight
/// dimensions always, and the architecture (`kv_heads`, `head_dim`, `mlp`,
/// `norm`, `position_encoding`, `tie_embeddings`, `qkv_bias`, `dense_bias`)
/// only for a shape that is not GPT-2-style, so older lines read as GPT-2's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShapeFields {
    /// Layers.
    pub layers: u64,
    /// Width.
    pub d_model: u64,
    /// Heads.
    pub heads: u64,
    /// MLP width.
    pub d_ff: u64,
    /// Sequence length (decode: the context).
    pub seq: u64,
    /// Batch.
    pub batch: u64,
    /// Vocabulary.
    pub vocab: u64,
    /// Positions (learned table rows, or RoPE's context).
    pub positions: u64,
    /// The architecture, where it is not GPT-2's.
    #[serde(flatten)]
    pub architecture: ArchitectureFields,
}

/// The architectural fields of a line (all absent for GPT-2-style shapes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ArchitectureFields {
    /// Key/value heads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_heads: Option<u64>,
    /// Head size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<u64>,
    /// MLP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp: Option<planner::Mlp>,
    /// Normalisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm: Option<planner::Norm>,
    /// Positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_encoding: Option<planner::PositionEncoding>,
    /// Tied LM head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tie_embeddings: Option<bool>,
    /// QKV biases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qkv_bias: Option<bool>,
    /// Output and MLP biases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dense_bias: Option<bool>,
}

impl ShapeFields {
    /// The fields of a planner shape.
    pub fn of(s: &Shape) -> Self {
        let architecture = if s.is_gpt2_style() {
            ArchitectureFields::default()
        } else {
            ArchitectureFields {
                kv_heads: Some(s.kv_heads()),
                head_dim: Some(s.head_dim()),
                mlp: Some(s.mlp()),
                norm: Some(s.norm()),
                position_encoding: Some(s.position_encoding()),
                tie_embeddings: Some(s.tie_embeddings()),
                qkv_bias: Some(s.qkv_bias()),
                dense_bias: Some(s.dense_bias()),
            }
        };
        Self {
            layers: s.layers(),
            d_model: s.d_model(),
            heads: s.heads(),
            d_ff: s.d_ff(),
            seq: s.seq(),
            batch: s.batch(),
            vocab: s.vocab(),
            positions: s.positions(),
            architecture,
        }
    }

    /// The shape, validated again (files are input).
    pub fn shape(&self) -> Result<Shape, planner::ShapeError> {
        let a = self.architecture;
        planner::ShapeSpec {
            layers: self.layers,
            d_model: self.d_model,
            heads: Some(self.heads),
            kv_heads: a.kv_heads,
            head_dim: a.head_dim,
            d_ff: Some(self.d_ff),
            mlp: a.mlp,
            norm: a.norm,
            position_encoding: a.position_encoding,
            tie_embeddings: a.tie_embeddings,
            qkv_bias: a.qkv_bias,
            dense_bias: a.dense_bias,
            vocab: Some(self.vocab),
            positions: Some(self.positions),
            seq: Some(self.seq),
            batch: Some(self.batch),
        }
        .validate()
    }

    /// The shape's [`Shape::key`] (`L/d/h/d_ff/n/b/V/P`, plus the
    /// architecture where it is not GPT-2's): identifies the shape in resume keys.
    pub fn key(&self) -> String {
        let dims = planner::shape::key_of([
            self.layers,
            self.d_model,
            self.heads,
            self.d_ff,
            self.seq,
            self.batch,
            self.vocab,
            self.positions,
        ]);
        if self.architecture == ArchitectureFields::default() {
            return dims;
        }
        // An architecture that does not validate still keys apart from GPT-2's.
        self.shape().map_or(format!("{dims}/invalid"), |s| s.key())
    }
}

impl Measurement {
    /// The shape measured.
    pub fn shape(&self) -> Result<Shape, planner::ShapeError> {
        self.shape.shape()
    }

    /// The key under which a sweep resumes: same place, configuration, shape
    /// and way of timing.
    pub fn resume_key(&self) -> String {
        resume_key(
            &self.fingerprint_id,
            self.kind,
            self.gelu,
            &self.shape.key(),
            self.timing.as_ref().is_some_and(|t| t.renewed_each_round),
        )
    }
}

/// Resume key of a shape about to be measured. A run that builds its models
/// anew each round (`renewed`) times something else than one that keeps
/// them, so neither continues nor skips the other's shapes; keys of runs
/// that keep their models are those written before the flag existed.
pub fn resume_key(fingerprint_id: &str, kind: Phase, gelu: Gelu, shape_key: &str, renewed: bool) -> String {
    let key = format!("{fingerprint_id}|{}|{}|{shape_key}", kind.name(), gelu.name());
    if renewed { format!("{key}|renewed") } else { key }
}

/// `shape_key` of a planner shape (matches [`Measurement`]'s).
pub fn shape_key(s: &Shape) -> String {
    s.key()
}

/// Appends one measurement as one line, in one write, and syncs it to disk.
pub fn append(path: &Path, m: &Measurement) -> std::io::Result<()> {
    append_line(path, &serde_json::to_string(m).map_err(std::io::Error::other)?)
}

/// Appends one line of JSON, in one write, and syncs it to disk.
pub fn append_line(path: &Path, json: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)?;
    let mut line = format!("{json}\n");
    if !ends_with_newline(path)? {
        // A previous writer was killed mid-line: keep its fragment apart.
        line.insert(0, '\n');
    }
    file.write_all(line.as_bytes())?;
    file.sync_data()
}

fn ends_with_newline(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    f.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    f.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// What reading a file found.
#[derive(Debug, Default)]
pub struct ReadResult {
    /// Parsed measurements, in file order.
    pub measurements: Vec<Measurement>,
    /// `(line number, reason)` of lines skipped.
    pub skipped: Vec<(usize, String)>,
}

/// Reads a measurement file, skipping (and reporting) unreadable lines.
pub fn read(path: &Path) -> std::io::Result<ReadResult> {
    let (measurements, skipped) = read_lines(
        path,
        |m: &Measurement| m.schema_version,
        MEASUREMENT_SCHEMA_VERSION,
    )?;
    Ok(ReadResult {
        measurements,
        skipped,
    })
}

/// Lines of a file that could not be read: `(line number, reason)`.
pub type Skipped = Vec<(usize, String)>;

/// Reads a JSON Lines file of `T` (none yet: empty), keeping the lines of
/// schema version `expected` and reporting every other line as `(line
/// number, reason)`: a line cut off by a kill, or one of another version.
pub fn read_lines<T: serde::de::DeserializeOwned>(
    path: &Path,
    version: impl Fn(&T) -> u32,
    expected: u32,
) -> std::io::Result<(Vec<T>, Skipped)> {
    let (mut lines, mut skipped) = (vec![], vec![]);
    if !path.exists() {
        return Ok((lines, skipped));
    }
    for (i, line) in BufReader::new(File::open(path)?).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<T>(&line) {
            Ok(m) if version(&m) == expected => lines.push(m),
            Ok(m) => skipped.push((i + 1, format!("schema version {}", version(&m)))),
            Err(e) => skipped.push((i + 1, e.to_string())),
        }
    }
    Ok((lines, skipped))
}

/// The `*.jsonl` files of a folder, sorted: one measuring session each.
pub fn jsonl_files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first line of a committed measurement file of each phase.
    fn committed_line(file: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/measurements")
            .join(file);
        let text = std::fs::read_to_string(&path).expect("committed measurements");
        text.lines().next().expect("a first line").to_string()
    }

    #[test]
    fn committed_lines_round_trip_and_keep_kind_as_its_string() {
        for (file, phase) in [
            ("cpu-pass1.jsonl", Phase::Prefill),
            ("decode-pass1.jsonl", Phase::Decode),
        ] {
            let line = committed_line(file);
            let m: Measurement = serde_json::from_str(&line).unwrap();
            assert_eq!(m.kind, phase);
            let written = serde_json::to_value(&m).unwrap();
            let original: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(written, original, "{file}: the schema is written as it was read");
            assert_eq!(written["kind"], phase.name());
        }
        let bad = committed_line("cpu-pass1.jsonl").replace("\"kind\":\"prefill\"", "\"kind\":\"train\"");
        assert!(
            serde_json::from_str::<Measurement>(&bad).is_err(),
            "an unknown kind is not a measurement"
        );
    }

    #[test]
    fn a_lines_shape_key_is_the_planners() {
        let m: Measurement = serde_json::from_str(&committed_line("decode-pass1.jsonl")).unwrap();
        assert_eq!(m.shape.key(), m.shape().unwrap().key());
        assert_eq!(shape_key(&m.shape().unwrap()), m.shape.key());
    }
}
