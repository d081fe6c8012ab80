//! The operator graph: the kernels one step of a decoder runs, with their sizes.
//!
//! For a shape and a phase this lists every operator the Burn model of
//! `bench` executes, in order, each with its kind and dimensions, how many
//! times it runs per step, its FLOPs, the bytes it reads (weights apart) and
//! writes, the weight bytes it reads, and the component it belongs to. A
//! latency model composed from operators prices each entry with a cost law
//! measured for that kind (`bench ops`), so a new architecture is a new list,
//! not new terms.
//!
//! Prefill runs the forward over T = b·n tokens; decode runs one token per
//! sequence against a KV cache of c = `seq` slots (the last one written by
//! the step). FLOPs count a multiply-add as 2 and cover the matrix products
//! and attention only, as [`crate::accounting`] does; attention is counted
//! over the full q×kv score matrix, as the CPU kernels compute it.

use serde::{Deserialize, Serialize};

use crate::accounting::BYTES_PER_ELEMENT;
use crate::architecture::{Mlp, Norm, PositionEncoding};
use crate::features::Component;
use crate::phase::Phase;
use crate::shape::Shape;

/// What an operator computes, with the sizes its cost depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpKind {
    /// A linear layer on `[batch, rows, k]` activations: `· [k, n] + bias`
    /// (rows = n tokens in prefill, 1 in decode: a matrix-vector product per
    /// sequence). Batch and rows are kept apart because a backend may or may
    /// not fold them into one matrix product.
    Linear {
        /// Sequences b.
        batch: u64,
        /// Rows per sequence.
        rows: u64,
        /// Inner size (input features).
        k: u64,
        /// Output features.
        n: u64,
        /// Whether a bias is added (GPT-2: yes; Llama: no).
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        bias: bool,
    },
    /// The LM head, computed as `(W · xᵀ)ᵀ` with W `[vocab, d]` stored
    /// row-major: logits for `tokens` rows.
    LmHead {
        /// Rows of x (tokens).
        tokens: u64,
        /// Width d.
        d: u64,
        /// Vocabulary V.
        vocab: u64,
    },
    /// Fused scaled-dot-product attention over `batch·heads` heads, with the
    /// split of the fused QKV activation before and the merge of heads after.
    Attention {
        /// Sequences b.
        batch: u64,
        /// Heads h.
        heads: u64,
        /// Query positions (n in prefill, 1 in decode).
        q: u64,
        /// Key/value positions (n in prefill, the context c in decode).
        kv: u64,
        /// Head size d_head.
        d_head: u64,
        /// Whether a causal mask applies.
        causal: bool,
    },
    /// Writing one token's keys or values into a `[b, h, c, d_head]` cache buffer.
    KvWrite {
        /// Sequences b.
        batch: u64,
        /// Heads h.
        heads: u64,
        /// Context slots c of the buffer.
        context: u64,
        /// Head size.
        d_head: u64,
    },
    /// LayerNorm over `rows` rows of `width` features.
    LayerNorm {
        /// Rows (tokens).
        rows: u64,
        /// Features per row.
        width: u64,
    },
    /// RMSNorm over `rows` rows of `width` features (a scale, no shift).
    RmsNorm {
        /// Rows (tokens).
        rows: u64,
        /// Features per row.
        width: u64,
    },
    /// Rotary position embedding of `rows` head vectors of `width` (b·heads·positions rows).
    Rope {
        /// Head vectors rotated.
        rows: u64,
        /// Head size.
        width: u64,
    },
    /// The gate of a gated MLP: `silu(gate) ⊙ up` over `elements` values.
    SiluMul {
        /// Values of the product.
        elements: u64,
    },
    /// GELU over `elements` values.
    Gelu {
        /// Values.
        elements: u64,
    },
    /// Elementwise sum of two tensors of `elements` values (residual adds,
    /// token + position embeddings).
    Add {
        /// Values.
        elements: u64,
    },
    /// Gathering `rows` rows of `width` from a table of `table_rows` rows.
    Embedding {
        /// Rows gathered (tokens).
        rows: u64,
        /// Row width d.
        width: u64,
        /// Rows in the table.
        table_rows: u64,
    },
}

