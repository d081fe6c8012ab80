//! A validated decoder shape: GPT-2-style by default, Llama-style (grouped-query
//! attention, gated MLP, RMSNorm, RoPE, untied head, no biases) when asked.

use serde::{Deserialize, Serialize};

use crate::accounting::Accounting;
use crate::architecture::{Mlp, Norm, PositionEncoding, default_d_ff};
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
/// Largest accepted head size.
pub const MAX_HEAD_DIM: u64 = 4096;

/// The dimensions of a decoder as a user writes them; `None` takes the default.
///
/// Turn it into a [`Shape`] with [`ShapeSpec::validate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShapeSpec {
    /// Number of transformer blocks L.
    pub layers: u64,
    /// Residual width d_model.
    pub d_model: u64,
    /// Attention (query) heads h (default d_model / 64, at least 1).
    pub heads: Option<u64>,
    /// Key/value heads (default h: multi-head attention; 1: multi-query;
    /// between: grouped-query). Must divide h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_heads: Option<u64>,
    /// Width of one head (default d_model / h; given, the attention's width
    /// h·head_dim may differ from d_model, as in Gemma).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<u64>,
    /// MLP hidden width (default [`default_d_ff`]: 4·d for GELU, the Llama
    /// rule for gated).
    pub d_ff: Option<u64>,
    /// The MLP (default GELU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp: Option<Mlp>,
    /// The normalisation (default LayerNorm).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm: Option<Norm>,
    /// How positions enter (default a learned table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_encoding: Option<PositionEncoding>,
    /// Whether the LM head is the token embedding (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tie_embeddings: Option<bool>,
    /// Biases on the query/key/value projections (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qkv_bias: Option<bool>,
    /// Biases on the output projection and the MLP matrices (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dense_bias: Option<bool>,
    /// Vocabulary size V (default 50257).
    pub vocab: Option<u64>,
    /// Positions the model accepts: the learned table's rows, or RoPE's
    /// maximum context (default 1024).
    pub positions: Option<u64>,
    /// Sequence length n of one forward pass (default 128).
    pub seq: Option<u64>,
    /// Batch size b (default 1).
    pub batch: Option<u64>,
}

/// The architectural fields of a [`ShapeSpec`], as a request carries them
/// beside depth and width (`None` takes the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchitectureSpec {
    /// Key/value heads.
    pub kv_heads: Option<u64>,
    /// Head size.
    pub head_dim: Option<u64>,
    /// MLP hidden width.
    pub d_ff: Option<u64>,
    /// The MLP.
    pub mlp: Option<Mlp>,
    /// The normalisation.
    pub norm: Option<Norm>,
    /// How positions enter.
    pub position_encoding: Option<PositionEncoding>,
    /// Tied LM head.
    pub tie_embeddings: Option<bool>,
    /// QKV biases.
    pub qkv_bias: Option<bool>,
    /// Output projection and MLP biases.
    pub dense_bias: Option<bool>,
}

impl ArchitectureSpec {
    /// The architecture of `spec`.
    pub fn of(spec: &ShapeSpec) -> Self {
        Self {
            kv_heads: spec.kv_heads,
            head_dim: spec.head_dim,
            d_ff: spec.d_ff,
            mlp: spec.mlp,
            norm: spec.norm,
            position_encoding: spec.position_encoding,
            tie_embeddings: spec.tie_embeddings,
            qkv_bias: spec.qkv_bias,
            dense_bias: spec.dense_bias,
        }
    }

