//! The physical terms a latency model is built from.
//!
//! Each term is a count computed from the shape's accounting; a fitted model
//! multiplies each by a non-negative coefficient with a unit (ms per GFLOP,
//! ms per layer, ...). Fitting and prediction both call [`term_value_in`], so they
//! can never disagree on what a term means. One term depends on a measured
//! fact of the backend as well as on the shape: which operators it splits
//! across threads ([`Parallelism`]); without that fact it is 0.

use serde::{Deserialize, Serialize};

use crate::Phase;
use crate::operators::{OpKind, graph};
use crate::parallelism::Parallelism;
use crate::shape::Shape;

/// A term of the physics-informed latency model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Term {
    /// 1: fixed cost of a forward pass (ms).
    Constant,
    /// L: fixed cost per block: dispatch, launches, synchronisation (ms per layer).
    Layers,
    /// GFLOP of the projections and MLP (ms per GFLOP).
    MatmulGflop,
    /// GFLOP of attention scores and weighted sum, growing with n² (ms per GFLOP).
    AttentionGflop,
    /// GFLOP of the LM head (ms per GFLOP).
    LmHeadGflop,
    /// MB of weights read once per forward (ms per MB).
    WeightMb,
    /// Million elements moved by LayerNorm, GELU, residual adds and softmax (ms per M).
    ElementwiseMelem,
    /// L·b·h: per-head work items of attention (ms per head-layer).
    HeadLayers,
    /// Million logits written (T·V): the LM head's output traffic, independent of width.
    LogitsMelem,
    /// Matmul GFLOP × 64/d_model: the extra cost of narrow matrices, where GEMM
    /// kernels run below their peak (ms per GFLOP at d_model = 64).
    NarrowMatmulGflop,
    /// Matmul GFLOP × 128/T (T = n·b tokens): the extra cost of skinny matrices
    /// when few tokens are processed (ms per GFLOP at T = 128).
    ShortMatmulGflop,
    /// Decode: MB of weights read per step (blocks and LM head), once whatever b is (ms per MB).
    DecodeWeightMb,
    /// Decode: MB of keys and values read from the KV cache per step, 2·L·b·c·d·4 (ms per MB).
    KvCacheMb,
    /// Decode: GFLOP of projections and MLP for b new tokens (ms per GFLOP).
    DecodeMatmulGflop,
    /// Decode: GFLOP of the LM head for b new tokens (ms per GFLOP).
    DecodeLmHeadGflop,
    /// Decode: MB of block weights read per step (without the LM head), so
    /// blocks and the LM head may stream at different speeds (ms per MB).
    DecodeBlockWeightMb,
    /// Decode: million logits written per step, b·V (ms per M).
    DecodeLogitsMelem,
    /// Decode: MB of weights read per step when b > 1, else 0: several
    /// sequences turn each matrix-vector product into a small matrix product,
    /// a different and here slower kernel (ms per MB).
    DecodeBatchedWeightMb,
    /// Decode: MB read per step (weights + KV cache), counted only when that
    /// working set exceeds 64 MB. A step reads the same bytes every token, so
    /// while they fit in the last-level cache they come from it; past the
    /// cache's size an LRU cache keeps almost none of a cyclic stream: a cliff
    /// (ms per MB). The variants differ only in where the cliff is; fitting
    /// keeps the one the held-out error prefers, if any.
    #[serde(rename = "decode_streamed_mb_over_64")]
    DecodeStreamedMbOver64,
    /// As [`Term::DecodeStreamedMbOver64`], cliff at 96 MB.
    #[serde(rename = "decode_streamed_mb_over_96")]
    DecodeStreamedMbOver96,
    /// As [`Term::DecodeStreamedMbOver64`], cliff at 128 MB.
    #[serde(rename = "decode_streamed_mb_over_128")]
    DecodeStreamedMbOver128,
    /// As [`Term::DecodeStreamedMbOver64`], cliff at 192 MB.
    #[serde(rename = "decode_streamed_mb_over_192")]
    DecodeStreamedMbOver192,
    /// As [`Term::DecodeStreamedMbOver64`], cliff at 256 MB.
    #[serde(rename = "decode_streamed_mb_over_256")]
    DecodeStreamedMbOver256,
    /// Decode: MB of block weights when b = 1, else 0. One sequence makes
    /// every projection a matrix-vector product, a kernel of its own whose
    /// speed per byte differs from the small matrix products of b > 1 (ms per MB).
    DecodeGemvBlockWeightMb,
    /// Decode: b × MB of the block weight matrices whose product stays on
    /// one thread, when b > 1, else 0; each sequence's row then costs about
    /// as much as a pass over the weights (ms per MB). Which products stay
    /// on one thread is measured ([`Parallelism`]); a profile fitted before
    /// that was measured counts those under 192³ multiply-adds, burn-flex
    /// 0.22's threshold, which the flex probes of 2026-12-03 put at 194³.
    DecodeSerialGemmWeightMb,
    /// Decode: GFLOP of the LM head when b > 1, else 0: several sequences turn
    /// the head's matrix-vector product into a matrix product (ms per GFLOP).
    DecodeBatchedLmHeadGflop,
    /// Decode: MB read per step (weights + KV cache) when b = 1 and that
    /// working set exceeds 64 MB, else 0. The matrix-vector products of one
    /// sequence stream the weights as they are, so they run at the speed of
    /// wherever the weights live: about twice as fast from the last-level
    /// cache as from memory here. The products of b > 1 first pack the
    /// weights into blocks and depend less on it, so the cliff of
    /// [`Term::DecodeStreamedMbOver64`] alone, shared by every batch, is too
    /// small for one sequence and too large for several (ms per MB).
    #[serde(rename = "decode_gemv_streamed_mb_over_64")]
    DecodeGemvStreamedMbOver64,
    /// As [`Term::DecodeGemvStreamedMbOver64`], cliff at 96 MB.
    #[serde(rename = "decode_gemv_streamed_mb_over_96")]
    DecodeGemvStreamedMbOver96,
    /// As [`Term::DecodeGemvStreamedMbOver64`], cliff at 128 MB.
    #[serde(rename = "decode_gemv_streamed_mb_over_128")]
    DecodeGemvStreamedMbOver128,
    /// Rotary embeddings applied per forward (2 per block: queries and
    /// keys; 0 with learned positions): their fixed cost per launch. Burn
    /// 0.22's `RotaryEncoding::apply` builds a 2×4 tensor, reshapes, runs a
    /// small batched matrix product, multiplies and sums on every call; the
    /// ablations measured RoPE at up to 16% of a deep narrow model
    /// (ms per launch). The counts of these launch terms come from the
    /// operator graph, so an architecture's operator list decides them.
    RopeLaunches,
    /// RMSNorms applied per forward (2 per block and the final one; 0 with
    /// LayerNorm): the fixed cost per launch (ms per launch).
    RmsNormLaunches,
    /// Gated products `silu(gate) ⊙ up` per forward (1 per block of a gated
    /// MLP, 0 with GELU): the fixed cost per launch of the gated MLP's extra
    /// operators, its third matrix's bytes and FLOPs being in the other terms
    /// (ms per launch).
    SiluMulLaunches,
    /// Decode: GFLOP of attention scores and weighted sum for b new tokens,
    /// 4·L·b·h·c·d_head. With as many key/value heads as query heads it is
    /// proportional to [`Term::KvCacheMb`]; grouped-query attention reads
    /// fewer bytes for the same FLOPs, and its folded products (g query rows
    /// per key/value head) are matrix products, not matrix-vector ones
    /// (ms per GFLOP).
    DecodeAttentionGflop,
    /// Prefill: million values rotated by rotary embeddings, T·(h + kv)·d_head
    /// per block, apart from the other elementwise work because a rotation
    /// costs many times an add per value in Burn (ms per M).
    RopeMelem,
    /// Decode: times per step the backend's worker threads are woken, an
    /// operator split across threads following one run on one thread, in the
    /// order the step runs them (embeddings, each block's operators, the final
    /// norm and LM head). A batched decode step of GEMMs just below a
    /// backend's parallel threshold alternates with attention above its own;
    /// each switch pays for waking the pool. Which operators split is
    /// measured ([`Parallelism`], from `bench ops`); 0 where it was not
    /// (ms per wake).
    DecodeParallelWakes,
}

