//! A GPT-2-style decoder in Burn, for any [`planner::Shape`].
//!
//! Token and learned positional embeddings, L pre-LayerNorm blocks (causal
//! multi-head self-attention through Burn's fused `attention` op, GELU MLP),
//! a final LayerNorm and an LM head tied to the token embedding. Weights are
//! random: latency does not depend on their values. Inference only.
//!
//! Decode ([`Decoder::decode_step`]) runs one new token per sequence against a
//! static KV cache: per layer a `[b, h, c, d_head]` buffer for keys and one for
//! values, allocated once at the full context c; each step writes its own key
//! and value into the last slot (in place when the buffer is uniquely owned,
//! as in Burn's flex backend) and attends over all c slots. So every timed step
//! is "token c given c−1 cached", the quantity a serving system pays per token
//! at that context, and repeated steps stay at the same context.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, gelu_approximate};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Distribution, Int, Tensor};
use planner::Shape;
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

#[derive(Module, Debug)]
struct Block {
    ln_attn: LayerNorm,
    qkv: Linear,
    proj: Linear,
    ln_mlp: LayerNorm,
    fc: Linear,
    fc_out: Linear,
}

/// The decoder.
#[derive(Module, Debug)]
pub struct Decoder {
    token_embedding: Embedding,
    position_embedding: Embedding,
    blocks: Vec<Block>,
    ln_final: LayerNorm,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    gelu: Gelu,
}

fn usize_of(x: u64) -> usize {
    usize::try_from(x).expect("validated shapes fit in usize")
}