    /// `spec` with these fields.
    pub fn apply(self, spec: ShapeSpec) -> ShapeSpec {
        ShapeSpec {
            kv_heads: self.kv_heads,
            head_dim: self.head_dim,
            d_ff: self.d_ff,
            mlp: self.mlp,
            norm: self.norm,
            position_encoding: self.position_encoding,
            tie_embeddings: self.tie_embeddings,
            qkv_bias: self.qkv_bias,
            dense_bias: self.dense_bias,
            ..spec
        }
    }
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
        let mlp = self.mlp.unwrap_or_default();
        if self.head_dim.is_none() && heads > 0 && !self.d_model.is_multiple_of(heads) {
            return Err(ShapeError::HeadsDoNotDivide {
                d_model: self.d_model,
                heads,
            });
        }
        let shape = Shape {
            layers: self.layers,
            d_model: self.d_model,
            heads,
            kv_heads: self.kv_heads.unwrap_or(heads),
            head_dim: self
                .head_dim
                .unwrap_or(self.d_model.checked_div(heads).unwrap_or(0)),
            d_ff: self.d_ff.unwrap_or(default_d_ff(mlp, self.d_model)),
            mlp,
            norm: self.norm.unwrap_or_default(),
            position_encoding: self.position_encoding.unwrap_or_default(),
            tie_embeddings: self.tie_embeddings.unwrap_or(true),
            qkv_bias: self.qkv_bias.unwrap_or(true),
            dense_bias: self.dense_bias.unwrap_or(true),
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

/// A decoder shape whose dimensions are known to be consistent.
///
/// Fields are read through accessors so that an invalid shape cannot be built;
/// (de)serialisation goes through [`ShapeSpec`] and validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "ShapeSpec", into = "ShapeSpec")]
pub struct Shape {
    layers: u64,
    d_model: u64,
    heads: u64,
    kv_heads: u64,
    head_dim: u64,
    d_ff: u64,
    mlp: Mlp,
    norm: Norm,
    position_encoding: PositionEncoding,
    tie_embeddings: bool,
    qkv_bias: bool,
    dense_bias: bool,
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
            kv_heads: Some(s.kv_heads),
            head_dim: Some(s.head_dim),
            d_ff: Some(s.d_ff),
            mlp: Some(s.mlp),
            norm: Some(s.norm),
            position_encoding: Some(s.position_encoding),
            tie_embeddings: Some(s.tie_embeddings),
            qkv_bias: Some(s.qkv_bias),
            dense_bias: Some(s.dense_bias),
            vocab: Some(s.vocab),
            positions: Some(s.positions),
            seq: Some(s.seq),
            batch: Some(s.batch),
        }
    }
}