impl Term {
    /// Every term, in a stable order.
    pub const ALL: [Term; 35] = [
        Term::Constant,
        Term::Layers,
        Term::MatmulGflop,
        Term::AttentionGflop,
        Term::LmHeadGflop,
        Term::WeightMb,
        Term::ElementwiseMelem,
        Term::HeadLayers,
        Term::LogitsMelem,
        Term::NarrowMatmulGflop,
        Term::ShortMatmulGflop,
        Term::DecodeWeightMb,
        Term::KvCacheMb,
        Term::DecodeMatmulGflop,
        Term::DecodeLmHeadGflop,
        Term::DecodeBlockWeightMb,
        Term::DecodeLogitsMelem,
        Term::DecodeBatchedWeightMb,
        Term::DecodeStreamedMbOver64,
        Term::DecodeStreamedMbOver96,
        Term::DecodeStreamedMbOver128,
        Term::DecodeStreamedMbOver192,
        Term::DecodeStreamedMbOver256,
        Term::DecodeGemvBlockWeightMb,
        Term::DecodeSerialGemmWeightMb,
        Term::DecodeBatchedLmHeadGflop,
        Term::DecodeGemvStreamedMbOver64,
        Term::DecodeGemvStreamedMbOver96,
        Term::DecodeGemvStreamedMbOver128,
        Term::RopeLaunches,
        Term::RmsNormLaunches,
        Term::SiluMulLaunches,
        Term::DecodeAttentionGflop,
        Term::RopeMelem,
        Term::DecodeParallelWakes,
    ];

