//! A validated GPT-2-style decoder shape.

use serde::{Deserialize, Serialize};

use crate::accounting::Accounting;
use crate::error::ShapeError;

/// Default vocabulary: GPT-2's BPE vocabulary.
pub const DEFAULT_VOCAB: u64 = 50_257;
/// Default learned position table (GPT-2's context).
pub const DEFAULT_POSITIONS: u64 = 1024;
/// Default sequence length of a measured forward pass.
pub const DEFAULT_SEQ: u64 = 128;
/// Default batch size.
pub const DEFAULT_BATCH: u64 = 1;

/// Upper bounds that keep every count far from overflow and reject typos.
pub const MAX_LAYERS: u64 = 4096;
/// Largest accepted width.
pub const MAX_D_MODEL: u64 = 131_072;
/// Largest accepted vocabulary.
pub const MAX_VOCAB: u64 = 10_000_000;
/// Largest accepted context / sequence.
pub const MAX_POSITIONS: u64 = 1_048_576;
/// Largest accepted batch.
pub const MAX_BATCH: u64 = 65_536;

/// The dimensions of a decoder as a user writes them; `None` takes the default.
///
/// Turn it into a [`Shape`] with [`ShapeSpec::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShapeSpec {
    /// Number of transformer blocks L.
    pub layers: u64,
    /// Residual width d_model.
    pub d_model: u64,
    /// Attention heads h (default d_model / 64, at least 1).
    pub heads: Option<u64>,
    /// MLP hidden width (default 4·d_model).
    pub d_ff: Option<u64>,
    /// Vocabulary size V (default 50257).
    pub vocab: Option<u64>,
    /// Learned positions (default 1024).
    pub positions: Option<u64>,
    /// Sequence length n of one forward pass (default 128).
    pub seq: Option<u64>,
    /// Batch size b (default 1).
    pub batch: Option<u64>,
}

impl ShapeSpec {
    /// A spec with the given depth and width and every other field defaulted.
    pub fn new(layers: u64, d_model: u64) -> Self {
        Self {
            layers,
            d_model,
            ..Self::default()
        }
    }

    /// Checks every dimension and fills in the defaults.
    pub fn validate(self) -> Result<Shape, ShapeError> {
        let heads = self.heads.unwrap_or((self.d_model / 64).max(1));
        let shape = Shape {
            layers: self.layers,
            d_model: self.d_model,
            heads,
            d_ff: self.d_ff.unwrap_or(self.d_model.saturating_mul(4)),
            vocab: self.vocab.unwrap_or(DEFAULT_VOCAB),
            positions: self.positions.unwrap_or(DEFAULT_POSITIONS),
            seq: self.seq.unwrap_or(DEFAULT_SEQ),
            batch: self.batch.unwrap_or(DEFAULT_BATCH),
            accounting: Accounting::default(),
        };
        // Counted once here: every later overflow is a validation error, and
        // the fit and the recommender, which ask for it millions of times,
        // do not rebuild the operator graph each time.
        let accounting = shape.check()?;
        Ok(Shape { accounting, ..shape })
    }
}

/// A GPT-2-style decoder shape whose dimensions are known to be consistent.
///
/// Fields are read through accessors so that an invalid shape cannot be built;
/// (de)serialisation goes through [`ShapeSpec`] and validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "ShapeSpec", into = "ShapeSpec")]
pub struct Shape {
    layers: u64,
    d_model: u64,
    heads: u64,
    d_ff: u64,
    vocab: u64,
    positions: u64,
    seq: u64,
    batch: u64,
    /// Counted from the dimensions when validated.
    accounting: Accounting,
}

impl TryFrom<ShapeSpec> for Shape {
    type Error = ShapeError;
    fn try_from(spec: ShapeSpec) -> Result<Self, ShapeError> {
        spec.validate()
    }
}

impl From<Shape> for ShapeSpec {
    fn from(s: Shape) -> Self {
        ShapeSpec {
            layers: s.layers,
            d_model: s.d_model,
            heads: Some(s.heads),
            d_ff: Some(s.d_ff),
            vocab: Some(s.vocab),
            positions: Some(s.positions),
            seq: Some(s.seq),
            batch: Some(s.batch),
        }
    }
}