/// The kinds an operator can be, without sizes: what a cost law is kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpClass {
    /// [`OpKind::Linear`].
    Linear,
    /// [`OpKind::LmHead`].
    LmHead,
    /// [`OpKind::Attention`].
    Attention,
    /// [`OpKind::KvWrite`].
    KvWrite,
    /// [`OpKind::LayerNorm`].
    LayerNorm,
    /// [`OpKind::RmsNorm`].
    RmsNorm,
    /// [`OpKind::Rope`].
    Rope,
    /// [`OpKind::SiluMul`].
    SiluMul,
    /// [`OpKind::Gelu`].
    Gelu,
    /// [`OpKind::Add`].
    Add,
    /// [`OpKind::Embedding`].
    Embedding,
}

impl OpClass {
    /// Every class, in a stable order.
    pub const ALL: [OpClass; 11] = [
        OpClass::Linear,
        OpClass::LmHead,
        OpClass::Attention,
        OpClass::KvWrite,
        OpClass::LayerNorm,
        OpClass::Gelu,
        OpClass::Add,
        OpClass::Embedding,
        OpClass::RmsNorm,
        OpClass::Rope,
        OpClass::SiluMul,
    ];

    /// The classes of a GPT-2-style graph: what every operator profile has
    /// (the others came with today's architectures; a profile measured
    /// before them prices only GPT-2-style shapes).
    pub const GPT2: [OpClass; 8] = [
        OpClass::Linear,
        OpClass::LmHead,
        OpClass::Attention,
        OpClass::KvWrite,
        OpClass::LayerNorm,
        OpClass::Gelu,
        OpClass::Add,
        OpClass::Embedding,
    ];

    /// Stable snake_case name (as in measurement files and profiles).
    pub fn name(self) -> &'static str {
        match self {
            OpClass::Linear => "linear",
            OpClass::LmHead => "lm_head",
            OpClass::Attention => "attention",
            OpClass::KvWrite => "kv_write",
            OpClass::LayerNorm => "layer_norm",
            OpClass::Gelu => "gelu",
            OpClass::Add => "add",
            OpClass::Embedding => "embedding",
            OpClass::RmsNorm => "rms_norm",
            OpClass::Rope => "rope",
            OpClass::SiluMul => "silu_mul",
        }
    }
}

impl OpKind {
    /// The class of this operator.
    pub fn class(&self) -> OpClass {
        match self {
            OpKind::Linear { .. } => OpClass::Linear,
            OpKind::LmHead { .. } => OpClass::LmHead,
            OpKind::Attention { .. } => OpClass::Attention,
            OpKind::KvWrite { .. } => OpClass::KvWrite,
            OpKind::LayerNorm { .. } => OpClass::LayerNorm,
            OpKind::Gelu { .. } => OpClass::Gelu,
            OpKind::Add { .. } => OpClass::Add,
            OpKind::Embedding { .. } => OpClass::Embedding,
            OpKind::RmsNorm { .. } => OpClass::RmsNorm,
            OpKind::Rope { .. } => OpClass::Rope,
            OpKind::SiluMul { .. } => OpClass::SiluMul,
        }
    }

    /// The sizes a cost law of this class interpolates over, in a fixed order
    /// per class (all ≥ 1; a causal flag is not a size and is part of the key).
    pub fn sizes(&self) -> Vec<u64> {
        match *self {
            OpKind::Linear {
                batch, rows, k, n, ..
            } => vec![batch, rows, k, n],
            OpKind::LmHead { tokens, d, vocab } => vec![tokens, d, vocab],
            OpKind::Attention {
                batch,
                heads,
                q,
                kv,
                d_head,
                ..
            } => vec![batch * heads, q, kv, d_head],
            OpKind::KvWrite {
                batch,
                heads,
                context,
                d_head,
            } => vec![batch * heads, context, d_head],
            OpKind::LayerNorm { rows, width }
            | OpKind::RmsNorm { rows, width }
            | OpKind::Rope { rows, width } => vec![rows, width],
            OpKind::Gelu { elements } | OpKind::Add { elements } | OpKind::SiluMul { elements } => {
                vec![elements]
            }
            OpKind::Embedding { rows, width, .. } => vec![rows, width],
        }
    }