    /// The candidate terms of a decode model (a shape's `seq` is the context).
    pub const DECODE: [Term; 26] = [
        Term::Constant,
        Term::Layers,
        Term::HeadLayers,
        Term::DecodeWeightMb,
        Term::KvCacheMb,
        Term::DecodeMatmulGflop,
        Term::DecodeLmHeadGflop,
        Term::DecodeBlockWeightMb,
        Term::DecodeLogitsMelem,
        Term::DecodeBatchedWeightMb,
        Term::DecodeStreamedMbOver64,
        Term::DecodeStreamedMbOver96,
        Term::DecodeStreamedMbOver128,
        Term::DecodeStreamedMbOver192,
        Term::DecodeStreamedMbOver256,
        Term::DecodeGemvBlockWeightMb,
        Term::DecodeSerialGemmWeightMb,
        Term::DecodeBatchedLmHeadGflop,
        Term::DecodeGemvStreamedMbOver64,
        Term::DecodeGemvStreamedMbOver96,
        Term::DecodeGemvStreamedMbOver128,
        Term::RopeLaunches,
        Term::RmsNormLaunches,
        Term::SiluMulLaunches,
        Term::DecodeAttentionGflop,
        Term::DecodeParallelWakes,
    ];

    /// The candidate terms of a prefill model.
    pub const PREFILL: [Term; 15] = [
        Term::Constant,
        Term::Layers,
        Term::MatmulGflop,
        Term::AttentionGflop,
        Term::LmHeadGflop,
        Term::WeightMb,
        Term::ElementwiseMelem,
        Term::HeadLayers,
        Term::LogitsMelem,
        Term::NarrowMatmulGflop,
        Term::ShortMatmulGflop,
        Term::RopeLaunches,
        Term::RmsNormLaunches,
        Term::SiluMulLaunches,
        Term::RopeMelem,
    ];

    /// The prefill terms onboarding's experimental design pins down: the
    /// first 11 of [`Term::PREFILL`], all but the architecture's launch and
    /// rotation terms, which are 0 on GPT-2-style shapes and are learnt from
    /// the Llama sweeps, their ablations included.
    pub const DESIGN: &'static [Term] = Term::PREFILL.split_at(11).0;

    /// Whether this term jumps (from 0 to its full value) where the decode
    /// working set outgrows a cache size, instead of growing smoothly.
    pub fn is_cache_cliff(self) -> bool {
        matches!(
            self,
            Term::DecodeStreamedMbOver64
                | Term::DecodeStreamedMbOver96
                | Term::DecodeStreamedMbOver128
                | Term::DecodeStreamedMbOver192
                | Term::DecodeStreamedMbOver256
                | Term::DecodeGemvStreamedMbOver64
                | Term::DecodeGemvStreamedMbOver96
                | Term::DecodeGemvStreamedMbOver128
        )
    }

