//! A decoder in Burn, for any [`planner::Shape`]: GPT-2-style or Llama-style.
//!
//! Token embeddings (plus a learned position table, or rotary embeddings on
//! queries and keys: Burn's `RotaryEncoding`), L pre-norm blocks (LayerNorm
//! or Burn's `RmsNorm`; causal self-attention of h query heads over kv_heads
//! key/value heads through Burn's fused `attention` op; a GELU MLP or Burn's
//! `SwiGlu` gate and up matrices with a down matrix), a final norm and an LM
//! head tied to the token embedding or its own matrix. Biases as the shape
//! says. Weights are random: latency does not depend on their values.
//! Inference only.
//!
//! Decode ([`Decoder::decode_step`]) runs one new token per sequence against a
//! static KV cache: per layer a `[b, kv_heads, c, d_head]` buffer for keys and one for
//! values, allocated once at the full context c; each step writes its own key
//! and value into the last slot (in place when the buffer is uniquely owned,
//! as in Burn's flex backend) and attends over all c slots. So every timed step
//! is "token c given c−1 cached", the quantity a serving system pays per token
//! at that context, and repeated steps stay at the same context.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{
    Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, RmsNorm, RmsNormConfig,
    RotaryEncoding, RotaryEncodingConfig, SwiGlu, SwiGluConfig,
};
use burn::tensor::activation::{gelu, gelu_approximate};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Distribution, Int, Tensor};
use planner::{Mlp, Norm, PositionEncoding, Shape};
use serde::{Deserialize, Serialize};

/// The MLP activation, part of every recorded configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Gelu {
    /// Exact GELU (erf).
    #[default]
    Exact,
    /// GPT-2's tanh approximation.
    Tanh,
}

impl Gelu {
    /// Name as recorded.
    pub fn name(self) -> &'static str {
        match self {
            Gelu::Exact => "exact",
            Gelu::Tanh => "tanh",
        }
    }
}

/// How grouped-query attention (fewer key/value heads than query heads)
/// meets Burn's fused attention, which takes as many key heads as query heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum GroupedAttention {
    /// Copy each key/value head to its group's query heads, then attend over h heads.
    Repeat,
    /// Attend once per key/value head for its whole group: the g query heads
    /// become g·q query rows (a mask keeps prefill causal), nothing is copied.
    Fold,
}

/// The way each phase runs grouped-query attention: fold, the faster in
/// `examples/gqa_attention.rs` on both CPU backends (decode up to 2.6×;
/// prefill faster or within 5%: README, "Today's architectures").
pub const PREFILL_GROUPED: GroupedAttention = GroupedAttention::Fold;
/// See [`PREFILL_GROUPED`].
pub const DECODE_GROUPED: GroupedAttention = GroupedAttention::Fold;

/// LayerNorm or RMSNorm, whichever the shape asks for.
#[derive(Module, Debug)]
struct Normalise {
    layer: Option<LayerNorm>,
    rms: Option<RmsNorm>,
}

impl Normalise {
    fn new(norm: Norm, d: usize, device: &Device) -> Self {
        match norm {
            Norm::LayerNorm => Normalise {
                layer: Some(LayerNormConfig::new(d).init(device)),
                rms: None,
            },
            Norm::RmsNorm => Normalise {
                layer: None,
                rms: Some(RmsNormConfig::new(d).init(device)),
            },
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match (&self.layer, &self.rms) {
            (Some(ln), _) => ln.forward(x),
            (None, Some(rms)) => rms.forward(x),
            (None, None) => unreachable!("a norm is always built"),
        }
    }
}

#[derive(Module, Debug)]
struct Block {
    ln_attn: Normalise,
    qkv: Linear,
    proj: Linear,
    ln_mlp: Normalise,
    /// GELU MLP's first matrix.
    fc: Option<Linear>,
    /// Gated MLP's gate and up matrices (Burn's SwiGlu).
    gated: Option<SwiGlu>,
    fc_out: Linear,
}

/// The decoder.
#[derive(Module, Debug)]
pub struct Decoder {
    token_embedding: Embedding,
    position_embedding: Option<Embedding>,
    rotary: Option<RotaryEncoding>,
    blocks: Vec<Block>,
    ln_final: Normalise,
    /// An untied LM head `[V, d]`, applied as the tied one is.
    lm_head: Option<Param<Tensor<2>>>,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    kv_heads: usize,
    #[module(skip)]
    head_dim: usize,
    #[module(skip)]
    gelu: Gelu,
    #[module(skip)]
    grouped: [GroupedAttention; 2],
}

fn usize_of(x: u64) -> usize {
    usize::try_from(x).expect("validated shapes fit in usize")
}

impl Decoder {
    /// Builds the decoder on `device` and materialises every weight.
    pub fn new(shape: &Shape, gelu: Gelu, device: &Device) -> Self {
        Self::with_grouped_attention(shape, gelu, [PREFILL_GROUPED, DECODE_GROUPED], device)
    }