impl Decoder {
    /// Builds the decoder on `device` and materialises every weight.
    pub fn new(shape: &Shape, gelu: Gelu, device: &Device) -> Self {
        let d = usize_of(shape.d_model());
        let ff = usize_of(shape.d_ff());
        let block = || Block {
            ln_attn: LayerNormConfig::new(d).init(device),
            qkv: LinearConfig::new(d, 3 * d).init(device),
            proj: LinearConfig::new(d, d).init(device),
            ln_mlp: LayerNormConfig::new(d).init(device),
            fc: LinearConfig::new(d, ff).init(device),
            fc_out: LinearConfig::new(ff, d).init(device),
        };
        let decoder = Decoder {
            token_embedding: EmbeddingConfig::new(usize_of(shape.vocab()), d).init(device),
            position_embedding: EmbeddingConfig::new(usize_of(shape.positions()), d).init(device),
            blocks: (0..shape.layers()).map(|_| block()).collect(),
            ln_final: LayerNormConfig::new(d).init(device),
            heads: usize_of(shape.heads()),
            gelu,
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

    /// Logits `[b, n, V]`.
    pub fn forward(&self, tokens: Tensor<2, Int>) -> Tensor<3> {
        let [b, n] = tokens.dims();
        let device = tokens.device();
        let positions = Tensor::<1, Int>::arange(0..n as i64, &device)
            .reshape([1, n])
            .repeat_dim(0, b);
        let mut x = self.token_embedding.forward(tokens) + self.position_embedding.forward(positions);
        for block in &self.blocks {
            x = self.block_forward(block, x);
        }
        let x = self.ln_final.forward(x);
        let [_, _, d] = x.dims();
        // Tied LM head: logits = x·Wᵀ, computed as (W·xᵀ)ᵀ so the large
        // [V, d] weight is read in its stored row-major order (2.5× faster on
        // ndarray, no slower on flex: see examples/breakdown.rs).
        let weight = self.token_embedding.weight.val();
        let vocab = weight.dims()[0];
        weight
            .matmul(x.reshape([b * n, d]).transpose())
            .transpose()
            .reshape([b, n, vocab])
    }

    /// A filled KV cache for context `context` (random values: latency does
    /// not depend on them), one `(keys, values)` pair per layer.
    pub fn kv_cache(&self, batch: usize, context: usize, device: &Device) -> KvCache {
        let d = self.ln_final.gamma.dims()[0];
        let (h, dh) = (self.heads, d / self.heads);
        let buffer = || Tensor::<4>::random([batch, h, context, dh], Distribution::Default, device);
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
        let [b, _] = token.dims();
        let device = token.device();
        let context = cache.context();
        let position = Tensor::<1, Int>::from_ints([context as i32 - 1], &device)
            .reshape([1, 1])
            .repeat_dim(0, b);
        let mut x = self.token_embedding.forward(token) + self.position_embedding.forward(position);
        let mut layers = Vec::with_capacity(self.blocks.len());
        // The buffers move through the step so each stays uniquely owned and
        // is written in place.
        for (block, (keys, values)) in self.blocks.iter().zip(cache.layers) {
            let (y, keys, values) = self.block_decode(block, x, keys, values, context);
            x = y;
            layers.push((keys, values));
        }
        let cache = KvCache { layers };
        let x = self.ln_final.forward(x);
        let d = x.dims()[2];
        let weight = self.token_embedding.weight.val();
        let vocab = weight.dims()[0];
        let logits = weight
            .matmul(x.reshape([b, d]).transpose())
            .transpose()
            .reshape([b, 1, vocab]);
        (logits, cache)
    }

    fn block_decode(
        &self,
        block: &Block,
        x: Tensor<3>,
        keys: Tensor<4>,
        values: Tensor<4>,
        context: usize,
    ) -> (Tensor<3>, Tensor<4>, Tensor<4>) {
        let [b, _, d] = x.dims();
        let (h, dh) = (self.heads, d / self.heads);
        let qkv = block.qkv.forward(block.ln_attn.forward(x.clone()));
        let split = |i: usize| {
            qkv.clone()
                .slice([0..b, 0..1, i * d..(i + 1) * d])
                .reshape([b, 1, h, dh])
                .swap_dims(1, 2)
        };
        let last = context - 1..context;
        // Write this token's key and value in place, then attend over the whole cache.
        let keys = keys.slice_assign([0..b, 0..h, last.clone(), 0..dh], split(1));
        let values = values.slice_assign([0..b, 0..h, last, 0..dh], split(2));
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: false,
        };
        let attended = attention(split(0), keys.clone(), values.clone(), None, None, options)
            .swap_dims(1, 2)
            .reshape([b, 1, d]);
        (self.mlp_residual(block, x, attended), keys, values)
    }

    /// Output projection with residual, then the MLP with residual.
    fn mlp_residual(&self, block: &Block, x: Tensor<3>, attended: Tensor<3>) -> Tensor<3> {
        let x = x + block.proj.forward(attended);
        let hidden = block.fc.forward(block.ln_mlp.forward(x.clone()));
        let hidden = match self.gelu {
            Gelu::Exact => gelu(hidden),
            Gelu::Tanh => gelu_approximate(hidden),
        };
        x + block.fc_out.forward(hidden)
    }

    fn block_forward(&self, block: &Block, x: Tensor<3>) -> Tensor<3> {
        let [b, n, d] = x.dims();
        let (h, dh) = (self.heads, d / self.heads);
        let qkv = block.qkv.forward(block.ln_attn.forward(x.clone()));
        let split = |i: usize| {
            qkv.clone()
                .slice([0..b, 0..n, i * d..(i + 1) * d])
                .reshape([b, n, h, dh])
                .swap_dims(1, 2)
        };
        let options = AttentionModuleOptions {
            scale: None,
            softcap: None,
            is_causal: true,
        };
        let attended = attention(split(0), split(1), split(2), None, None, options)
            .swap_dims(1, 2)
            .reshape([b, n, d]);
        self.mlp_residual(block, x, attended)
    }
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

    #[test]
    fn parameter_count_matches_planner() {
        let device = Device::flex();
        for (l, d, h, v) in [
            (1, 32, 1, 256),
            (2, 64, 4, 256),
            (3, 96, 3, 1000),
            (2, 128, 2, 50257),
        ] {
            let shape = ShapeSpec {
                heads: Some(h),
                vocab: Some(v),
                positions: Some(256),
                ..ShapeSpec::new(l, d)
            }
            .validate()
            .unwrap();
            let model = Decoder::new(&shape, Gelu::Exact, &device);
            assert_eq!(
                model.num_params() as u64,
                shape.accounting().params.total,
                "{shape}"
            );
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
        let shape = ShapeSpec {
            heads: Some(2),
            vocab: Some(300),
            seq: Some(1),
            batch: Some(2),
            ..ShapeSpec::new(2, 32)
        }
        .validate()
        .unwrap();
        let model = Decoder::new(&shape, Gelu::Exact, &device);
        let token = Decoder::decode_input(&shape, &device);
        let expected: Vec<f32> = model
            .forward(token.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let cache = model.kv_cache(2, 1, &device);
        let (logits, cache) = model.decode_step(token, cache);
        assert_eq!(logits.dims(), [2, 1, 300]);
        assert_eq!(cache.context(), 1);
        let got: Vec<f32> = logits.into_data().try_to_vec::<f32>().unwrap();
        for (g, e) in got.iter().zip(&expected) {
            assert!((g - e).abs() <= 1e-4 * (1.0 + e.abs()), "{g} vs {e}");
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