    /// Kernel launches a backend may make one by one: a linear layer's
    /// sequences, attention's heads and cache writes' heads; 1 otherwise.
    pub fn dispatches(&self) -> u64 {
        match *self {
            OpKind::Linear { batch, .. } => batch,
            OpKind::Attention { batch, heads, .. } | OpKind::KvWrite { batch, heads, .. } => batch * heads,
            _ => 1,
        }
    }

    /// Multiply-add FLOPs (×2) of the matrix products and attention; 0
    /// otherwise; `None` where the count overflows (the accounting of a shape
    /// is summed from these, so such a shape is refused).
    pub fn checked_flops(&self) -> Option<u64> {
        let product = |xs: &[u64]| xs.iter().try_fold(1u64, |acc, &x| acc.checked_mul(x));
        match *self {
            OpKind::Linear {
                batch, rows, k, n, ..
            } => product(&[2, batch, rows, k, n]),
            OpKind::LmHead { tokens, d, vocab } => product(&[2, tokens, d, vocab]),
            OpKind::Attention {
                batch,
                heads,
                q,
                kv,
                d_head,
                ..
            } => product(&[4, batch, heads, q, kv, d_head]),
            _ => Some(0),
        }
    }

    /// [`OpKind::checked_flops`], saturating (sizes read from files are not validated).
    pub fn flops(&self) -> u64 {
        self.checked_flops().unwrap_or(u64::MAX)
    }

    /// Weight bytes the operator reads (parameters, not activations).
    pub fn weight_bytes(&self) -> u64 {
        let e = BYTES_PER_ELEMENT;
        match *self {
            OpKind::Linear { k, n, bias, .. } => e * (k * n + if bias { n } else { 0 }),
            OpKind::LmHead { d, vocab, .. } => e * d * vocab,
            OpKind::LayerNorm { width, .. } => e * 2 * width,
            OpKind::RmsNorm { width, .. } => e * width,
            _ => 0,
        }
    }

    /// Activation (and cache) bytes read, weights apart.
    pub fn bytes_read(&self) -> u64 {
        let e = BYTES_PER_ELEMENT;
        match *self {
            OpKind::Linear { batch, rows, k, .. } => e * batch * rows * k,
            OpKind::LmHead { tokens, d, .. } => e * tokens * d,
            OpKind::Attention {
                batch,
                heads,
                q,
                kv,
                d_head,
                ..
            } => e * batch * heads * d_head * (q + 2 * kv),
            OpKind::KvWrite {
                batch, heads, d_head, ..
            } => e * batch * heads * d_head,
            OpKind::LayerNorm { rows, width }
            | OpKind::RmsNorm { rows, width }
            | OpKind::Rope { rows, width } => e * rows * width,
            OpKind::Gelu { elements } => e * elements,
            OpKind::Add { elements } | OpKind::SiluMul { elements } => e * 2 * elements,
            OpKind::Embedding { rows, width, .. } => e * rows * width,
        }
    }

    /// Bytes written.
    pub fn bytes_written(&self) -> u64 {
        let e = BYTES_PER_ELEMENT;
        match *self {
            OpKind::Linear { batch, rows, n, .. } => e * batch * rows * n,
            OpKind::LmHead { tokens, vocab, .. } => e * tokens * vocab,
            OpKind::Attention {
                batch,
                heads,
                q,
                d_head,
                ..
            } => e * batch * heads * q * d_head,
            OpKind::KvWrite {
                batch, heads, d_head, ..
            } => e * batch * heads * d_head,
            OpKind::LayerNorm { rows, width }
            | OpKind::RmsNorm { rows, width }
            | OpKind::Rope { rows, width }
            | OpKind::Embedding { rows, width, .. } => e * rows * width,
            OpKind::Gelu { elements } | OpKind::Add { elements } | OpKind::SiluMul { elements } => {
                e * elements
            }
        }
    }