impl Shape {
    fn check(&self) -> Result<Accounting, ShapeError> {
        let dims: [(&'static str, u64, u64); 10] = [
            ("layers", self.layers, MAX_LAYERS),
            ("d_model", self.d_model, MAX_D_MODEL),
            ("heads", self.heads, MAX_D_MODEL),
            ("kv_heads", self.kv_heads, MAX_D_MODEL),
            ("head_dim", self.head_dim, MAX_HEAD_DIM),
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
        if self.kv_heads > self.heads || !self.heads.is_multiple_of(self.kv_heads) {
            return Err(ShapeError::KvHeadsDoNotDivide {
                heads: self.heads,
                kv_heads: self.kv_heads,
                valid: divisors(self.heads),
            });
        }
        if self.position_encoding == PositionEncoding::Rope && !self.head_dim.is_multiple_of(2) {
            return Err(ShapeError::OddRopeHeadDim {
                head_dim: self.head_dim,
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
    /// Key/value heads (h for multi-head attention).
    pub fn kv_heads(&self) -> u64 {
        self.kv_heads
    }
    /// Query heads sharing one key/value head, h / kv_heads.
    pub fn group_size(&self) -> u64 {
        self.heads / self.kv_heads
    }
    /// Width of one head (d_model / h unless given).
    pub fn head_dim(&self) -> u64 {
        self.head_dim
    }
    /// Width of all query heads, h·head_dim (d_model unless head_dim was given).
    pub fn attention_width(&self) -> u64 {
        self.heads * self.head_dim
    }
    /// Width of all key (or value) heads, kv_heads·head_dim.
    pub fn kv_width(&self) -> u64 {
        self.kv_heads * self.head_dim
    }
    /// The MLP.
    pub fn mlp(&self) -> Mlp {
        self.mlp
    }
    /// The normalisation.
    pub fn norm(&self) -> Norm {
        self.norm
    }
    /// How positions enter.
    pub fn position_encoding(&self) -> PositionEncoding {
        self.position_encoding
    }
    /// Whether the LM head is the token embedding.
    pub fn tie_embeddings(&self) -> bool {
        self.tie_embeddings
    }
    /// Biases on the query/key/value projections.
    pub fn qkv_bias(&self) -> bool {
        self.qkv_bias
    }
    /// Biases on the output projection and the MLP.
    pub fn dense_bias(&self) -> bool {
        self.dense_bias
    }
    /// The architecture in words: `GQA: 32 query / 8 KV heads (group 4),
    /// head 64 · gated MLP, d_ff 8192 · RMSNorm · RoPE · tied head · no biases`.
    pub fn describe_architecture(&self) -> String {
        let attention = match (self.kv_heads, self.heads) {
            (kv, h) if kv == h => format!("MHA: {h} heads"),
            (1, h) => format!("MQA: {h} query heads / 1 KV head"),
            (kv, h) => format!("GQA: {h} query / {kv} KV heads (group {})", h / kv),
        };
        let mlp = match self.mlp {
            Mlp::Gelu => format!("GELU MLP, d_ff {}", self.d_ff),
            Mlp::Gated => format!("gated MLP (SwiGLU), d_ff {}", self.d_ff),
        };
        let norm = match self.norm {
            Norm::LayerNorm => "LayerNorm",
            Norm::RmsNorm => "RMSNorm",
        };
        let positions = match self.position_encoding {
            PositionEncoding::Learned => format!("learned positions ({})", self.positions),
            PositionEncoding::Rope => format!("RoPE (up to {})", self.positions),
        };
        let head = if self.tie_embeddings {
            "tied head"
        } else {
            "untied head"
        };
        let biases = match (self.qkv_bias, self.dense_bias) {
            (true, true) => "biases",
            (false, false) => "no biases",
            (true, false) => "QKV biases only",
            (false, true) => "no QKV biases",
        };
        format!(
            "{attention}, head {} · {mlp} · {norm} · {positions} · {head} · {biases}",
            self.head_dim
        )
    }

    /// Which of [`ARCHITECTURE_FEATURES`] this shape has.
    fn feature_flags(&self) -> [bool; 8] {
        [
            self.kv_heads != self.heads,
            self.head_dim * self.heads != self.d_model,
            self.mlp == Mlp::Gated,
            self.norm == Norm::RmsNorm,
            self.position_encoding == PositionEncoding::Rope,
            !self.tie_embeddings,
            !self.qkv_bias,
            !self.dense_bias,
        ]
    }

    /// The ways this architecture departs from GPT-2's, as features a
    /// profile's measurements may or may not cover ([`ARCHITECTURE_FEATURES`]).
    pub fn architecture_features(&self) -> Vec<&'static str> {
        ARCHITECTURE_FEATURES
            .iter()
            .zip(self.feature_flags())
            .filter(|(_, on)| *on)
            .map(|(f, _)| *f)
            .collect()
    }

    /// [`Shape::architecture_features`] as bits, one per feature in the order
    /// of [`ARCHITECTURE_FEATURES`] (0 for GPT-2's architecture).
    pub fn architecture_bits(&self) -> u16 {
        self.feature_flags()
            .iter()
            .enumerate()
            .filter(|(_, on)| **on)
            .fold(0, |bits, (i, _)| bits | (1 << i))
    }

    /// Whether every architectural choice is GPT-2's (MHA, head d/h, GELU
    /// MLP, LayerNorm, learned positions, tied head, biases); d_ff may be any.
    pub fn is_gpt2_style(&self) -> bool {
        self.architecture_bits() == 0
    }
    /// The architectural choices that differ from GPT-2's, as a short
    /// stable tag (`kv8.gated.rmsnorm.rope.untied.nobias`; empty for GPT-2).
    pub fn architecture_suffix(&self) -> String {
        let mut parts: Vec<String> = vec![];
        if self.kv_heads != self.heads {
            parts.push(format!("kv{}", self.kv_heads));
        }
        if self.head_dim * self.heads != self.d_model {
            parts.push(format!("dh{}", self.head_dim));
        }
        if self.mlp != Mlp::Gelu {
            parts.push(self.mlp.name().into());
        }
        if self.norm != Norm::LayerNorm {
            parts.push(self.norm.name().into());
        }
        if self.position_encoding != PositionEncoding::Learned {
            parts.push(self.position_encoding.name().into());
        }
        if !self.tie_embeddings {
            parts.push("untied".into());
        }
        match (self.qkv_bias, self.dense_bias) {
            (true, true) => {}
            (false, false) => parts.push("nobias".into()),
            (true, false) => parts.push("qkvbias".into()),
            (false, true) => parts.push("denseonly".into()),
        }
        parts.join(".")
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
    /// `L/d/h/d_ff/n/b/V/P`, then `/` and [`Shape::architecture_suffix`]
    /// where that is not empty: every field, so two shapes have one key
    /// exactly when they are equal (measurement files resume and pool by it;
    /// GPT-2-style shapes keep the keys they always had).
    pub fn key(&self) -> String {
        let key = key_of([
            self.layers,
            self.d_model,
            self.heads,
            self.d_ff,
            self.seq,
            self.batch,
            self.vocab,
            self.positions,
        ]);
        let suffix = self.architecture_suffix();
        if suffix.is_empty() {
            key
        } else {
            format!("{key}/{suffix}")
        }
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

    /// The same shape with other depth, width and heads: d_ff keeps its
    /// ratio to d_model (the default rule when it followed it), the query
    /// heads per key/value head stay, the head size becomes d_model / heads.
    pub fn with_depth_width(&self, layers: u64, d_model: u64, heads: u64) -> Result<Shape, ShapeError> {
        let d_ff = if self.d_ff == default_d_ff(self.mlp, self.d_model) {
            default_d_ff(self.mlp, d_model)
        } else {
            let scaled = (self.d_ff as u128 * d_model as u128).div_ceil(self.d_model as u128);
            u64::try_from(scaled).unwrap_or(u64::MAX)
        };
        // The nearest key/value head count at or below h / g that divides h.
        let wanted = (heads / self.group_size()).max(1);
        let kv_heads = (1..=wanted).rev().find(|k| heads.is_multiple_of(*k)).unwrap_or(1);
        ShapeSpec {
            layers,
            d_model,
            heads: Some(heads),
            kv_heads: Some(kv_heads),
            head_dim: None,
            d_ff: Some(d_ff),
            ..ShapeSpec::from(*self)
        }
        .validate()
    }

    /// The same shape with another count of key/value heads.
    pub fn with_kv_heads(&self, kv_heads: u64) -> Result<Shape, ShapeError> {
        ShapeSpec {
            kv_heads: Some(kv_heads),
            ..ShapeSpec::from(*self)
        }
        .validate()
    }

    /// The same shape with another MLP width.
    pub fn with_d_ff(&self, d_ff: u64) -> Result<Shape, ShapeError> {
        ShapeSpec {
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

/// The ways an architecture can depart from GPT-2's, as profiles record
/// which ones their measurements covered.
pub const ARCHITECTURE_FEATURES: [&str; 8] = [
    "grouped-query attention",
    "own head size",
    "gated MLP",
    "RMSNorm",
    "RoPE",
    "untied head",
    "no QKV biases",
    "no output/MLP biases",
];

/// The divisors of `n` (the valid key/value head counts of n heads).
fn divisors(n: u64) -> String {
    let ds: Vec<String> = (1..=n.min(1 << 16))
        .filter(|k| n.is_multiple_of(*k))
        .map(|k| k.to_string())
        .collect();
    ds.join(", ")
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
        )?;
        let suffix = self.architecture_suffix();
        if !suffix.is_empty() {
            write!(f, " {suffix}")?;
        }
        Ok(())
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