    /// Stable snake_case name (as in profiles).
    pub fn name(self) -> &'static str {
        match self {
            Term::Constant => "constant",
            Term::Layers => "layers",
            Term::MatmulGflop => "matmul_gflop",
            Term::AttentionGflop => "attention_gflop",
            Term::LmHeadGflop => "lm_head_gflop",
            Term::WeightMb => "weight_mb",
            Term::ElementwiseMelem => "elementwise_melem",
            Term::HeadLayers => "head_layers",
            Term::LogitsMelem => "logits_melem",
            Term::NarrowMatmulGflop => "narrow_matmul_gflop",
            Term::ShortMatmulGflop => "short_matmul_gflop",
            Term::DecodeWeightMb => "decode_weight_mb",
            Term::KvCacheMb => "kv_cache_mb",
            Term::DecodeMatmulGflop => "decode_matmul_gflop",
            Term::DecodeLmHeadGflop => "decode_lm_head_gflop",
            Term::DecodeBlockWeightMb => "decode_block_weight_mb",
            Term::DecodeLogitsMelem => "decode_logits_melem",
            Term::DecodeBatchedWeightMb => "decode_batched_weight_mb",
            Term::DecodeStreamedMbOver64 => "decode_streamed_mb_over_64",
            Term::DecodeStreamedMbOver96 => "decode_streamed_mb_over_96",
            Term::DecodeStreamedMbOver128 => "decode_streamed_mb_over_128",
            Term::DecodeStreamedMbOver192 => "decode_streamed_mb_over_192",
            Term::DecodeStreamedMbOver256 => "decode_streamed_mb_over_256",
            Term::DecodeGemvBlockWeightMb => "decode_gemv_block_weight_mb",
            Term::DecodeSerialGemmWeightMb => "decode_serial_gemm_weight_mb",
            Term::DecodeBatchedLmHeadGflop => "decode_batched_lm_head_gflop",
            Term::DecodeGemvStreamedMbOver64 => "decode_gemv_streamed_mb_over_64",
            Term::DecodeGemvStreamedMbOver96 => "decode_gemv_streamed_mb_over_96",
            Term::DecodeGemvStreamedMbOver128 => "decode_gemv_streamed_mb_over_128",
            Term::RopeLaunches => "rope_launches",
            Term::RmsNormLaunches => "rms_norm_launches",
            Term::SiluMulLaunches => "silu_mul_launches",
            Term::DecodeAttentionGflop => "decode_attention_gflop",
            Term::RopeMelem => "rope_melem",
            Term::DecodeParallelWakes => "decode_parallel_wakes",
        }
    }

    /// Unit of the coefficient that multiplies this term.
    pub fn coefficient_unit(self) -> &'static str {
        match self {
            Term::Constant => "ms",
            Term::Layers => "ms/layer",
            Term::MatmulGflop
            | Term::AttentionGflop
            | Term::LmHeadGflop
            | Term::NarrowMatmulGflop
            | Term::ShortMatmulGflop
            | Term::DecodeMatmulGflop
            | Term::DecodeLmHeadGflop
            | Term::DecodeBatchedLmHeadGflop
            | Term::DecodeAttentionGflop => "ms/GFLOP",
            Term::WeightMb
            | Term::DecodeWeightMb
            | Term::KvCacheMb
            | Term::DecodeBlockWeightMb
            | Term::DecodeBatchedWeightMb
            | Term::DecodeStreamedMbOver64
            | Term::DecodeStreamedMbOver96
            | Term::DecodeStreamedMbOver128
            | Term::DecodeStreamedMbOver192
            | Term::DecodeStreamedMbOver256
            | Term::DecodeGemvBlockWeightMb
            | Term::DecodeSerialGemmWeightMb
            | Term::DecodeGemvStreamedMbOver64
            | Term::DecodeGemvStreamedMbOver96
            | Term::DecodeGemvStreamedMbOver128 => "ms/MB",
            Term::ElementwiseMelem | Term::LogitsMelem | Term::DecodeLogitsMelem | Term::RopeMelem => {
                "ms/Melem"
            }
            Term::HeadLayers => "ms/(head·layer)",
            Term::RopeLaunches | Term::RmsNormLaunches | Term::SiluMulLaunches => "ms/launch",
            Term::DecodeParallelWakes => "ms/wake",
        }
    }

    /// Whether its value depends on the backend's measured [`Parallelism`].
    pub fn reads_parallelism(self) -> bool {
        matches!(self, Term::DecodeParallelWakes | Term::DecodeSerialGemmWeightMb)
    }

    /// Which component of the forward pass this term's time belongs to.
    pub fn component(self) -> Component {
        match self {
            Term::Constant => Component::Constant,
            Term::Layers
            | Term::RopeLaunches
            | Term::RmsNormLaunches
            | Term::SiluMulLaunches
            | Term::DecodeParallelWakes => Component::PerLayerFixed,
            // Split further by FLOP share in predict.
            Term::MatmulGflop
            | Term::NarrowMatmulGflop
            | Term::ShortMatmulGflop
            | Term::DecodeMatmulGflop => Component::Mlp,
            Term::AttentionGflop | Term::HeadLayers | Term::RopeMelem => Component::Attention,
            Term::KvCacheMb | Term::DecodeAttentionGflop => Component::KvCache,
            Term::LmHeadGflop
            | Term::LogitsMelem
            | Term::DecodeLmHeadGflop
            | Term::DecodeLogitsMelem
            | Term::DecodeBatchedLmHeadGflop => Component::LmHead,
            Term::WeightMb
            | Term::ElementwiseMelem
            | Term::DecodeWeightMb
            | Term::DecodeBlockWeightMb
            | Term::DecodeBatchedWeightMb
            | Term::DecodeStreamedMbOver64
            | Term::DecodeStreamedMbOver96
            | Term::DecodeStreamedMbOver128
            | Term::DecodeStreamedMbOver192
            | Term::DecodeStreamedMbOver256
            | Term::DecodeGemvBlockWeightMb
            | Term::DecodeSerialGemmWeightMb
            | Term::DecodeGemvStreamedMbOver64
            | Term::DecodeGemvStreamedMbOver96
            | Term::DecodeGemvStreamedMbOver128 => Component::MemoryTraffic,
        }
    }
}

/// Where time goes in a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// Attention: QKV/out projections, scores, weighted sum.
    Attention,
    /// The MLP.
    Mlp,
    /// The LM head.
    LmHead,
    /// Fixed cost per layer.
    PerLayerFixed,
    /// Memory-bound traffic (weights, elementwise ops).
    MemoryTraffic,
    /// Reading the KV cache (decode).
    KvCache,
    /// Fixed cost per forward.
    Constant,
}

impl Component {
    /// Human label.
    pub fn label(self) -> &'static str {
        match self {
            Component::Attention => "attention",
            Component::Mlp => "MLP",
            Component::LmHead => "LM head",
            Component::PerLayerFixed => "per-layer fixed",
            Component::MemoryTraffic => "memory traffic",
            Component::KvCache => "KV cache",
            Component::Constant => "constant",
        }
    }
}

fn matmul_gflop(shape: &Shape) -> f64 {
    let a = shape.accounting();
    (a.flops.attention_projections + a.flops.mlp) as f64 / 1e9
}