    /// A stable text key of the kind and its sizes, e.g. `linear b=1 rows=128 k=768 n=2304`.
    pub fn key(&self) -> String {
        match *self {
            OpKind::Linear {
                batch,
                rows,
                k,
                n,
                bias,
            } => {
                let no_bias = if bias { "" } else { " nobias" };
                format!("linear b={batch} rows={rows} k={k} n={n}{no_bias}")
            }
            OpKind::LmHead { tokens, d, vocab } => format!("lm_head tokens={tokens} d={d} vocab={vocab}"),
            OpKind::Attention {
                batch,
                heads,
                q,
                kv,
                d_head,
                causal,
            } => format!("attention b={batch} h={heads} q={q} kv={kv} d_head={d_head} causal={causal}"),
            OpKind::KvWrite {
                batch,
                heads,
                context,
                d_head,
            } => format!("kv_write b={batch} h={heads} c={context} d_head={d_head}"),
            OpKind::LayerNorm { rows, width } => format!("layer_norm rows={rows} width={width}"),
            OpKind::RmsNorm { rows, width } => format!("rms_norm rows={rows} width={width}"),
            OpKind::Rope { rows, width } => format!("rope rows={rows} width={width}"),
            OpKind::SiluMul { elements } => format!("silu_mul elements={elements}"),
            OpKind::Gelu { elements } => format!("gelu elements={elements}"),
            OpKind::Add { elements } => format!("add elements={elements}"),
            OpKind::Embedding {
                rows,
                width,
                table_rows,
            } => format!("embedding rows={rows} width={width} table={table_rows}"),
        }
    }
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// One entry of the graph: an operator, how often it runs per step, and
/// where its time belongs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Operator {
    /// What it computes.
    pub kind: OpKind,
    /// Times it runs per step (L for per-block operators).
    pub count: u64,
    /// The component its time is shown under.
    pub component: Component,
    /// A short name of its role (`qkv`, `mlp_in`, `ln_final`, ...).
    pub role: &'static str,
}

impl Operator {
    /// FLOPs of all its runs.
    pub fn total_flops(&self) -> u64 {
        self.count * self.kind.flops()
    }

    /// Weight bytes of all its runs.
    pub fn total_weight_bytes(&self) -> u64 {
        self.count * self.kind.weight_bytes()
    }

    /// Bytes read and written by all its runs, weights included.
    pub fn total_bytes(&self) -> u64 {
        self.count * (self.kind.weight_bytes() + self.kind.bytes_read() + self.kind.bytes_written())
    }
}