    /// [`Decoder::new`] with a chosen way of grouped-query attention for
    /// prefill and for decode (measured against each other by `examples/gqa_attention.rs`).
    pub fn with_grouped_attention(
        shape: &Shape,
        gelu: Gelu,
        grouped: [GroupedAttention; 2],
        device: &Device,
    ) -> Self {
        let d = usize_of(shape.d_model());
        let ff = usize_of(shape.d_ff());
        let (aw, kvw) = (usize_of(shape.attention_width()), usize_of(shape.kv_width()));
        let dense_bias = shape.dense_bias();
        let block = || Block {
            ln_attn: Normalise::new(shape.norm(), d, device),
            qkv: LinearConfig::new(d, aw + 2 * kvw)
                .with_bias(shape.qkv_bias())
                .init(device),
            proj: LinearConfig::new(aw, d).with_bias(dense_bias).init(device),
            ln_mlp: Normalise::new(shape.norm(), d, device),
            fc: (shape.mlp() == Mlp::Gelu)
                .then(|| LinearConfig::new(d, ff).with_bias(dense_bias).init(device)),
            gated: (shape.mlp() == Mlp::Gated)
                .then(|| SwiGluConfig::new(d, ff).with_bias(dense_bias).init(device)),
            fc_out: LinearConfig::new(ff, d).with_bias(dense_bias).init(device),
        };
        let vocab = usize_of(shape.vocab());
        let rope = shape.position_encoding() == PositionEncoding::Rope;
        let decoder = Decoder {
            token_embedding: EmbeddingConfig::new(vocab, d).init(device),
            position_embedding: (!rope)
                .then(|| EmbeddingConfig::new(usize_of(shape.positions()), d).init(device)),
            // Frequencies for the positions a run reaches (the shape's seq or
            // context), not the model's whole range: a table of 128k positions
            // would be most of a small model's memory.
            rotary: rope.then(|| {
                RotaryEncodingConfig::new(usize_of(shape.seq()), usize_of(shape.head_dim())).init(device)
            }),
            blocks: (0..shape.layers()).map(|_| block()).collect(),
            ln_final: Normalise::new(shape.norm(), d, device),
            lm_head: (!shape.tie_embeddings())
                .then(|| Param::from_tensor(Tensor::random([vocab, d], Distribution::Default, device))),
            heads: usize_of(shape.heads()),
            kv_heads: usize_of(shape.kv_heads()),
            head_dim: usize_of(shape.head_dim()),
            gelu,
            grouped,
        };
        // Burn initialises parameters lazily; touching each one now keeps
        // initialisation out of the cold latency.
        decoder.visit(&mut Materialise);
        decoder
    }

    /// Token ids for a forward pass: deterministic, spread over the vocabulary.
    pub fn input(shape: &Shape, device: &Device) -> Tensor<2, Int> {
        let (b, n, v) = (shape.batch() as i64, shape.seq() as i64, shape.vocab() as i64);
        Tensor::<1, Int>::arange(0..b * n, device)
            .mul_scalar(7919)
            .remainder_scalar(v)
            .reshape([b as usize, n as usize])
    }