/// The value of one term for a shape, on a backend of unknown parallelism
/// ([`Term::DecodeParallelWakes`] is 0).
pub fn term_value(term: Term, shape: &Shape) -> f64 {
    term_value_in(term, shape, None)
}

/// The value of one term for a shape on a backend whose operators split
/// across threads as `parallelism` says.
pub fn term_value_in(term: Term, shape: &Shape, parallelism: Option<&Parallelism>) -> f64 {
    let a = shape.accounting();
    match term {
        Term::Constant => 1.0,
        Term::Layers => shape.layers() as f64,
        Term::MatmulGflop => matmul_gflop(shape),
        Term::AttentionGflop => a.flops.attention_scores as f64 / 1e9,
        Term::LmHeadGflop => a.flops.lm_head as f64 / 1e9,
        Term::WeightMb => (a.bytes.block_weights + a.params.token_embedding * 4) as f64 / 1e6,
        Term::ElementwiseMelem => a.bytes.elementwise_elements as f64 / 1e6,
        Term::HeadLayers => (shape.layers() * shape.batch() * shape.heads()) as f64,
        Term::LogitsMelem => (shape.tokens() * shape.vocab()) as f64 / 1e6,
        Term::NarrowMatmulGflop => matmul_gflop(shape) * 64.0 / shape.d_model() as f64,
        Term::ShortMatmulGflop => matmul_gflop(shape) * 128.0 / shape.tokens() as f64,
        Term::DecodeWeightMb => a.decode.weight_bytes as f64 / 1e6,
        Term::KvCacheMb => a.decode.kv_bytes as f64 / 1e6,
        Term::DecodeMatmulGflop => (a.decode.flops.attention_projections + a.decode.flops.mlp) as f64 / 1e9,
        Term::DecodeLmHeadGflop => a.decode.flops.lm_head as f64 / 1e9,
        Term::DecodeBlockWeightMb => a.bytes.block_weights as f64 / 1e6,
        Term::DecodeLogitsMelem => (shape.batch() * shape.vocab()) as f64 / 1e6,
        Term::DecodeBatchedWeightMb => {
            if shape.batch() > 1 {
                a.decode.weight_bytes as f64 / 1e6
            } else {
                0.0
            }
        }
        Term::DecodeStreamedMbOver64 => streamed_mb(shape, 64.0),
        Term::DecodeStreamedMbOver96 => streamed_mb(shape, 96.0),
        Term::DecodeStreamedMbOver128 => streamed_mb(shape, 128.0),
        Term::DecodeStreamedMbOver192 => streamed_mb(shape, 192.0),
        Term::DecodeStreamedMbOver256 => streamed_mb(shape, 256.0),
        Term::DecodeGemvBlockWeightMb => {
            if shape.batch() == 1 {
                a.bytes.block_weights as f64 / 1e6
            } else {
                0.0
            }
        }
        Term::DecodeSerialGemmWeightMb => serial_gemm_weight_mb(shape, parallelism),
        Term::DecodeBatchedLmHeadGflop => {
            if shape.batch() > 1 {
                a.decode.flops.lm_head as f64 / 1e9
            } else {
                0.0
            }
        }
        Term::DecodeGemvStreamedMbOver64 => gemv_streamed_mb(shape, 64.0),
        Term::DecodeGemvStreamedMbOver96 => gemv_streamed_mb(shape, 96.0),
        Term::DecodeGemvStreamedMbOver128 => gemv_streamed_mb(shape, 128.0),
        Term::DecodeAttentionGflop => a.decode.flops.attention_scores as f64 / 1e9,
        Term::RopeLaunches => launches(shape, |k| matches!(k, OpKind::Rope { .. })),
        Term::RmsNormLaunches => launches(shape, |k| matches!(k, OpKind::RmsNorm { .. })),
        Term::SiluMulLaunches => launches(shape, |k| matches!(k, OpKind::SiluMul { .. })),
        Term::DecodeParallelWakes => parallelism.map_or(0.0, |p| parallel_wakes(shape, p)),
        Term::RopeMelem => {
            prefill_sum(shape, |k| match *k {
                OpKind::Rope { rows, width } => rows * width,
                _ => 0,
            }) as f64
                / 1e6
        }
    }
}

/// Σ over the prefill graph of each operator's runs × `per_run` of its kind.
fn prefill_sum(shape: &Shape, per_run: impl Fn(&OpKind) -> u64) -> u64 {
    graph(shape, Phase::Prefill)
        .iter()
        .map(|o| o.count * per_run(&o.kind))
        .sum()
}

/// Launches per forward of the operators `is_class` picks (the same in
/// prefill and in a decode step: the graphs differ in sizes, not in operators).
fn launches(shape: &Shape, is_class: impl Fn(&OpKind) -> bool) -> f64 {
    prefill_sum(shape, |k| u64::from(is_class(k))) as f64
}

