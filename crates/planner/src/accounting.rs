//! Exact parameter, FLOP and byte counts of a decoder.
//!
//! The model: a token embedding (and a learned position table unless
//! positions are rotary); L pre-norm blocks (norm, fused projection to h
//! query and 2·kv_heads key/value heads of head_dim, rotary embeddings on
//! queries and keys if chosen, causal attention, output projection h·head_dim
//! → d, norm, MLP: GELU d→d_ff→d or gated d→2×d_ff→d); a final norm; an LM
//! head tied to the token embedding or its own V×d matrix. Norms are
//! LayerNorm (2·d) or RMSNorm (d); biases on the QKV projection and on the
//! output and MLP matrices are each optional (GPT-2: all, Llama: none,
//! Qwen 2: QKV only).
//!
//! FLOPs count a multiply-add as 2 and cover the matrix products only
//! (normalisation, softmax and GELU are counted as element traffic instead).
//! Attention is counted over the full n×n score matrix, as CPU kernels compute it.
//! FLOPs and the weight bytes a decode step reads are summed from the operator
//! graph ([`crate::operators::graph`]), the list the latency model prices.

use serde::{Deserialize, Serialize};

use crate::architecture::PositionEncoding;
use crate::error::ShapeError;
use crate::features::Component;
use crate::operators::{OpClass, Operator, graph};
use crate::phase::Phase;
use crate::shape::Shape;

/// Bytes per element: every measured model runs in f32.
pub const BYTES_PER_ELEMENT: u64 = 4;

/// Parameter counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Params {
    /// Every parameter, a tied LM head counted once (the published counts).
    pub total: u64,
    /// Everything but the token and position embeddings and an untied LM
    /// head (Kaplan et al.'s N), biases and norms included.
    pub non_embedding: u64,
    /// Token embedding V·d (also the LM head weight when tied).
    pub token_embedding: u64,
    /// Learned positions P·d (0 with rotary positions).
    pub position_embedding: u64,
    /// The LM head's own V·d (0 when tied).
    #[serde(default)]
    pub lm_head: u64,
    /// One transformer block.
    pub per_layer: u64,
}

/// Forward FLOPs by component.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Flops {
    /// QKV and output projections, all layers: 8·T·d² per layer.
    pub attention_projections: u64,
    /// Scores QKᵀ and the weighted sum, all layers: 4·b·n²·d per layer.
    pub attention_scores: u64,
    /// The MLP, all layers: 4·T·d·d_ff per layer.
    pub mlp: u64,
    /// LM head: 2·T·d·V.
    pub lm_head: u64,
    /// Sum of the above.
    pub total: u64,
}

/// Bytes of weights and of the main activations (f32).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Bytes {
    /// All weights.
    pub weights: u64,
    /// Weights read by the blocks in one forward (non-embedding).
    pub block_weights: u64,
    /// Residual stream of one block: T·d.
    pub residual: u64,
    /// Largest live set inside one block: QKV, scores b·h·n², MLP hidden T·d_ff.
    pub block_peak: u64,
    /// Logits T·V.
    pub logits: u64,
    /// Element traffic of the memory-bound ops over all layers (LayerNorm,
    /// GELU, residual adds, softmax), in elements: a feature for the latency model.
    pub elementwise_elements: u64,
}

/// Counts of one decode step: one new token per sequence against a KV cache
/// holding the context c = `seq` tokens (the new one included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DecodeCounts {
    /// FLOPs of the step (GPT-2: projections 8·b·d²·L, scores and weighted
    /// sum 4·b·c·d·L, MLP 4·b·d·d_ff·L, LM head 2·b·d·V).
    pub flops: Flops,
    /// Weight bytes read per step: every block weight and the LM head, as
    /// each is used once per step whatever b is.
    pub weight_bytes: u64,
    /// KV-cache bytes read per step: keys and values of c tokens, all
    /// layers, 2·L·b·c·kv_heads·head_dim·4 (GPT-2: 2·L·b·c·d·4). Also the
    /// cache's size in memory.
    pub kv_bytes: u64,
}

/// All counts for one shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Accounting {
    /// Parameters.
    pub params: Params,
    /// Forward FLOPs.
    pub flops: Flops,
    /// Memory.
    pub bytes: Bytes,
    /// One decode step at context `seq`.
    pub decode: DecodeCounts,
}

struct Checked {
    what: &'static str,
}

