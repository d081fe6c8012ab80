//! Peak memory of running a shape (f32), by part.
//!
//! Weights are every parameter once (the LM head is tied). The KV cache of
//! decode holds keys and values of c tokens per layer and sequence. Activations
//! are the largest set of intermediate tensors alive at once, counted from the
//! model as the benchmarker builds it (`crates/bench/src/model.rs`):
//! - inside a block, during attention: the residual x, its LayerNorm, the
//!   fused QKV output, head-major copies of q, k and v, the score matrix and
//!   its softmax (b·h·n² each), the attended output and its row-major copy;
//! - inside a block, during the MLP: x, the attention residual, its LayerNorm,
//!   the hidden layer and its GELU (T·d_ff each);
//! - at the LM head: the final hidden states, the logits `[V, T]` and their
//!   transposed copy `[T, V]`.
//!
//! Decode uses the same counts with T = b tokens and n = 1 query against c keys.
//! `bench memory` measures the peak resident set on CPU and compares.

use serde::{Deserialize, Serialize};

use crate::accounting::BYTES_PER_ELEMENT;
use crate::phase::Phase;
use crate::shape::Shape;

/// Bytes needed to run one step of a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryEstimate {
    /// Weights.
    pub weights_bytes: u64,
    /// KV cache (decode only; 0 for prefill).
    pub kv_cache_bytes: u64,
    /// Peak of intermediate tensors during the step.
    pub activations_bytes: u64,
    /// The backend's own memory beyond tensors (allocator, BLAS workspace),
    /// from its measured calibration; 0 without one.
    #[serde(default)]
    pub runtime_bytes: u64,
    /// The sum: peak memory of the step.
    pub total_bytes: u64,
}

/// A backend's memory beyond the tensors counted above, fitted by
/// `fit::memory` from `bench memory` measurements (resident set of one step
/// in a fresh process).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryCalibration {
    /// Held by every step: allocator slack, thread pools (median over shapes).
    pub runtime_bytes: u64,
    /// Extra when a step multiplies matrices by matrices (prefill, or decode
    /// with b > 1), e.g. BLAS packing buffers; matrix-vector steps need none.
    pub matmul_workspace_bytes: u64,
    /// Shapes measured.
    pub measurements: usize,
    /// Leave-one-shape-out: mean |predicted / measured − 1|, %.
    pub held_out_mape_pct: f64,
    /// Leave-one-shape-out: fraction within ±10%.
    pub held_out_within_10pct: f64,
    /// Leave-one-shape-out: worst |error|, %.
    pub held_out_worst_pct: f64,
}

/// Whether a step multiplies matrices by matrices (else: matrix-vector).
pub fn uses_matrix_products(shape: &Shape, phase: Phase) -> bool {
    match phase {
        Phase::Prefill => shape.tokens() > 1,
        Phase::Decode => shape.batch() > 1,
    }
}

/// [`estimate`] plus a backend's measured overheads.
pub fn estimate_on(calibration: Option<&MemoryCalibration>, shape: &Shape, phase: Phase) -> MemoryEstimate {
    let mut m = estimate(shape, phase);
    if let Some(c) = calibration {
        m.runtime_bytes = c
            .runtime_bytes
            .saturating_add(if uses_matrix_products(shape, phase) {
                c.matmul_workspace_bytes
            } else {
                0
            });
        m.total_bytes = m.total_bytes.saturating_add(m.runtime_bytes);
    }
    m
}

/// Estimates the peak memory of one step of `phase` for `shape`.
///
/// Saturates instead of overflowing (shapes are validated, so only absurd
/// ones could come near).
pub fn estimate(shape: &Shape, phase: Phase) -> MemoryEstimate {
    let a = shape.accounting();
    let (d, ff, v, h, b) = (
        shape.d_model(),
        shape.d_ff(),
        shape.vocab(),
        shape.heads(),
        shape.batch(),
    );
    let (queries, keys) = match phase {
        Phase::Prefill => (shape.seq(), shape.seq()),
        Phase::Decode => (1, shape.seq()),
    };
    let t = b.saturating_mul(queries);
    let mul = |xs: &[u64]| xs.iter().fold(1u64, |acc, &x| acc.saturating_mul(x));
    let scores = mul(&[b, h, queries, keys]);
    // Attention: the input and its norm (2·d), QKV and its split into heads
    // (2·(h + 2·kv)·head_dim), the attended heads (h·head_dim) — GPT-2's
    // 9·T·d — and the scores with their softmax (grouped queries fold into
    // query rows, so as many scores as with h heads).
    let (aw, kvw) = (shape.attention_width(), shape.kv_width());
    let per_token = 2 * d + 2 * (aw + 2 * kvw) + aw;
    let attention = mul(&[t, per_token]).saturating_add(mul(&[2, scores]));
    // MLP: input, output and the hidden activations (gated: gate, up, product).
    let hidden = if shape.mlp() == crate::Mlp::Gated { 3 } else { 2 };
    let mlp = mul(&[t, d, 3]).saturating_add(mul(&[hidden, t, ff]));
    let lm_head = mul(&[t, d]).saturating_add(mul(&[2, t, v]));
    let activations = attention.max(mlp).max(lm_head).saturating_mul(BYTES_PER_ELEMENT);
    let weights = a.bytes.weights;
    let kv_cache = match phase {
        Phase::Prefill => 0,
        Phase::Decode => a.decode.kv_bytes,
    };
    MemoryEstimate {
        weights_bytes: weights,
        kv_cache_bytes: kv_cache,
        activations_bytes: activations,
        runtime_bytes: 0,
        total_bytes: weights.saturating_add(kv_cache).saturating_add(activations),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::ShapeSpec;

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
    fn gpt2_small_decode_cache_is_its_closed_form() {
        let m = estimate(&gpt2(1024, 1), Phase::Decode);
        // 2 (K, V) × 12 layers × 1024 tokens × 768 × 4 bytes = 72 MiB.
        assert_eq!(m.kv_cache_bytes, 2 * 12 * 1024 * 768 * 4);
        assert_eq!(m.weights_bytes, 124_439_808 * 4);
        assert_eq!(
            m.total_bytes,
            m.weights_bytes + m.kv_cache_bytes + m.activations_bytes
        );
        assert_eq!(estimate(&gpt2(128, 1), Phase::Prefill).kv_cache_bytes, 0);
    }

    #[test]
    fn prefill_peak_is_the_logits_for_a_large_vocabulary() {
        // T·V dominates at GPT-2's vocabulary: 2 copies of 128 × 50257 floats, plus T·d.
        let m = estimate(&gpt2(128, 1), Phase::Prefill);
        assert_eq!(m.activations_bytes, 4 * (128 * 768 + 2 * 128 * 50257));
    }

    #[test]
    fn memory_grows_with_context_and_batch() {
        let small = estimate(&gpt2(128, 1), Phase::Decode).total_bytes;
        assert!(estimate(&gpt2(512, 1), Phase::Decode).total_bytes > small);
        assert!(estimate(&gpt2(128, 4), Phase::Decode).total_bytes > small);
    }
}