/// The operators of one step of `phase` for `shape`, in execution order
/// (per-block operators once, with `count` = L).
///
/// Grouped-query attention (kv_heads < h) runs as `bench` runs it: each
/// key/value head attends once for its group's g = h/kv query heads, which
/// become g·q query rows (attention over kv heads; in prefill a mask keeps
/// it causal), so keys and values are read once, not g times and not copied.
/// `examples/gqa_attention.rs` measured this against copying keys and values
/// to every query head: faster in decode on both CPU backends (up to 2.6×
/// at c = 2048), in prefill faster or within 5% (README).
pub fn graph(shape: &Shape, phase: Phase) -> Vec<Operator> {
    let (l, d, ff, v) = (shape.layers(), shape.d_model(), shape.d_ff(), shape.vocab());
    let (b, h, kvh, dh) = (shape.batch(), shape.heads(), shape.kv_heads(), shape.head_dim());
    let group = shape.group_size();
    let (aw, kvw) = (shape.attention_width(), shape.kv_width());
    // Tokens processed per step, and the attention geometry.
    let (t, q, kv, causal) = match phase {
        Phase::Prefill => (shape.tokens(), shape.seq(), shape.seq(), true),
        Phase::Decode => (b, 1, shape.seq(), false),
    };
    let linear = |k, n, bias| OpKind::Linear {
        batch: b,
        rows: q,
        k,
        n,
        bias,
    };
    let norm = |rows, width| match shape.norm() {
        Norm::LayerNorm => OpKind::LayerNorm { rows, width },
        Norm::RmsNorm => OpKind::RmsNorm { rows, width },
    };
    let op = |kind, count, component, role| Operator {
        kind,
        count,
        component,
        role,
    };
    let rope = shape.position_encoding() == PositionEncoding::Rope;
    let mut ops = vec![op(
        OpKind::Embedding {
            rows: t,
            width: d,
            table_rows: v,
        },
        1,
        Component::Constant,
        "token_embedding",
    )];
    if !rope {
        ops.extend([
            op(
                OpKind::Embedding {
                    rows: t,
                    width: d,
                    table_rows: shape.positions(),
                },
                1,
                Component::Constant,
                "position_embedding",
            ),
            op(
                OpKind::Add { elements: t * d },
                1,
                Component::Constant,
                "embedding_add",
            ),
        ]);
    }
    ops.extend([
        op(norm(t, d), l, Component::MemoryTraffic, "ln_attention"),
        op(
            linear(d, aw + 2 * kvw, shape.qkv_bias()),
            l,
            Component::Attention,
            "qkv",
        ),
    ]);
    if rope {
        let rotate = |heads: u64| OpKind::Rope {
            rows: b * heads * q,
            width: dh,
        };
        ops.push(op(rotate(h), l, Component::Attention, "rope_queries"));
        ops.push(op(rotate(kvh), l, Component::Attention, "rope_keys"));
    }
    let attention_component = match phase {
        Phase::Prefill => Component::Attention,
        Phase::Decode => Component::KvCache,
    };
    if phase == Phase::Decode {
        let write = OpKind::KvWrite {
            batch: b,
            heads: kvh,
            context: kv,
            d_head: dh,
        };
        ops.push(op(write, 2 * l, Component::KvCache, "kv_write"));
    }
    let attention = OpKind::Attention {
        batch: b,
        heads: kvh,
        q: group * q,
        kv,
        d_head: dh,
        causal,
    };
    ops.extend([
        op(attention, l, attention_component, "attention"),
        op(
            linear(aw, d, shape.dense_bias()),
            l,
            Component::Attention,
            "out_projection",
        ),
        op(
            OpKind::Add { elements: t * d },
            l,
            Component::MemoryTraffic,
            "residual_attention",
        ),
        op(norm(t, d), l, Component::MemoryTraffic, "ln_mlp"),
    ]);
    let dense_bias = shape.dense_bias();
    match shape.mlp() {
        Mlp::Gelu => ops.extend([
            op(linear(d, ff, dense_bias), l, Component::Mlp, "mlp_in"),
            op(OpKind::Gelu { elements: t * ff }, l, Component::Mlp, "gelu"),
        ]),
        Mlp::Gated => ops.extend([
            op(linear(d, ff, dense_bias), l, Component::Mlp, "mlp_gate"),
            op(linear(d, ff, dense_bias), l, Component::Mlp, "mlp_up"),
            op(
                OpKind::SiluMul { elements: t * ff },
                l,
                Component::Mlp,
                "silu_mul",
            ),
        ]),
    }
    ops.extend([
        op(linear(ff, d, dense_bias), l, Component::Mlp, "mlp_out"),
        op(
            OpKind::Add { elements: t * d },
            l,
            Component::MemoryTraffic,
            "residual_mlp",
        ),
        op(norm(t, d), 1, Component::LmHead, "ln_final"),
        op(
            OpKind::LmHead {
                tokens: t,
                d,
                vocab: v,
            },
            1,
            Component::LmHead,
            "lm_head",
        ),
    ]);
    ops
}

