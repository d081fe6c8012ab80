//! The physical terms a latency model is built from.
//!
//! Each term is a count computed from the shape's accounting; a fitted model
//! multiplies each by a non-negative coefficient with a unit (ms per GFLOP,
//! ms per layer, ...). Fitting and prediction both call [`term_value`], so they
//! can never disagree on what a term means.

use serde::{Deserialize, Serialize};

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
}

impl Term {
    /// Every term, in a stable order.
    pub const ALL: [Term; 11] = [
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
    ];

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
            | Term::ShortMatmulGflop => "ms/GFLOP",
            Term::WeightMb => "ms/MB",
            Term::ElementwiseMelem | Term::LogitsMelem => "ms/Melem",
            Term::HeadLayers => "ms/(head·layer)",
        }
    }

    /// Which component of the forward pass this term's time belongs to.
    pub fn component(self) -> Component {
        match self {
            Term::Constant => Component::Constant,
            Term::Layers => Component::PerLayerFixed,
            // Split further by FLOP share in predict.
            Term::MatmulGflop | Term::NarrowMatmulGflop | Term::ShortMatmulGflop => Component::Mlp,
            Term::AttentionGflop | Term::HeadLayers => Component::Attention,
            Term::LmHeadGflop | Term::LogitsMelem => Component::LmHead,
            Term::WeightMb | Term::ElementwiseMelem => Component::MemoryTraffic,
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
            Component::Constant => "constant",
        }
    }
}

fn matmul_gflop(shape: &Shape) -> f64 {
    let a = shape.accounting();
    (a.flops.attention_projections + a.flops.mlp) as f64 / 1e9
}

/// The value of one term for a shape.
pub fn term_value(term: Term, shape: &Shape) -> f64 {
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
    fn flop_terms_sum_to_total() {
        let s = ShapeSpec::new(4, 256).validate().unwrap();
        let sum: f64 = [Term::MatmulGflop, Term::AttentionGflop, Term::LmHeadGflop]
            .iter()
            .map(|&t| term_value(t, &s))
            .sum();
        assert!((sum * 1e9 - s.accounting().flops.total as f64).abs() < 1.0);
    }
}