    /// Token embeddings plus learned positions `start..start + n` (with
    /// rotary positions the blocks add them instead).
    fn embed(&self, tokens: Tensor<2, Int>, start: usize) -> Tensor<3> {
        let [b, n] = tokens.dims();
        let device = tokens.device();
        let x = self.token_embedding.forward(tokens);
        match &self.position_embedding {
            Some(table) => {
                let positions = Tensor::<1, Int>::arange(start as i64..(start + n) as i64, &device)
                    .reshape([1, n])
                    .repeat_dim(0, b);
                x + table.forward(positions)
            }
            None => x,
        }
    }

    /// Logits for `x` `[b, n, d]` after the final norm: `(W·xᵀ)ᵀ` with the
    /// LM head's `[V, d]` weight (the token embedding when tied) read in its
    /// stored row-major order (2.5× faster on ndarray than `x·Wᵀ`, no slower
    /// on flex: see examples/breakdown.rs).
    fn logits(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let weight = match &self.lm_head {
            Some(head) => head.val(),
            None => self.token_embedding.weight.val(),
        };
        let vocab = weight.dims()[0];
        weight
            .matmul(x.reshape([b * n, d]).transpose())
            .transpose()
            .reshape([b, n, vocab])
    }

    /// Logits `[b, n, V]`.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let [b, n] = tokens.dims();
        let group = self.heads / self.kv_heads;
        // One mask for every block, as a serving engine builds it once.
        let mask = (group > 1 && self.grouped[0] == GroupedAttention::Fold)
            .then(|| folded_causal_mask(b, self.kv_heads, group, n, n, &tokens.device()));
        let mut x = self.embed(tokens, 0);
        for block in &self.blocks {
            x = self.block_forward(block, x, mask.clone());
        }
        self.logits(self.ln_final.forward(x))
    }

    /// A filled KV cache for context `context` (random values: latency does
    /// not depend on them), one `(keys, values)` pair per layer of
    /// `[b, kv_heads, c, head_dim]`.
    pub fn kv_cache(&self, batch: usize, context: usize, device: &Device) -> KvCache {
        let (kv, dh) = (self.kv_heads, self.head_dim);
        let buffer = || Tensor::<4>::random([batch, kv, context, dh], Distribution::Default, device);
        KvCache {
            layers: self.blocks.iter().map(|_| (buffer(), buffer())).collect(),
        }
    }

    /// The new token of each sequence for a decode step: `[b, 1]`.
    pub fn decode_input(shape: &Shape, device: &Device) -> Tensor<2, Int> {
        let (b, v) = (shape.batch() as i64, shape.vocab() as i64);
        Tensor::<1, Int>::arange(0..b, device)
            .mul_scalar(7919)
            .remainder_scalar(v)
            .reshape([b as usize, 1])
    }

    /// One decode step: the token at the cache's last slot (position c−1)
    /// attends over all c slots. Returns logits `[b, 1, V]` and the cache.
    pub fn decode_step(&self, token: Tensor<2, Int>, cache: KvCache) -> (Tensor<3>, KvCache) {
        let context = cache.context();
        let mut x = self.embed(token, context - 1);
        let mut layers = Vec::with_capacity(self.blocks.len());
        // The buffers move through the step so each stays uniquely owned and
        // is written in place.
        for (block, (keys, values)) in self.blocks.iter().zip(cache.layers) {
            let (y, keys, values) = self.block_decode(block, x, keys, values, context);
            x = y;
            layers.push((keys, values));
        }
        let cache = KvCache { layers };
        (self.logits(self.ln_final.forward(x)), cache)
    }