impl Shape {
    fn check(&self) -> Result<Accounting, ShapeError> {
        let dims: [(&'static str, u64, u64); 8] = [
            ("layers", self.layers, MAX_LAYERS),
            ("d_model", self.d_model, MAX_D_MODEL),
            ("heads", self.heads, MAX_D_MODEL),
            ("d_ff", self.d_ff, 4 * MAX_D_MODEL),
            ("vocab", self.vocab, MAX_VOCAB),
            ("positions", self.positions, MAX_POSITIONS),
            ("seq", self.seq, MAX_POSITIONS),
            ("batch", self.batch, MAX_BATCH),
        ];
        for (name, value, max) in dims {
            if value == 0 {
                return Err(ShapeError::Zero { name });
            }
            if value > max {
                return Err(ShapeError::TooLarge { name, value, max });
            }
        }
        if !self.d_model.is_multiple_of(self.heads) {
            return Err(ShapeError::HeadsDoNotDivide {
                d_model: self.d_model,
                heads: self.heads,
            });
        }
        if self.seq > self.positions {
            return Err(ShapeError::SeqAbovePositions {
                seq: self.seq,
                positions: self.positions,
            });
        }
        Accounting::try_of(self)
    }

    /// Number of blocks L.
    pub fn layers(&self) -> u64 {
        self.layers
    }
    /// Residual width d_model.
    pub fn d_model(&self) -> u64 {
        self.d_model
    }
    /// Attention heads h.
    pub fn heads(&self) -> u64 {
        self.heads
    }
    /// Width of one head, d_model / h.
    pub fn head_dim(&self) -> u64 {
        self.d_model / self.heads
    }
    /// MLP hidden width.
    pub fn d_ff(&self) -> u64 {
        self.d_ff
    }
    /// Vocabulary V.
    pub fn vocab(&self) -> u64 {
        self.vocab
    }
    /// Learned positions.
    pub fn positions(&self) -> u64 {
        self.positions
    }
    /// `L/d/h/d_ff/n/b/V/P`: every field, so two shapes have one key exactly
    /// when they are equal (measurement files resume and pool by it).
    pub fn key(&self) -> String {
        key_of([
            self.layers,
            self.d_model,
            self.heads,
            self.d_ff,
            self.seq,
            self.batch,
            self.vocab,
            self.positions,
        ])
    }
    /// Sequence length n.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// Batch b.
    pub fn batch(&self) -> u64 {
        self.batch
    }
    /// Tokens in one forward pass, b·n.
    pub fn tokens(&self) -> u64 {
        self.batch * self.seq
    }

    /// The same shape with other depth, width and heads (d_ff scaled as 4·d when it was 4·d).
    pub fn with_depth_width(&self, layers: u64, d_model: u64, heads: u64) -> Result<Shape, ShapeError> {
        let d_ff = if self.d_ff == 4 * self.d_model {
            4 * d_model
        } else {
            self.d_ff
        };
        ShapeSpec {
            layers,
            d_model,
            heads: Some(heads),
            d_ff: Some(d_ff),
            ..ShapeSpec::from(*self)
        }
        .validate()
    }

    /// The same model at another sequence length (prompt or decode context).
    pub fn with_seq(&self, seq: u64) -> Result<Shape, ShapeError> {
        ShapeSpec {
            seq: Some(seq),
            ..ShapeSpec::from(*self)
        }
        .validate()
    }

    /// Exact parameter, FLOP and byte counts of this shape.
    pub fn accounting(&self) -> Accounting {
        self.accounting
    }
}

/// The key of `[L, d_model, heads, d_ff, seq, batch, vocab, positions]`
/// ([`Shape::key`]; files key unvalidated fields the same way).
pub fn key_of(fields: [u64; 8]) -> String {
    fields.map(|f| f.to_string()).join("/")
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "L={} d={} h={} n={} b={} V={}",
            self.layers, self.d_model, self.heads, self.seq, self.batch, self.vocab
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_gpt2() {
        let s = ShapeSpec::new(16, 512).validate().unwrap();
        assert_eq!(
            (s.heads(), s.d_ff(), s.vocab(), s.positions(), s.seq(), s.batch()),
            (8, 2048, 50257, 1024, 128, 1)
        );
    }

    #[test]
    fn tiny_width_gets_one_head() {
        assert_eq!(ShapeSpec::new(2, 32).validate().unwrap().heads(), 1);
    }

    #[test]
    fn rejects_bad_shapes_with_clear_messages() {
        let err = |spec: ShapeSpec| spec.validate().unwrap_err().to_string();
        assert_eq!(err(ShapeSpec::new(0, 512)), "layers must be at least 1 (got 0)");
        assert_eq!(
            err(ShapeSpec {
                heads: Some(7),
                ..ShapeSpec::new(2, 512)
            }),
            "d_model (512) must be divisible by heads (7); valid head counts divide d_model"
        );
        assert_eq!(
            err(ShapeSpec {
                seq: Some(2048),
                ..ShapeSpec::new(2, 512)
            }),
            "seq (2048) must not exceed positions (1024)"
        );
        assert!(err(ShapeSpec::new(5000, 512)).contains("above the limit"));
    }

    #[test]
    fn huge_counts_are_overflow_errors_not_panics() {
        let spec = ShapeSpec {
            layers: MAX_LAYERS,
            d_model: MAX_D_MODEL,
            vocab: Some(MAX_VOCAB),
            positions: Some(MAX_POSITIONS),
            seq: Some(MAX_POSITIONS),
            batch: Some(MAX_BATCH),
            ..ShapeSpec::default()
        };
        assert!(matches!(spec.validate(), Err(ShapeError::Overflow { .. })));
    }

    #[test]
    fn serde_validates() {
        let bad = r#"{"layers":2,"d_model":100,"heads":3}"#;
        assert!(serde_json::from_str::<Shape>(bad).is_err());
        let good: Shape = serde_json::from_str(r#"{"layers":2,"d_model":128}"#).unwrap();
        assert_eq!(good.heads(), 2);
    }
}