/// Multiply-adds below which burn-flex runs a matrix product on one thread
/// (`PARALLEL_THRESHOLD` in burn-flex 0.22's `ops/matmul.rs`): only for
/// profiles fitted without a measured [`Parallelism`], whose coefficients were
/// fitted with it.
const LEGACY_SERIAL_GEMM_MAX_MULADDS: u64 = 192 * 192 * 192;

/// b × MB of the decode step's block weight matrices multiplied on one thread,
/// when b > 1 (see [`Term::DecodeSerialGemmWeightMb`]).
fn serial_gemm_weight_mb(shape: &Shape, parallelism: Option<&Parallelism>) -> f64 {
    let b = shape.batch();
    if b == 1 {
        return 0.0;
    }
    let on_one_thread = |kind: &OpKind, k: u64, n: u64| match parallelism {
        Some(p) => !p.runs_parallel(kind),
        None => b.saturating_mul(k * n) < LEGACY_SERIAL_GEMM_MAX_MULADDS,
    };
    // Per block: the linear layers of the decode step (QKV, output, MLP).
    let serial: u64 = graph(shape, Phase::Decode)
        .iter()
        .filter_map(|o| match o.kind {
            OpKind::Linear { k, n, .. } if on_one_thread(&o.kind, k, n) => Some(k * n),
            _ => None,
        })
        .sum();
    (b * shape.layers() * serial * crate::accounting::BYTES_PER_ELEMENT) as f64 / 1e6
}

/// Serial → parallel switches in one decode step, operators in the order
/// the step runs them (see [`Term::DecodeParallelWakes`]).
fn parallel_wakes(shape: &Shape, parallelism: &Parallelism) -> f64 {
    // The graph lists the step's operators in the order they run, a block's
    // once: those run per block (count L, the K and V writes 2L) stand
    // between the embeddings and the final norm and LM head, which run once.
    let ops = graph(shape, Phase::Decode);
    let per_block = |o: &crate::operators::Operator| o.count > 1;
    let first = ops.iter().position(per_block).unwrap_or(ops.len());
    let end = ops.iter().rposition(per_block).map_or(first, |i| i + 1);
    let parallel: Vec<bool> = ops.iter().map(|o| parallelism.runs_parallel(&o.kind)).collect();
    let order = parallel[..first]
        .iter()
        .chain((0..shape.layers()).flat_map(|_| &parallel[first..end]))
        .chain(&parallel[end..]);
    let mut wakes = 0u64;
    let mut previous = false;
    for &now in order {
        wakes += u64::from(now && !previous);
        previous = now;
    }
    wakes as f64
}

/// Bytes a decode step reads (weights + KV cache) in MB, or 0 while they fit in `cache_mb`.
fn streamed_mb(shape: &Shape, cache_mb: f64) -> f64 {
    let d = shape.accounting().decode;
    let mb = (d.weight_bytes + d.kv_bytes) as f64 / 1e6;
    if mb > cache_mb { mb } else { 0.0 }
}

