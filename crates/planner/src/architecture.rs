//! The architectural choices of a decoder beyond its dimensions: the MLP,
//! the normalisation, how positions enter, and which weights exist.
//!
//! GPT-2 (2019) and the Llama family (2023–) differ in exactly these: a
//! GELU MLP of two matrices vs a gated one of three (SwiGLU), LayerNorm vs
//! RMSNorm, a learned position table vs rotary embeddings applied to queries
//! and keys, biases everywhere vs none, a tied LM head vs its own matrix.
//! Key/value heads (grouped-query attention) and the head size are
//! dimensions and live on [`crate::Shape`].

use serde::{Deserialize, Serialize};

/// The feed-forward block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mlp {
    /// `W_out · gelu(W_in · x)`: two matrices (GPT-2).
    #[default]
    Gelu,
    /// `W_down · (silu(W_gate · x) ⊙ W_up · x)`: three matrices (SwiGLU:
    /// Llama, Qwen, Mistral; Gemma's GeGLU has the same matrices).
    Gated,
}

/// The normalisation before attention, before the MLP and before the LM head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// Mean and variance, a scale and a shift per feature (2·d parameters).
    #[default]
    #[serde(rename = "layernorm")]
    LayerNorm,
    /// Root mean square, a scale per feature (d parameters).
    #[serde(rename = "rmsnorm")]
    RmsNorm,
}

/// How token positions enter the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionEncoding {
    /// A learned table of `positions × d` added to the token embedding.
    #[default]
    Learned,
    /// Rotary embeddings applied to queries and keys in every block (no parameters).
    Rope,
}

impl Mlp {
    /// Name as written on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Mlp::Gelu => "gelu",
            Mlp::Gated => "gated",
        }
    }
    /// Weight matrices of the block.
    pub fn matrices(self) -> u64 {
        match self {
            Mlp::Gelu => 2,
            Mlp::Gated => 3,
        }
    }
}

impl Norm {
    /// Name as written on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Norm::LayerNorm => "layernorm",
            Norm::RmsNorm => "rmsnorm",
        }
    }
    /// Parameters of one normalisation over `width` features.
    pub fn params(self, width: u64) -> u64 {
        match self {
            Norm::LayerNorm => 2 * width,
            Norm::RmsNorm => width,
        }
    }
}

impl PositionEncoding {
    /// Name as written on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            PositionEncoding::Learned => "learned",
            PositionEncoding::Rope => "rope",
        }
    }
}

/// The default hidden width of an MLP at width `d_model`: 4·d for GELU; for
/// a gated MLP the Llama rule of thumb — two thirds of 4·d (three matrices
/// cost what two of 4·d would), rounded up to a multiple of 256 (Llama 2 7B:
/// d = 4096 → 11008).
pub fn default_d_ff(mlp: Mlp, d_model: u64) -> u64 {
    match mlp {
        Mlp::Gelu => d_model.saturating_mul(4),
        Mlp::Gated => {
            let two_thirds = d_model.saturating_mul(8).div_ceil(3);
            two_thirds.div_ceil(256).saturating_mul(256)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gated_default_follows_llama() {
        assert_eq!(default_d_ff(Mlp::Gated, 4096), 11008);
        assert_eq!(default_d_ff(Mlp::Gated, 5120), 13824); // Llama 2 13B
        assert_eq!(default_d_ff(Mlp::Gelu, 768), 3072);
    }

    #[test]
    fn names_are_the_serde_names() {
        for (v, n) in [(Norm::LayerNorm, "layernorm"), (Norm::RmsNorm, "rmsnorm")] {
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{n}\""));
            assert_eq!(v.name(), n);
        }
        assert_eq!(serde_json::to_string(&Mlp::Gated).unwrap(), "\"gated\"");
        assert_eq!(
            serde_json::to_string(&PositionEncoding::Rope).unwrap(),
            "\"rope\""
        );
    }
}