/// Bytes one step reads and writes in all (weights, activations, KV cache):
/// the working set whose size decides which memory level serves it.
pub fn step_bytes(ops: &[Operator]) -> u64 {
    ops.iter().map(Operator::total_bytes).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::ShapeSpec;
    use proptest::prelude::*;

    fn sum(ops: &[Operator], f: impl Fn(&Operator) -> u64) -> u64 {
        ops.iter().map(f).sum()
    }

    fn gpt2_small() -> Shape {
        ShapeSpec {
            heads: Some(12),
            ..ShapeSpec::new(12, 768)
        }
        .validate()
        .unwrap()
    }

    /// Closed forms of one step's matrix-product and attention FLOPs (the
    /// accounting is summed from the graph; these check the graph).
    fn closed_form_flops(s: &Shape, phase: Phase) -> u64 {
        let (l, d, ff, v, b) = (s.layers(), s.d_model(), s.d_ff(), s.vocab(), s.batch());
        let (rows, kv) = match phase {
            Phase::Prefill => (s.seq(), s.seq()),
            Phase::Decode => (1, s.seq()),
        };
        let t = b * rows;
        l * (8 * t * d * d + 4 * t * d * ff + 4 * b * rows * kv * d) + 2 * t * d * v
    }

    #[test]
    fn gpt2_small_flops_and_weights_match_closed_forms() {
        let s = gpt2_small();
        let a = s.accounting();
        let prefill = graph(&s, Phase::Prefill);
        assert_eq!(
            sum(&prefill, Operator::total_flops),
            closed_form_flops(&s, Phase::Prefill)
        );
        // 12·(8·T·d² + 4·T·d·4d + 4·n²·d) + 2·T·d·V at T = n = 128.
        assert_eq!(a.flops.total, 32_228_179_968);
        let decode = graph(&s, Phase::Decode);
        assert_eq!(
            sum(&decode, Operator::total_flops),
            closed_form_flops(&s, Phase::Decode)
        );
        // Every weight but the position table is read once per step.
        let read = 4 * (a.params.total - a.params.position_embedding);
        assert_eq!(sum(&decode, Operator::total_weight_bytes), read);
        assert_eq!(sum(&prefill, Operator::total_weight_bytes), read);
        assert_eq!(a.decode.weight_bytes, read);
    }

    #[test]
    fn decode_writes_keys_and_values_and_attends_over_the_context() {
        let s = ShapeSpec {
            seq: Some(256),
            batch: Some(2),
            ..ShapeSpec::new(3, 128)
        }
        .validate()
        .unwrap();
        let ops = graph(&s, Phase::Decode);
        let writes: Vec<_> = ops
            .iter()
            .filter(|o| o.kind.class() == OpClass::KvWrite)
            .collect();
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].count, 6);
        let attention = ops.iter().find(|o| o.kind.class() == OpClass::Attention).unwrap();
        assert_eq!(
            attention.kind,
            OpKind::Attention {
                batch: 2,
                heads: 2,
                q: 1,
                kv: 256,
                d_head: 64,
                causal: false
            }
        );
        // The attention reads the whole cache: 2 (K and V) · L · b · c · d · 4 bytes.
        let kv_read = attention.count * attention.kind.bytes_read();
        let query = 3 * 2 * 128 * 4;
        assert_eq!(kv_read - query, s.accounting().decode.kv_bytes);
        assert!(
            !graph(&s, Phase::Prefill)
                .iter()
                .any(|o| o.kind.class() == OpClass::KvWrite)
        );
    }

    #[test]
    fn keys_name_kind_and_sizes() {
        let k = OpKind::Linear {
            batch: 2,
            rows: 128,
            k: 768,
            n: 2304,
            bias: true,
        };
        assert_eq!(k.key(), "linear b=2 rows=128 k=768 n=2304");
        assert_eq!(k.sizes(), vec![2, 128, 768, 2304]);
        assert_eq!(k.class().name(), "linear");
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(json, r#"{"kind":"linear","batch":2,"rows":128,"k":768,"n":2304}"#);
        assert_eq!(serde_json::from_str::<OpKind>(&json).unwrap(), k);
    }

    fn llama_like(kv_heads: u64, seq: u64, batch: u64) -> Shape {
        ShapeSpec {
            heads: Some(8),
            kv_heads: Some(kv_heads),
            mlp: Some(Mlp::Gated),
            norm: Some(Norm::RmsNorm),
            position_encoding: Some(PositionEncoding::Rope),
            tie_embeddings: Some(false),
            qkv_bias: Some(false),
            dense_bias: Some(false),
            seq: Some(seq),
            batch: Some(batch),
            ..ShapeSpec::new(4, 512)
        }
        .validate()
        .unwrap()
    }

    #[test]
    fn grouped_query_decode_reads_the_smaller_cache_once() {
        let s = llama_like(2, 512, 3);
        let ops = graph(&s, Phase::Decode);
        let attention = ops.iter().find(|o| o.role == "attention").unwrap();
        // 2 key/value heads, each attending for its 4 query heads at once.
        assert_eq!(
            attention.kind,
            OpKind::Attention {
                batch: 3,
                heads: 2,
                q: 4,
                kv: 512,
                d_head: 64,
                causal: false
            }
        );
        let kv_read = attention.count * attention.kind.bytes_read();
        let queries = 4 * 3 * 8 * 64 * 4;
        assert_eq!(kv_read - queries, s.accounting().decode.kv_bytes);
        assert_eq!(s.accounting().decode.kv_bytes, 4 * 2 * 4 * 3 * 512 * 2 * 64);
        // Same FLOPs as multi-head attention over 8 heads.
        let mha = llama_like(8, 512, 3);
        assert_eq!(
            s.accounting().decode.flops.attention_scores,
            mha.accounting().decode.flops.attention_scores
        );
        assert!(!ops.iter().any(|o| o.role == "position_embedding"));
    }

    #[test]
    fn grouped_query_prefill_folds_each_group_into_query_rows() {
        let s = llama_like(2, 128, 1);
        let ops = graph(&s, Phase::Prefill);
        let attention = ops.iter().find(|o| o.role == "attention").unwrap();
        assert_eq!(
            attention.kind,
            OpKind::Attention {
                batch: 1,
                heads: 2,
                q: 4 * 128,
                kv: 128,
                d_head: 64,
                causal: true
            }
        );
        let roles: Vec<&str> = ops.iter().map(|o| o.role).collect();
        for role in [
            "rope_queries",
            "rope_keys",
            "mlp_gate",
            "mlp_up",
            "silu_mul",
            "mlp_out",
        ] {
            assert!(roles.contains(&role), "{roles:?}");
        }
        // Untied: the head's own matrix is read, as the tied one would be.
        let a = s.accounting();
        assert_eq!(a.params.lm_head, 512 * 50257);
        assert_eq!(
            sum(&ops, Operator::total_weight_bytes),
            4 * (a.params.total - a.params.token_embedding)
        );
        // Gated MLP: 3 matrices of d × d_ff (default 1536 = 256·⌈8·512/3/256⌉).
        assert_eq!(s.d_ff(), 1536);
        assert_eq!(a.flops.mlp, 4 * 6 * 128 * 512 * 1536);
    }

    proptest! {
        #[test]
        fn graph_flops_and_weights_equal_the_accounting(
            layers in 1u64..48,
            heads in 1u64..24,
            head_dim in 1u64..160,
            ff_mult in 1u64..6,
            vocab in 1u64..60_000,
            seq in 1u64..1024,
            batch in 1u64..16,
        ) {
            let d = heads * head_dim;
            let s = ShapeSpec {
                heads: Some(heads),
                d_ff: Some(ff_mult * d),
                vocab: Some(vocab),
                seq: Some(seq),
                batch: Some(batch),
                ..ShapeSpec::new(layers, d)
            }
            .validate()
            .unwrap();
            let a = s.accounting();
            let prefill = graph(&s, Phase::Prefill);
            let decode = graph(&s, Phase::Decode);
            prop_assert_eq!(sum(&prefill, Operator::total_flops), closed_form_flops(&s, Phase::Prefill));
            prop_assert_eq!(sum(&decode, Operator::total_flops), closed_form_flops(&s, Phase::Decode));
            // The accounting is the graph's sum.
            prop_assert_eq!(sum(&prefill, Operator::total_flops), a.flops.total);
            prop_assert_eq!(sum(&decode, Operator::total_flops), a.decode.flops.total);
            // Weights: every parameter but the position table, read once per step.
            let read = 4 * (a.params.total - a.params.position_embedding);
            prop_assert_eq!(sum(&decode, Operator::total_weight_bytes), read);
            prop_assert_eq!(sum(&prefill, Operator::total_weight_bytes), read);
            // Matrix-product FLOPs split by component as the closed forms split them.
            let by = |ops: &[Operator], c: Component| -> u64 {
                ops.iter().filter(|o| o.component == c && o.kind.class() == OpClass::Linear).map(Operator::total_flops).sum()
            };
            let t = batch * seq;
            prop_assert_eq!(by(&prefill, Component::Attention), layers * 8 * t * d * d);
            prop_assert_eq!(by(&prefill, Component::Mlp), layers * 4 * t * d * ff_mult * d);
            prop_assert!(step_bytes(&decode) >= a.decode.weight_bytes + a.decode.kv_bytes);
        }
    }
}