    /// Queries `[b, h, n, dh]`, keys and values `[b, kv, n, dh]` of the
    /// fused projection, rotated from position `start` when positions are rotary.
    fn project(&self, block: &Block, x: Tensor<3>, start: usize) -> [Tensor<4>; 3] {
        let [b, n, _] = x.dims();
        let (h, kv, dh) = (self.heads, self.kv_heads, self.head_dim);
        let qkv = block.qkv.forward(block.ln_attn.forward(x));
        let split = |from: usize, heads: usize| {
            qkv.clone()
                .slice([0..b, 0..n, from..from + heads * dh])
                .reshape([b, n, heads, dh])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (split(0, h), split(h * dh, kv), split((h + kv) * dh, kv));
        match &self.rotary {
            Some(rope) => [rope.apply(q, start), rope.apply(k, start), v],
            None => [q, k, v],
        }
    }

    /// Attention of `q` `[b, h, q, dh]` over `k`, `v` `[b, kv, c, dh]`,
    /// grouped as `how` says (folded and causal: with `mask`, the
    /// [`folded_causal_mask`]); `[b, q, h·dh]`.
    fn attend(
        &self,
        q: Tensor<4>,
        [k, v]: [Tensor<4>; 2],
        causal: bool,
        how: GroupedAttention,
        mask: Option<Tensor<4, Bool>>,
    ) -> Tensor<3> {
        let [b, h, rows, dh] = q.dims();
        let [_, kv, c, _] = k.dims();
        let group = h / kv;
        let options = |is_causal| AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal,
        };
        let merge = |heads: Tensor<4>| heads.swap_dims(1, 2).reshape([b, rows, h * dh]);
        if group == 1 || how == GroupedAttention::Repeat {
            let repeat = |t: Tensor<4>| {
                if group == 1 {
                    return t;
                }
                t.unsqueeze_dim::<5>(2)
                    .expand([b, kv, group, c, dh])
                    .reshape([b, h, c, dh])
            };
            return merge(attention(q, repeat(k), repeat(v), None, None, options(causal)));
        }
        // Fold: head j·g + i of query row r is row i·rows + r of key head j.
        let folded = q.reshape([b, kv, group * rows, dh]);
        assert!(
            !causal || mask.is_some(),
            "a folded causal attention needs its mask"
        );
        let out = attention(folded, k, v, mask, None, options(false));
        merge(out.reshape([b, h, rows, dh]))
    }

    fn block_decode(
        &self,
        block: &Block,
        x: Tensor<3>,
        keys: Tensor<4>,
        values: Tensor<4>,
        context: usize,
    ) -> (Tensor<3>, Tensor<4>, Tensor<4>) {
        let [b, _, _] = x.dims();
        let (kv, dh) = (self.kv_heads, self.head_dim);
        let [q, k, v] = self.project(block, x.clone(), context - 1);
        let last = context - 1..context;
        // Write this token's key and value in place, then attend over the whole cache.
        let keys = keys.slice_assign([0..b, 0..kv, last.clone(), 0..dh], k);
        let values = values.slice_assign([0..b, 0..kv, last, 0..dh], v);
        let attended = self.attend(q, [keys.clone(), values.clone()], false, self.grouped[1], None);
        (self.mlp_residual(block, x, attended), keys, values)
    }

    /// Output projection with residual, then the MLP with residual.
    fn mlp_residual(&self, block: &Block, x: Tensor<3>, attended: Tensor<3>) -> Tensor<3> {
        let x = x + block.proj.forward(attended);
        let normed = block.ln_mlp.forward(x.clone());
        let hidden = match (&block.fc, &block.gated) {
            (Some(fc), _) => match self.gelu {
                Gelu::Exact => gelu(fc.forward(normed)),
                Gelu::Tanh => gelu_approximate(fc.forward(normed)),
            },
            (None, Some(gated)) => gated.forward(normed),
            (None, None) => unreachable!("an MLP is always built"),
        };
        x + block.fc_out.forward(hidden)
    }

    fn block_forward(&self, block: &Block, x: Tensor<3>, mask: Option<Tensor<4, Bool>>) -> Tensor<3> {
        let [q, k, v] = self.project(block, x.clone(), 0);
        let attended = self.attend(q, [k, v], true, self.grouped[0], mask);
        self.mlp_residual(block, x, attended)
    }
}

