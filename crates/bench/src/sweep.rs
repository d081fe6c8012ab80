//! Sweep files: which shapes to measure.
//!
//! TOML, one `[[shape]]` table per shape; `family` groups shapes that belong
//! together (an iso-parameter family, a sequence sweep) so that fitting can
//! hold a whole family out. Fields left out take the planner's defaults.
//!
//! ```toml
//! name = "default"
//! [[shape]]
//! family = "iso-25M"
//! layers = 8
//! d_model = 512
//! heads = 8        # optional: d_model / 64
//! vocab = 50257    # optional
//! seq = 128        # optional
//! batch = 1        # optional
//! ```

use planner::{Shape, ShapeSpec};
use serde::Deserialize;

/// The built-in default sweep.
pub const DEFAULT_SWEEP: &str = include_str!("../../../data/sweeps/default.toml");
/// The built-in decode sweep (`seq` is the context c).
pub const DECODE_SWEEP: &str = include_str!("../../../data/sweeps/decode.toml");
/// Llama-style prefill shapes, measured with the default sweep.
pub const LLAMA_SWEEP: &str = include_str!("../../../data/sweeps/llama.toml");
/// Llama-style decode shapes, measured with the decode sweep.
pub const LLAMA_DECODE_SWEEP: &str = include_str!("../../../data/sweeps/llama-decode.toml");
/// GPT-2-style prefill anchors: what `bench calibrate` measures to put a
/// profile on a session's level (the shapes that levelled the Llama sessions).
pub const CALIBRATION_SWEEP: &str = include_str!("../../../data/sweeps/llama-anchors.toml");
/// The decode anchors of `bench calibrate` (`seq` is the context c).
pub const CALIBRATION_DECODE_SWEEP: &str = include_str!("../../../data/sweeps/llama-anchors-decode.toml");
/// Llama-style prefill anchors (`bench calibrate --anchors llama`): shapes of `llama.toml`.
pub const CALIBRATION_LLAMA_SWEEP: &str = include_str!("../../../data/sweeps/calibration-llama.toml");
/// Llama-style decode anchors: shapes of `llama-decode.toml`.
pub const CALIBRATION_LLAMA_DECODE_SWEEP: &str =
    include_str!("../../../data/sweeps/calibration-llama-decode.toml");

/// Which built-in anchors `bench calibrate` measures: a session's level is
/// best measured on the architecture the profile will be asked about (on
/// flex, GPT-2-style and Llama-style shapes moved differently between
/// sessions of 2026-12-01).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Anchors {
    /// Eight GPT-2-style shapes per phase (`llama-anchors*.toml`).
    Gpt2,
    /// Eight Llama-style shapes per phase: grouped-query attention, SwiGLU,
    /// RMSNorm, RoPE (`calibration-llama*.toml`).
    Llama,
}
/// Tiny shapes for tests and smoke runs.
pub const QUICK_SWEEP: &str = include_str!("../../../data/sweeps/quick.toml");

/// A parsed sweep.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// Its name (recorded with each measurement).
    pub name: String,
    /// Shapes in file order.
    pub entries: Vec<SweepEntry>,
}

/// One shape of a sweep.
#[derive(Debug, Clone)]
pub struct SweepEntry {
    /// Family tag.
    pub family: String,
    /// The shape.
    pub shape: Shape,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default)]
    description: Option<String>,
    shape: Vec<Row>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    family: String,
    #[serde(flatten)]
    spec: ShapeSpec,
}

/// Why a sweep file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Not valid TOML for a sweep.
    #[error("sweep file is not valid: {0}")]
    Toml(#[from] toml::de::Error),
    /// A shape in it is invalid.
    #[error("shape #{index} ({family}) is invalid: {source}")]
    Shape {
        /// 1-based position in the file.
        index: usize,
        /// Its family.
        family: String,
        /// Why.
        source: planner::ShapeError,
    },
    /// It lists no shapes.
    #[error("sweep `{0}` lists no shapes")]
    Empty(String),
}