impl Checked {
    fn mul(&self, xs: &[u64]) -> Result<u64, ShapeError> {
        xs.iter()
            .try_fold(1u64, |acc, &x| acc.checked_mul(x))
            .ok_or(ShapeError::Overflow { what: self.what })
    }
    fn add(&self, xs: &[u64]) -> Result<u64, ShapeError> {
        xs.iter()
            .try_fold(0u64, |acc, &x| acc.checked_add(x))
            .ok_or(ShapeError::Overflow { what: self.what })
    }
}

/// FLOPs of one step by component, summed over its operators: linear layers
/// of the attention and of the MLP, attention itself, the LM head.
fn graph_flops(ops: &[Operator], what: &'static str) -> Result<Flops, ShapeError> {
    let overflow = ShapeError::Overflow { what };
    let mut f = Flops::default();
    for op in ops {
        let flops = op
            .kind
            .checked_flops()
            .and_then(|x| x.checked_mul(op.count))
            .ok_or(overflow.clone())?;
        let slot = match (op.kind.class(), op.component) {
            (OpClass::Linear, Component::Mlp) => &mut f.mlp,
            (OpClass::Linear, _) => &mut f.attention_projections,
            (OpClass::Attention, _) => &mut f.attention_scores,
            (OpClass::LmHead, _) => &mut f.lm_head,
            _ => continue,
        };
        *slot = slot.checked_add(flops).ok_or(overflow.clone())?;
        f.total = f.total.checked_add(flops).ok_or(overflow.clone())?;
    }
    Ok(f)
}