/// The causal mask of grouped queries folded into rows: row `i·rows + r` of
/// key head j is query head j·g + i at position `c − rows + r`, which sees
/// keys up to its own position (`true` masks).
pub fn folded_causal_mask(
    batch: usize,
    kv_heads: usize,
    group: usize,
    rows: usize,
    context: usize,
    device: &Device,
) -> Tensor<4, Bool> {
    Tensor::<2, Bool>::tril_mask([rows, context], (context - rows) as i64, device)
        .repeat_dim(0, group)
        .unsqueeze::<4>()
        .expand([batch, kv_heads, group * rows, context])
}

/// Per-layer key and value buffers `[b, h, c, d_head]` of a decode step.
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<(Tensor<4>, Tensor<4>)>,
}

impl KvCache {
    /// The context c the buffers hold.
    pub fn context(&self) -> usize {
        self.layers.first().map_or(0, |(k, _)| k.dims()[2])
    }
}

struct Materialise;

impl ModuleVisitor for Materialise {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use planner::ShapeSpec;

    /// Every combination of the architectural choices, on small dimensions.
    fn variants(seq: u64, batch: u64) -> Vec<Shape> {
        let mut shapes = vec![];
        for (kv_heads, mlp, norm, positions, tied, biases) in [
            (
                4,
                Mlp::Gelu,
                Norm::LayerNorm,
                PositionEncoding::Learned,
                true,
                (true, true),
            ),
            (
                1,
                Mlp::Gated,
                Norm::RmsNorm,
                PositionEncoding::Rope,
                false,
                (false, false),
            ),
            (
                2,
                Mlp::Gated,
                Norm::RmsNorm,
                PositionEncoding::Rope,
                true,
                (true, false),
            ),
            (
                2,
                Mlp::Gelu,
                Norm::RmsNorm,
                PositionEncoding::Learned,
                false,
                (false, true),
            ),
            (
                4,
                Mlp::Gated,
                Norm::LayerNorm,
                PositionEncoding::Rope,
                true,
                (true, true),
            ),
        ] {
            shapes.push(
                ShapeSpec {
                    heads: Some(4),
                    kv_heads: Some(kv_heads),
                    d_ff: Some(96),
                    mlp: Some(mlp),
                    norm: Some(norm),
                    position_encoding: Some(positions),
                    tie_embeddings: Some(tied),
                    qkv_bias: Some(biases.0),
                    dense_bias: Some(biases.1),
                    vocab: Some(300),
                    positions: Some(64),
                    seq: Some(seq),
                    batch: Some(batch),
                    ..ShapeSpec::new(2, 64)
                }
                .validate()
                .unwrap(),
            );
        }
        // A head size of its own (Gemma's attention is wider than d_model).
        shapes.push(
            ShapeSpec {
                heads: Some(4),
                kv_heads: Some(2),
                head_dim: Some(24),
                position_encoding: Some(PositionEncoding::Rope),
                vocab: Some(300),
                positions: Some(64),
                seq: Some(seq),
                batch: Some(batch),
                ..ShapeSpec::new(2, 64)
            }
            .validate()
            .unwrap(),
        );
        shapes
    }

