//! Well-known models by name: their published architectures and parameter counts.
//!
//! Each preset is the model's Hugging Face `config.json` read as
//! [`crate::hf_config`] reads one; its parameter count is the one its
//! authors publish (a test checks the accounting reproduces every one).

use crate::architecture::{Mlp, Norm, PositionEncoding};
use crate::shape::ShapeSpec;

/// A named model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    /// Name as typed (`--preset llama-3.2-1b`).
    pub name: &'static str,
    /// Who published it and where its count comes from.
    pub source: &'static str,
    /// Its architecture and dimensions (seq and batch left to the request).
    pub spec: ShapeSpec,
    /// The published parameter count (a tied head counted once).
    pub published_params: u64,
}

const fn gpt2(layers: u64, d_model: u64, heads: u64) -> ShapeSpec {
    ShapeSpec {
        layers,
        d_model,
        heads: Some(heads),
        kv_heads: None,
        head_dim: None,
        d_ff: None,
        mlp: None,
        norm: None,
        position_encoding: None,
        tie_embeddings: None,
        qkv_bias: None,
        dense_bias: None,
        vocab: Some(50_257),
        positions: Some(1024),
        seq: None,
        batch: None,
    }
}

/// A Llama-style decoder: gated MLP, RMSNorm, RoPE, no biases.
#[allow(clippy::too_many_arguments)]
const fn llama(
    layers: u64,
    d_model: u64,
    heads: u64,
    kv_heads: u64,
    d_ff: u64,
    vocab: u64,
    positions: u64,
    tied: bool,
) -> ShapeSpec {
    ShapeSpec {
        layers,
        d_model,
        heads: Some(heads),
        kv_heads: Some(kv_heads),
        head_dim: None,
        d_ff: Some(d_ff),
        mlp: Some(Mlp::Gated),
        norm: Some(Norm::RmsNorm),
        position_encoding: Some(PositionEncoding::Rope),
        tie_embeddings: Some(tied),
        qkv_bias: Some(false),
        dense_bias: Some(false),
        vocab: Some(vocab),
        positions: Some(positions),
        seq: None,
        batch: None,
    }
}

/// Every preset, smallest first within each family.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "gpt2",
        source: "OpenAI GPT-2 small (124M; Hugging Face gpt2)",
        spec: gpt2(12, 768, 12),
        published_params: 124_439_808,
    },
    Preset {
        name: "gpt2-medium",
        source: "OpenAI GPT-2 medium (355M; Hugging Face gpt2-medium)",
        spec: gpt2(24, 1024, 16),
        published_params: 354_823_168,
    },
    Preset {
        name: "gpt2-large",
        source: "OpenAI GPT-2 large (774M; Hugging Face gpt2-large)",
        spec: gpt2(36, 1280, 20),
        published_params: 774_030_080,
    },
    Preset {
        name: "gpt2-xl",
        source: "OpenAI GPT-2 XL (1.5B; Hugging Face gpt2-xl)",
        spec: gpt2(48, 1600, 25),
        published_params: 1_557_611_200,
    },
    Preset {
        name: "smollm2-135m",
        source: "Hugging Face SmolLM2-135M",
        spec: llama(30, 576, 9, 3, 1536, 49_152, 8192, true),
        published_params: 134_515_008,
    },
    Preset {
        name: "qwen2.5-0.5b",
        source: "Alibaba Qwen2.5-0.5B (biases on q, k, v only)",
        spec: ShapeSpec {
            qkv_bias: Some(true),
            ..llama(24, 896, 14, 2, 4864, 151_936, 32_768, true)
        },
        published_params: 494_032_768,
    },
    Preset {
        name: "tinyllama-1.1b",
        source: "TinyLlama-1.1B (Zhang et al. 2024)",
        spec: llama(22, 2048, 32, 4, 5632, 32_000, 2048, false),
        published_params: 1_100_048_384,
    },
    Preset {
        name: "llama-3.2-1b",
        source: "Meta Llama 3.2 1B",
        spec: llama(16, 2048, 32, 8, 8192, 128_256, 131_072, true),
        published_params: 1_235_814_400,
    },
    Preset {
        name: "gemma-2b",
        source: "Google Gemma 2B (GeGLU, priced as a gated MLP of the same matrices; MQA, head 256)",
        spec: ShapeSpec {
            head_dim: Some(256),
            ..llama(18, 2048, 8, 1, 16_384, 256_000, 8192, true)
        },
        published_params: 2_506_172_416,
    },
    Preset {
        name: "llama-3.2-3b",
        source: "Meta Llama 3.2 3B",
        spec: llama(28, 3072, 24, 8, 8192, 128_256, 131_072, true),
        published_params: 3_212_749_824,
    },
    Preset {
        name: "mistral-7b",
        source: "Mistral 7B v0.1 (its 4096-token sliding window is not modelled: attention spans the context)",
        spec: llama(32, 4096, 32, 8, 14_336, 32_000, 32_768, false),
        published_params: 7_241_732_096,
    },
    Preset {
        name: "llama-3.1-8b",
        source: "Meta Llama 3.1 8B",
        spec: llama(32, 4096, 32, 8, 14_336, 128_256, 131_072, false),
        published_params: 8_030_261_248,
    },
];

/// The preset called `name` (case-insensitive).
pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name.eq_ignore_ascii_case(name.trim()))
}

/// Every preset's name, comma separated (for messages).
pub fn names() -> String {
    PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_has_its_published_parameter_count() {
        for p in PRESETS {
            let shape = p.spec.validate().unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert_eq!(shape.accounting().params.total, p.published_params, "{}", p.name);
        }
    }

    #[test]
    fn llama_3_2_1b_is_grouped_query_gated_rms_rope() {
        let s = find("Llama-3.2-1B").unwrap().spec.validate().unwrap();
        assert_eq!(
            (s.heads(), s.kv_heads(), s.group_size(), s.head_dim()),
            (32, 8, 4, 64)
        );
        assert_eq!(s.accounting().params.position_embedding, 0);
        assert_eq!(s.architecture_suffix(), "kv8.gated.rmsnorm.rope.nobias");
        // Its KV cache: 2 · 16 layers · 8 heads · 64 · 4 bytes = 256 KiB per token.
        let at_1k = s.with_seq(1024).unwrap().accounting().decode.kv_bytes;
        assert_eq!(at_1k, 1024 * 2 * 16 * 8 * 64 * 4);
    }

    #[test]
    fn unknown_names_are_none() {
        assert!(find("llama-9").is_none());
        assert!(names().contains("qwen2.5-0.5b"));
    }
}