impl Accounting {
    /// Counts everything, failing instead of overflowing.
    pub(crate) fn try_of(s: &Shape) -> Result<Self, ShapeError> {
        let (l, d, ff, v) = (s.layers(), s.d_model(), s.d_ff(), s.vocab());
        let (n, b, h) = (s.seq(), s.batch(), s.heads());
        let (aw, kvw) = (s.attention_width(), s.kv_width());
        let (qkv_width, yes) = (aw + 2 * kvw, |on: bool| u64::from(on));

        let c = Checked { what: "parameters" };
        let token_embedding = c.mul(&[v, d])?;
        let position_embedding = match s.position_encoding() {
            PositionEncoding::Learned => c.mul(&[s.positions(), d])?,
            PositionEncoding::Rope => 0,
        };
        let lm_head = if s.tie_embeddings() { 0 } else { token_embedding };
        let norm = s.norm().params(d);
        let dense_bias = yes(s.dense_bias());
        // Per block: 2 norms, QKV (d·(h + 2·kv)·head_dim + bias), output
        // (h·head_dim·d + bias), MLP (matrices · d·ff + biases).
        let mlp_biases = c.mul(&[dense_bias, c.add(&[c.mul(&[s.mlp().matrices() - 1, ff])?, d])?])?;
        let per_layer = c.add(&[
            c.mul(&[2, norm])?,
            c.mul(&[d, qkv_width])?,
            c.mul(&[yes(s.qkv_bias()), qkv_width])?,
            c.mul(&[aw, d])?,
            c.mul(&[dense_bias, d])?,
            c.mul(&[s.mlp().matrices(), d, ff])?,
            mlp_biases,
        ])?;
        let non_embedding = c.add(&[c.mul(&[l, per_layer])?, norm])?;
        let total = c.add(&[non_embedding, token_embedding, position_embedding, lm_head])?;

        // FLOPs and the weights a step reads are the operator graph's sums:
        // the accounting counts the list the latency model prices.
        let c = Checked { what: "FLOPs" };
        let t = c.mul(&[b, n])?;
        let prefill = graph(s, Phase::Prefill);
        let decode_ops = graph(s, Phase::Decode);
        let flops = graph_flops(&prefill, "FLOPs")?;

        let c = Checked { what: "bytes" };
        let e = BYTES_PER_ELEMENT;
        let decode = DecodeCounts {
            flops: graph_flops(&decode_ops, "decode FLOPs")?,
            weight_bytes: decode_ops
                .iter()
                .try_fold(0u64, |acc, op| {
                    acc.checked_add(op.kind.weight_bytes().checked_mul(op.count)?)
                })
                .ok_or(ShapeError::Overflow { what: "bytes" })?,
            kv_bytes: c.mul(&[e, 2, l, b, n, kvw])?,
        };
        let residual = c.mul(&[e, t, d])?;
        let scores = c.mul(&[e, b, h, n, n])?;
        let hidden = c.mul(&[e, s.mlp().matrices() - 1, t, ff])?;
        let block_peak = c.add(&[c.mul(&[e, t, qkv_width])?, scores, hidden, residual])?;
        // Per layer: 2 norms and 2 residual adds over T·d, the activation
        // over T·ff (gated: the SiLU and the product, 2·T·ff), rotary
        // embeddings over the queries and keys, softmax over b·h·n² (each
        // element read and written once).
        let rope = match s.position_encoding() {
            PositionEncoding::Rope => c.mul(&[t, aw + kvw])?,
            PositionEncoding::Learned => 0,
        };
        let per_layer_elements = c.add(&[
            c.mul(&[4, t, d])?,
            c.mul(&[s.mlp().matrices() - 1, t, ff])?,
            rope,
            c.mul(&[b, h, n, n])?,
        ])?;
        Ok(Accounting {
            params: Params {
                total,
                non_embedding,
                token_embedding,
                position_embedding,
                lm_head,
                per_layer,
            },
            flops,
            bytes: Bytes {
                weights: c.mul(&[e, total])?,
                block_weights: c.mul(&[e, non_embedding])?,
                residual,
                block_peak,
                logits: c.mul(&[e, t, v])?,
                elementwise_elements: c.mul(&[l, per_layer_elements])?,
            },
            decode,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::shape::ShapeSpec;

    #[test]
    fn gpt2_small_has_its_published_parameter_count() {
        let s = ShapeSpec {
            heads: Some(12),
            ..ShapeSpec::new(12, 768)
        }
        .validate()
        .unwrap();
        let a = s.accounting();
        assert_eq!(a.params.total, 124_439_808);
        assert_eq!(a.params.non_embedding, 85_056_000);
    }

    #[test]
    fn gpt2_medium_count() {
        // GPT-2 medium (L=24, d=1024): 354,823,168 parameters with the tied head.
        let s = ShapeSpec {
            heads: Some(16),
            ..ShapeSpec::new(24, 1024)
        }
        .validate()
        .unwrap();
        assert_eq!(s.accounting().params.total, 354_823_168);
    }

    #[test]
    fn flops_split_matches_closed_forms() {
        let s = ShapeSpec {
            seq: Some(128),
            batch: Some(2),
            ..ShapeSpec::new(3, 256)
        }
        .validate()
        .unwrap();
        let f = s.accounting().flops;
        let (l, d, t, n, b, v) = (3u64, 256u64, 256u64, 128u64, 2u64, 50257u64);
        assert_eq!(f.attention_projections, l * 8 * t * d * d);
        assert_eq!(f.mlp, l * 16 * t * d * d);
        assert_eq!(f.attention_scores, l * 4 * b * n * n * d);
        assert_eq!(f.lm_head, 2 * t * d * v);
        assert_eq!(
            f.total,
            f.attention_projections + f.mlp + f.attention_scores + f.lm_head
        );
    }

    #[test]
    fn decode_counts_match_closed_forms() {
        let s = ShapeSpec {
            seq: Some(512),
            batch: Some(4),
            ..ShapeSpec::new(12, 768)
        }
        .validate()
        .unwrap();
        let a = s.accounting();
        let dc = a.decode;
        let (l, d, c, b, v) = (12u64, 768u64, 512u64, 4u64, 50257u64);
        assert_eq!(dc.flops.attention_projections, l * 8 * b * d * d);
        assert_eq!(dc.flops.mlp, l * 16 * b * d * d);
        assert_eq!(dc.flops.attention_scores, l * 4 * b * c * d);
        assert_eq!(dc.flops.lm_head, 2 * b * d * v);
        // GPT-2 small: 12 layers × 512 tokens × 768 × 2 (K, V) × 4 bytes × 4 sequences.
        assert_eq!(dc.kv_bytes, 2 * l * b * c * d * 4);
        // Weights read per step: everything but the position table.
        assert_eq!(
            dc.weight_bytes,
            4 * (a.params.total - a.params.position_embedding)
        );
        // One decode step is the prefill of the last token, attention aside.
        assert_eq!(dc.flops.mlp * c, a.flops.mlp);
    }

    #[test]
    fn non_embedding_is_about_twelve_l_d_squared() {
        let s = ShapeSpec::new(24, 1024).validate().unwrap();
        let approx = 12 * 24 * 1024 * 1024;
        let exact = s.accounting().params.non_embedding as f64;
        assert!((exact / approx as f64 - 1.0).abs() < 0.01);
    }
}