/// As [`streamed_mb`] for one sequence (b = 1), else 0
/// (see [`Term::DecodeGemvStreamedMbOver64`]).
fn gemv_streamed_mb(shape: &Shape, cache_mb: f64) -> f64 {
    if shape.batch() == 1 {
        streamed_mb(shape, cache_mb)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::ShapeSpec;

    #[test]
    fn names_round_trip_through_serde() {
        for t in Term::ALL {
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.name()));
        }
    }

    #[test]
    fn prefill_and_decode_candidates_partition_the_phase_specific_terms() {
        let shared = [
            Term::Constant,
            Term::Layers,
            Term::HeadLayers,
            Term::RopeLaunches,
            Term::RmsNormLaunches,
            Term::SiluMulLaunches,
        ];
        for t in Term::ALL {
            let (p, d) = (Term::PREFILL.contains(&t), Term::DECODE.contains(&t));
            assert!(p || d, "{t:?} is a candidate of neither phase");
            assert_eq!(p && d, shared.contains(&t), "{t:?}");
        }
    }

    #[test]
    fn decode_terms_sum_to_the_decode_flops() {
        let s = ShapeSpec {
            seq: Some(512),
            batch: Some(2),
            ..ShapeSpec::new(4, 256)
        }
        .validate()
        .unwrap();
        let dc = s.accounting().decode;
        let sum = term_value(Term::DecodeMatmulGflop, &s) + term_value(Term::DecodeLmHeadGflop, &s);
        let expected = (dc.flops.total - dc.flops.attention_scores) as f64 / 1e9;
        assert!((sum - expected).abs() < 1e-12);
        // KV: 2 × 4 layers × 2 sequences × 512 × 256 × 4 bytes.
        assert!((term_value(Term::KvCacheMb, &s) - 2.0 * 4.0 * 2.0 * 512.0 * 256.0 * 4.0 / 1e6).abs() < 1e-9);
    }

    #[test]
    fn the_streamed_term_jumps_at_its_cache_size() {
        let at = |layers| {
            let s = ShapeSpec {
                vocab: Some(256),
                ..ShapeSpec::new(layers, 512)
            }
            .validate()
            .unwrap();
            let d = s.accounting().decode;
            (
                (d.weight_bytes + d.kv_bytes) as f64 / 1e6,
                term_value(Term::DecodeStreamedMbOver64, &s),
            )
        };
        // ~12.6 MB per layer of d = 512 (weights + KV at c = 128).
        let (small, below) = at(4);
        let (large, above) = at(8);
        assert!(small < 64.0 && below == 0.0);
        assert!(large > 64.0 && above == large);
    }

    #[test]
    fn the_gemv_streamed_term_counts_one_sequence_past_its_cache_size_only() {
        let at = |layers, batch| {
            ShapeSpec {
                vocab: Some(256),
                batch: Some(batch),
                ..ShapeSpec::new(layers, 512)
            }
            .validate()
            .unwrap()
        };
        let (small, large) = (at(4, 1), at(8, 1));
        assert_eq!(term_value(Term::DecodeGemvStreamedMbOver64, &small), 0.0);
        assert_eq!(
            term_value(Term::DecodeGemvStreamedMbOver64, &large),
            term_value(Term::DecodeStreamedMbOver64, &large)
        );
        assert!(term_value(Term::DecodeGemvStreamedMbOver64, &large) > 64.0);
        // Two sequences: the shared cliff applies, the one-sequence one does not.
        let batched = at(8, 2);
        assert!(term_value(Term::DecodeStreamedMbOver64, &batched) > 64.0);
        assert_eq!(term_value(Term::DecodeGemvStreamedMbOver64, &batched), 0.0);
        assert!(Term::DecodeGemvStreamedMbOver96.is_cache_cliff());
    }

    #[test]
    fn gemv_and_serial_gemm_terms_follow_the_batch_and_matrix_sizes() {
        let at = |layers, d, batch| {
            ShapeSpec {
                batch: Some(batch),
                ..ShapeSpec::new(layers, d)
            }
            .validate()
            .unwrap()
        };
        let one = at(4, 256, 1);
        let block_mb = one.accounting().bytes.block_weights as f64 / 1e6;
        assert_eq!(term_value(Term::DecodeGemvBlockWeightMb, &one), block_mb);
        assert_eq!(term_value(Term::DecodeSerialGemmWeightMb, &one), 0.0);
        // d = 256, b = 2: every product is below 192³, all four matrices count twice.
        let two = at(4, 256, 2);
        assert_eq!(term_value(Term::DecodeGemvBlockWeightMb, &two), 0.0);
        let all = 2.0 * 4.0 * 12.0 * 256.0 * 256.0 * 4.0 / 1e6;
        assert!((term_value(Term::DecodeSerialGemmWeightMb, &two) - all).abs() < 1e-9);
        // d = 1024, b = 4: only the output projection (4·1024² < 192³) stays on one thread.
        let wide = at(2, 1024, 4);
        let proj = 4.0 * 2.0 * 1024.0 * 1024.0 * 4.0 / 1e6;
        assert!((term_value(Term::DecodeSerialGemmWeightMb, &wide) - proj).abs() < 1e-9);
        // With a measured parallelism, its threshold decides: here every
        // batched product of 2·256·256 multiply-adds or more splits.
        use crate::parallelism::{CoresReading, Parallelism};
        let gemm = |batch, n| OpKind::Linear {
            batch,
            rows: 1,
            k: 256,
            n,
            bias: false,
        };
        let measured = Parallelism::fit(&[
            CoresReading {
                op: gemm(2, 128),
                cores: 1.0,
            },
            CoresReading {
                op: gemm(2, 256),
                cores: 1.8,
            },
        ])
        .unwrap();
        let value = |s| term_value_in(Term::DecodeSerialGemmWeightMb, s, Some(&measured));
        assert_eq!(value(&two), 0.0);
        assert_eq!(value(&one), 0.0);
        // At b = 4, d = 1024 nothing is below it either, where 192³ kept the projection serial.
        assert_eq!(value(&wide), 0.0);
    }

    #[test]
    fn the_design_terms_are_the_prefill_terms_without_the_architecture_ones() {
        let architecture = [
            Term::RopeLaunches,
            Term::RmsNormLaunches,
            Term::SiluMulLaunches,
            Term::RopeMelem,
        ];
        assert_eq!(Term::DESIGN.len() + architecture.len(), Term::PREFILL.len());
        for t in Term::PREFILL {
            assert_eq!(Term::DESIGN.contains(&t), !architecture.contains(&t), "{t:?}");
        }
    }

    #[test]
    fn decode_attention_flops_follow_the_query_heads_and_kv_bytes_the_kv_heads() {
        let at = |kv_heads| {
            ShapeSpec {
                heads: Some(8),
                kv_heads: Some(kv_heads),
                seq: Some(512),
                ..ShapeSpec::new(4, 512)
            }
            .validate()
            .unwrap()
        };
        let (mha, gqa) = (at(8), at(2));
        // 4 · L · b · h · c · d_head.
        let flops = 4.0 * 4.0 * 8.0 * 512.0 * 64.0 / 1e9;
        assert!((term_value(Term::DecodeAttentionGflop, &mha) - flops).abs() < 1e-12);
        assert_eq!(
            term_value(Term::DecodeAttentionGflop, &gqa),
            term_value(Term::DecodeAttentionGflop, &mha)
        );
        let ratio = term_value(Term::KvCacheMb, &mha) / term_value(Term::KvCacheMb, &gqa);
        assert!((ratio - 4.0).abs() < 1e-12);
    }

    #[test]
    fn architecture_terms_count_the_graphs_operators_and_are_zero_for_gpt2() {
        let gpt2 = ShapeSpec::new(6, 256).validate().unwrap();
        for t in [
            Term::RopeLaunches,
            Term::RmsNormLaunches,
            Term::SiluMulLaunches,
            Term::RopeMelem,
        ] {
            assert_eq!(term_value(t, &gpt2), 0.0, "{t:?}");
        }
        // Llama-style: 6 blocks of d 256, 4 heads of 64, 2 KV heads, seq 128.
        let llama = ShapeSpec {
            heads: Some(4),
            kv_heads: Some(2),
            mlp: Some(crate::Mlp::Gated),
            norm: Some(crate::Norm::RmsNorm),
            position_encoding: Some(crate::PositionEncoding::Rope),
            ..ShapeSpec::new(6, 256)
        }
        .validate()
        .unwrap();
        assert_eq!(term_value(Term::RopeLaunches, &llama), 12.0);
        assert_eq!(term_value(Term::RmsNormLaunches, &llama), 13.0);
        assert_eq!(term_value(Term::SiluMulLaunches, &llama), 6.0);
        // 128 tokens × (4 + 2) heads × 64 per block.
        assert_eq!(
            term_value(Term::RopeMelem, &llama),
            6.0 * 128.0 * 6.0 * 64.0 / 1e6
        );
        // The launches are the decode graph's too.
        let decode = graph(&llama, Phase::Decode);
        let ropes: u64 = decode
            .iter()
            .filter(|o| matches!(o.kind, OpKind::Rope { .. }))
            .map(|o| o.count)
            .sum();
        assert_eq!(ropes as f64, term_value(Term::RopeLaunches, &llama));
    }

    #[test]
    fn wakes_count_each_switch_from_one_thread_to_several_in_step_order() {
        use crate::parallelism::{CoresReading, Parallelism};
        let s = ShapeSpec::new(4, 256).validate().unwrap();
        // Without a measured parallelism the term is 0.
        assert_eq!(term_value(Term::DecodeParallelWakes, &s), 0.0);
        let decode = graph(&s, Phase::Decode);
        let of = |pick: fn(&OpKind) -> bool| decode.iter().find(|o| pick(&o.kind)).unwrap().kind;
        let attention = of(|k| matches!(k, OpKind::Attention { .. }));
        let linear = of(|k| matches!(k, OpKind::Linear { .. }));
        // A parallelism where attention and the linear layers read these
        // cores, and two other classes one core (as a pool that does not
        // spin reads: see `pool_spins`).
        let measured = |attention_cores, linear_cores| {
            let one_core = |op| CoresReading { op, cores: 1.0 };
            Parallelism::fit(&[
                CoresReading {
                    op: attention,
                    cores: attention_cores,
                },
                CoresReading {
                    op: linear,
                    cores: linear_cores,
                },
                one_core(OpKind::Add { elements: 1024 }),
                one_core(OpKind::Gelu { elements: 1024 }),
            ])
            .unwrap()
        };
        // Attention alone splits: one wake per block.
        let p = measured(1.9, 1.0);
        assert_eq!(term_value_in(Term::DecodeParallelWakes, &s, Some(&p)), 4.0);
        // Nothing splits: no wake.
        let p = measured(1.0, 1.0);
        assert_eq!(term_value_in(Term::DecodeParallelWakes, &s, Some(&p)), 0.0);
        // Every linear layer splits, attention too, the rest not: each run of
        // parallel operators between serial ones is one wake; count the runs
        // of a block from the graph itself.
        let p = measured(1.9, 1.9);
        let block: Vec<bool> = decode
            .iter()
            .filter(|o| o.count % 4 == 0)
            .map(|o| p.runs_parallel(&o.kind))
            .collect();
        let per_block = block.windows(2).filter(|w| w[1] && !w[0]).count() + usize::from(block[0]);
        assert!(per_block >= 2, "{block:?}");
        assert_eq!(
            term_value_in(Term::DecodeParallelWakes, &s, Some(&p)),
            4.0 * per_block as f64
        );
    }

    #[test]
    fn flop_terms_sum_to_total() {
        let s = ShapeSpec::new(4, 256).validate().unwrap();
        let sum: f64 = [Term::MatmulGflop, Term::AttentionGflop, Term::LmHeadGflop]
            .iter()
            .map(|&t| term_value(t, &s))
            .sum();
        assert!((sum * 1e9 - s.accounting().flops.total as f64).abs() < 1.0);
    }
}