    fn values(t: Tensor<3>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn assert_close(got: &[f32], expected: &[f32], what: &str) {
        assert_eq!(got.len(), expected.len(), "{what}");
        for (g, e) in got.iter().zip(expected) {
            assert!((g - e).abs() <= 1e-4 * (1.0 + e.abs()), "{what}: {g} vs {e}");
        }
    }

    #[test]
    fn parameter_count_matches_planner() {
        let device = Device::flex();
        let mut shapes: Vec<Shape> = [
            (1, 32, 1, 256),
            (2, 64, 4, 256),
            (3, 96, 3, 1000),
            (2, 128, 2, 50257),
        ]
        .into_iter()
        .map(|(l, d, h, v)| {
            ShapeSpec {
                heads: Some(h),
                vocab: Some(v),
                positions: Some(256),
                ..ShapeSpec::new(l, d)
            }
            .validate()
            .unwrap()
        })
        .collect();
        shapes.extend(variants(16, 1));
        for shape in shapes {
            let model = Decoder::new(&shape, Gelu::Exact, &device);
            assert_eq!(
                model.num_params() as u64,
                shape.accounting().params.total,
                "{shape}"
            );
        }
    }

    #[test]
    fn grouped_attention_folded_equals_repeated() {
        let device = Device::flex();
        for shape in variants(12, 2).into_iter().filter(|s| s.group_size() > 1) {
            let ways = |how| Decoder::with_grouped_attention(&shape, Gelu::Exact, how, &device);
            let repeat = ways([GroupedAttention::Repeat; 2]);
            // Same weights: only how attention is grouped differs.
            let fold = Decoder {
                grouped: [GroupedAttention::Fold; 2],
                ..repeat.clone()
            };
            let tokens = Decoder::input(&shape, &device);
            assert_close(
                &values(fold.forward(tokens.clone())),
                &values(repeat.forward(tokens)),
                &format!("prefill {shape}"),
            );
            let cache = repeat.kv_cache(2, 12, &device);
            let token = Decoder::decode_input(&shape, &device);
            let (a, cache) = repeat.decode_step(token.clone(), cache);
            let (b, _) = fold.decode_step(token, cache);
            assert_close(&values(b), &values(a), &format!("decode {shape}"));
        }
    }

    #[test]
    fn output_is_batch_seq_vocab() {
        let device = Device::flex();
        let shape = ShapeSpec {
            heads: Some(2),
            vocab: Some(300),
            seq: Some(16),
            batch: Some(3),
            ..ShapeSpec::new(2, 32)
        }
        .validate()
        .unwrap();
        for gelu in [Gelu::Exact, Gelu::Tanh] {
            let model = Decoder::new(&shape, gelu, &device);
            let logits = model.forward(Decoder::input(&shape, &device));
            assert_eq!(logits.dims(), [3, 16, 300]);
            let values: Vec<f32> = logits.into_data().try_to_vec::<f32>().unwrap();
            assert!(values.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn decode_step_at_context_one_is_a_one_token_forward() {
        // With one slot the cache holds only the new token's own key and
        // value, so the step must equal a prefill of that single token.
        let device = Device::flex();
        let gpt2 = ShapeSpec {
            heads: Some(2),
            vocab: Some(300),
            seq: Some(1),
            batch: Some(2),
            ..ShapeSpec::new(2, 32)
        }
        .validate()
        .unwrap();
        for shape in std::iter::once(gpt2).chain(variants(1, 2)) {
            let model = Decoder::new(&shape, Gelu::Exact, &device);
            let token = Decoder::decode_input(&shape, &device);
            let expected = values(model.forward(token.clone()));
            let cache = model.kv_cache(2, 1, &device);
            let (logits, cache) = model.decode_step(token, cache);
            assert_eq!(logits.dims(), [2, 1, 300]);
            assert_eq!(cache.context(), 1);
            assert_close(&values(logits), &expected, &shape.to_string());
        }
    }

    #[test]
    fn decode_steps_keep_their_context() {
        let device = Device::flex();
        let shape = ShapeSpec {
            heads: Some(4),
            vocab: Some(256),
            seq: Some(64),
            ..ShapeSpec::new(3, 64)
        }
        .validate()
        .unwrap();
        let model = Decoder::new(&shape, Gelu::Tanh, &device);
        let mut cache = model.kv_cache(1, 64, &device);
        for _ in 0..3 {
            let (logits, next) = model.decode_step(Decoder::decode_input(&shape, &device), cache);
            assert_eq!(logits.dims(), [1, 1, 256]);
            let values: Vec<f32> = logits.into_data().try_to_vec::<f32>().unwrap();
            assert!(values.iter().all(|v| v.is_finite()));
            assert_eq!(next.context(), 64);
            cache = next;
        }
    }
}