impl Sweep {
    /// Parses a sweep file's text.
    pub fn parse(text: &str) -> Result<Sweep, SweepError> {
        let file: File = toml::from_str(text)?;
        let _ = file.description;
        if file.shape.is_empty() {
            return Err(SweepError::Empty(file.name));
        }
        let entries = file
            .shape
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                let shape = row.spec.validate().map_err(|source| SweepError::Shape {
                    index: i + 1,
                    family: row.family.clone(),
                    source,
                })?;
                Ok(SweepEntry {
                    family: row.family,
                    shape,
                })
            })
            .collect::<Result<_, SweepError>>()?;
        Ok(Sweep {
            name: file.name,
            entries,
        })
    }

    /// The built-in sweep of `phase`: GPT-2-style shapes then Llama-style ones
    /// (`default.toml` + `llama.toml`, `decode.toml` + `llama-decode.toml`),
    /// under the GPT-2 sweep's name.
    pub fn built_in(phase: planner::Phase) -> Result<Sweep, SweepError> {
        let (gpt2, llama) = match phase {
            planner::Phase::Prefill => (DEFAULT_SWEEP, LLAMA_SWEEP),
            planner::Phase::Decode => (DECODE_SWEEP, LLAMA_DECODE_SWEEP),
        };
        let mut sweep = Sweep::parse(gpt2)?;
        sweep.entries.extend(Sweep::parse(llama)?.entries);
        Ok(sweep)
    }

    /// The anchors `bench calibrate` measures for `phase`.
    pub fn calibration(anchors: Anchors, phase: planner::Phase) -> Result<Sweep, SweepError> {
        use planner::Phase::{Decode, Prefill};
        Sweep::parse(match (anchors, phase) {
            (Anchors::Gpt2, Prefill) => CALIBRATION_SWEEP,
            (Anchors::Gpt2, Decode) => CALIBRATION_DECODE_SWEEP,
            (Anchors::Llama, Prefill) => CALIBRATION_LLAMA_SWEEP,
            (Anchors::Llama, Decode) => CALIBRATION_LLAMA_DECODE_SWEEP,
        })
    }

    /// A sweep of one ad-hoc shape.
    pub fn single(shape: Shape) -> Sweep {
        Sweep {
            name: "ad-hoc".into(),
            entries: vec![SweepEntry {
                family: "ad-hoc".into(),
                shape,
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_sweep_meets_its_brief() {
        let sweep = Sweep::parse(DEFAULT_SWEEP).unwrap();
        assert!(sweep.entries.len() >= 24);
        let params: Vec<u64> = sweep
            .entries
            .iter()
            .map(|e| e.shape.accounting().params.total)
            .collect();
        assert!(*params.iter().min().unwrap() <= 70_000);
        assert!(*params.iter().max().unwrap() >= 124_000_000);
        assert!(params.contains(&124_439_808), "GPT-2 small is in the sweep");
        let seqs: std::collections::BTreeSet<u64> = sweep.entries.iter().map(|e| e.shape.seq()).collect();
        assert!(seqs.contains(&32) && seqs.contains(&512));
        let batches: std::collections::BTreeSet<u64> =
            sweep.entries.iter().map(|e| e.shape.batch()).collect();
        assert!(batches.is_superset(&[1, 4, 8].into()));
        // Iso-parameter families: 3+ depth/width splits within ±10% non-embedding params.
        for fam in ["iso-3M", "iso-25M", "iso-85M"] {
            let members: Vec<&SweepEntry> = sweep.entries.iter().filter(|e| e.family == fam).collect();
            assert!(members.len() >= 3, "{fam}");
            let ne: Vec<f64> = members
                .iter()
                .map(|e| e.shape.accounting().params.non_embedding as f64)
                .collect();
            let (lo, hi) = ne
                .iter()
                .fold((f64::MAX, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
            assert!(hi / lo < 1.1, "{fam}: {lo}..{hi}");
        }
    }

    #[test]
    fn decode_sweep_covers_contexts_batches_and_families() {
        let sweep = Sweep::parse(DECODE_SWEEP).unwrap();
        assert!(sweep.entries.len() >= 30);
        let contexts: std::collections::BTreeSet<u64> = sweep.entries.iter().map(|e| e.shape.seq()).collect();
        assert!(contexts.is_superset(&[128, 512, 1024].into()));
        let batches: std::collections::BTreeSet<u64> =
            sweep.entries.iter().map(|e| e.shape.batch()).collect();
        assert!(batches.is_superset(&[1, 4].into()));
        assert!(
            sweep
                .entries
                .iter()
                .any(|e| e.shape.accounting().params.total == 124_439_808),
            "GPT-2 small is in the decode sweep"
        );
        for fam in ["iso-3M", "iso-25M", "iso-85M"] {
            assert!(
                sweep.entries.iter().filter(|e| e.family == fam).count() >= 3,
                "{fam}"
            );
        }
    }

    #[test]
    fn calibration_anchors_are_enough_shapes_of_their_architecture() {
        for phase in planner::Phase::ALL {
            let gpt2 = Sweep::calibration(Anchors::Gpt2, phase).unwrap();
            assert!(
                gpt2.entries.len() >= 2 * fit::session_level::MIN_ANCHORS,
                "{phase:?}"
            );
            assert!(
                gpt2.entries
                    .iter()
                    .all(|e| e.shape.architecture_features().is_empty())
            );
            let llama = Sweep::calibration(Anchors::Llama, phase).unwrap();
            assert!(
                llama.entries.len() >= 2 * fit::session_level::MIN_ANCHORS,
                "{phase:?}"
            );
            // Every anchor is a shape the Llama sweeps measure, so a profile fitted on them knows it.
            let measured = Sweep::built_in(phase).unwrap();
            for e in &llama.entries {
                assert!(
                    e.shape.architecture_features().contains(&"gated MLP"),
                    "{}",
                    e.shape
                );
                assert!(
                    measured.entries.iter().any(|m| m.shape == e.shape),
                    "{} is not in the built-in sweep",
                    e.shape
                );
            }
        }
    }

    #[test]
    fn quick_sweep_is_tiny() {
        let sweep = Sweep::parse(QUICK_SWEEP).unwrap();
        assert!(
            sweep
                .entries
                .iter()
                .all(|e| e.shape.accounting().params.total < 1_000_000)
        );
    }

    fn committed_sweeps() -> Vec<(String, Sweep)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut sweeps = vec![];
        for dir in [
            "data/sweeps",
            "data/probes/position",
            "data/probes/architecture",
            "data/probes/context",
        ] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "toml") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    let sweep = Sweep::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    sweeps.push((
                        format!("{dir}/{}", path.file_name().unwrap().to_string_lossy()),
                        sweep,
                    ));
                }
            }
        }
        sweeps
    }

    #[test]
    fn every_committed_sweep_parses_and_the_held_out_sets_are_in_no_other() {
        let sweeps = committed_sweeps();
        assert!(sweeps.len() >= 20, "{}", sweeps.len());
        // The second held-out set, the second GQA grid and Llama-3.2-1B itself: no fit may see them.
        let is_held_out = |name: &str| {
            name.starts_with("evaluate-llama-2")
                || name == "gqa-effect-2-decode"
                || name.starts_with("llama-3.2-1b")
        };
        let held_out: Vec<String> = sweeps
            .iter()
            .filter(|(_, s)| is_held_out(&s.name))
            .flat_map(|(_, s)| s.entries.iter().map(|e| e.shape.key()))
            .collect();
        assert_eq!(held_out.len(), 22 + 6 + 3);
        for (file, sweep) in sweeps.iter().filter(|(_, s)| !is_held_out(&s.name)) {
            for e in &sweep.entries {
                assert!(
                    !held_out.contains(&e.shape.key()),
                    "{file} holds a held-out shape"
                );
            }
        }
    }

    #[test]
    fn bad_sweeps_say_why() {
        let bad = "name = \"x\"\n[[shape]]\nfamily = \"f\"\nlayers = 2\nd_model = 100\nheads = 3\n";
        let err = Sweep::parse(bad).unwrap_err().to_string();
        assert!(
            err.contains("shape #1 (f) is invalid: d_model (100) must be divisible by heads (3)"),
            "{err}"
        );
        assert!(
            Sweep::parse("name = \"x\"\nshape = []")
                .unwrap_err()
                .to_string()
                .contains("no shapes")
        );
        assert!(Sweep::parse("name = 3").is_err());
    }
}
