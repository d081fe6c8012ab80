//! Reading a Hugging Face `config.json` into a shape.
//!
//! Keys of the GPT-2, Llama, Mistral, Qwen 2 and Gemma families are mapped
//! (`num_hidden_layers`/`n_layer`, `hidden_size`/`n_embd`,
//! `num_attention_heads`/`n_head`, `num_key_value_heads`,
//! `intermediate_size`/`n_inner`, `vocab_size`, `hidden_act`,
//! `tie_word_embeddings`, `max_position_embeddings`/`n_positions`,
//! `attention_bias`, `mlp_bias`, `head_dim`). What the latency model cannot
//! express — experts, sliding windows, soft-capping, per-head norms,
//! quantisation — is named in a warning, never dropped silently. Input is
//! refused by size and nesting depth before it is parsed.

use serde_json::{Map, Value};
use thiserror::Error;

use crate::architecture::{Mlp, Norm, PositionEncoding};
use crate::shape::ShapeSpec;

/// Largest accepted file: real configs are a few KiB.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;
/// Deepest accepted nesting of objects and arrays (real configs: 3).
pub const MAX_CONFIG_DEPTH: usize = 16;

/// Why a config cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Too large to be a model config.
    #[error("config is {bytes} bytes; a model config.json is a few KiB (limit {MAX_CONFIG_BYTES} bytes)")]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// Nested deeper than a config ever is.
    #[error(
        "config nests objects/arrays {depth} deep; a model config.json nests a few levels (limit {MAX_CONFIG_DEPTH})"
    )]
    TooDeep {
        /// The depth reached.
        depth: usize,
    },
    /// Not JSON.
    #[error("config is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("config must be a JSON object of model settings (got {0})")]
    NotObject(&'static str),
    /// A required key is absent.
    #[error("config lacks `{key}`{aliases}: {meaning}")]
    Missing {
        /// The key (its first name).
        key: &'static str,
        /// Its other accepted names, pre-formatted.
        aliases: String,
        /// What it means.
        meaning: &'static str,
    },
    /// A key has the wrong type or an impossible value.
    #[error("config key `{key}` {problem}")]
    Bad {
        /// The key as written in the file.
        key: String,
        /// What is wrong.
        problem: String,
    },
}

/// A config read into a shape.
#[derive(Debug, Clone, PartialEq)]
pub struct HfConfig {
    /// The architecture and dimensions (seq and batch left unset).
    pub spec: ShapeSpec,
    /// `model_type`, when given.
    pub model_type: Option<String>,
    /// What was not mapped or was assumed, one sentence each.
    pub warnings: Vec<String>,
}

/// How deep `text` nests, counting brackets outside strings (a cheap scan,
/// so a hostile file is refused before a parser recurses into it).
fn nesting_depth(text: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for byte in text.bytes() {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

struct Keys<'a> {
    map: &'a Map<String, Value>,
}

impl Keys<'_> {
    /// The first of `names` present and not null, with the name found.
    fn find(&self, names: &[&'static str]) -> Option<(&'static str, &Value)> {
        names
            .iter()
            .find_map(|n| self.map.get(*n).filter(|v| !v.is_null()).map(|v| (*n, v)))
    }

    fn count(&self, names: &[&'static str]) -> Result<Option<(&'static str, u64)>, ConfigError> {
        let Some((name, value)) = self.find(names) else {
            return Ok(None);
        };
        match value.as_u64() {
            Some(n) if n > 0 => Ok(Some((name, n))),
            _ => Err(ConfigError::Bad {
                key: name.into(),
                problem: format!("must be a positive integer (got {value})"),
            }),
        }
    }

    fn required(
        &self,
        names: &[&'static str],
        meaning: &'static str,
    ) -> Result<(&'static str, u64), ConfigError> {
        self.count(names)?.ok_or_else(|| ConfigError::Missing {
            key: names[0],
            aliases: if names.len() > 1 {
                format!(" (or `{}`)", names[1..].join("`, `"))
            } else {
                String::new()
            },
            meaning,
        })
    }

    fn flag(&self, name: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.find(&[name]) {
            None => Ok(None),
            Some((_, Value::Bool(b))) => Ok(Some(*b)),
            Some((_, v)) => Err(ConfigError::Bad {
                key: name.into(),
                problem: format!("must be true or false (got {})", type_name(v)),
            }),
        }
    }

    fn text(&self, names: &[&'static str]) -> Result<Option<(&'static str, String)>, ConfigError> {
        match self.find(names) {
            None => Ok(None),
            Some((n, Value::String(s))) => Ok(Some((n, s.to_ascii_lowercase()))),
            Some((n, v)) => Err(ConfigError::Bad {
                key: n.into(),
                problem: format!("must be a string (got {})", type_name(v)),
            }),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.map.get(name).is_some_and(|v| !v.is_null())
    }
}

/// Families whose configs mean a gated MLP, RMSNorm and rotary positions
/// even where a key is missing (their Hugging Face classes hard-code them).
const LLAMA_LIKE: &[&str] = &[
    "llama",
    "mistral",
    "mixtral",
    "qwen2",
    "qwen2_moe",
    "qwen3",
    "qwen3_moe",
    "phi3",
    "gemma",
    "gemma2",
    "gemma3_text",
    "smollm3",
    "olmo2",
];

/// Reads a `config.json` text.
pub fn parse(text: &str) -> Result<HfConfig, ConfigError> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge { bytes: text.len() });
    }
    let depth = nesting_depth(text);
    if depth > MAX_CONFIG_DEPTH {
        return Err(ConfigError::TooDeep { depth });
    }
    let value: Value = serde_json::from_str(text).map_err(|e| ConfigError::NotJson(e.to_string()))?;
    let Value::Object(map) = &value else {
        return Err(ConfigError::NotObject(type_name(&value)));
    };
    // Multimodal configs keep the language model under `text_config`.
    let map = match map.get("text_config") {
        Some(Value::Object(inner)) if !map.contains_key("hidden_size") => inner,
        _ => map,
    };
    let keys = Keys { map };
    let mut warnings = vec![];
    let model_type = keys.text(&["model_type"])?.map(|(_, t)| t);
    let family = model_type.as_deref().unwrap_or("");
    let llama_like = LLAMA_LIKE.contains(&family);

    let (_, layers) = keys.required(
        &["num_hidden_layers", "n_layer", "num_layers"],
        "the number of blocks",
    )?;
    let (hidden_key, d_model) = keys.required(&["hidden_size", "n_embd", "d_model"], "the residual width")?;
    let (heads_key, heads) = keys.required(&["num_attention_heads", "n_head"], "the attention heads")?;
    let (_, vocab) = keys.required(&["vocab_size"], "the vocabulary size")?;
    let kv_heads = keys.count(&["num_key_value_heads"])?;
    if let Some((kv_key, kv)) = kv_heads
        && (kv > heads || !heads.is_multiple_of(kv))
    {
        return Err(ConfigError::Bad {
            key: kv_key.into(),
            problem: format!(
                "({kv}) must divide `{heads_key}` ({heads}): each key/value head serves a whole group of query heads"
            ),
        });
    }
    let head_dim = keys.count(&["head_dim"])?;
    if head_dim.is_none() && !d_model.is_multiple_of(heads) {
        return Err(ConfigError::Bad {
            key: hidden_key.into(),
            problem: format!(
                "({d_model}) must be divisible by `{heads_key}` ({heads}) when `head_dim` is not given"
            ),
        });
    }
    let positions = keys.count(&["max_position_embeddings", "n_positions", "n_ctx"])?;

    let act = keys.text(&["hidden_act", "hidden_activation", "activation_function"])?;
    let mlp = match act.as_ref().map(|(k, a)| (*k, a.as_str())) {
        Some((_, "silu" | "swish" | "swiglu")) => Mlp::Gated,
        Some((_, a)) if a.starts_with("gelu") && family.starts_with("gemma") => {
            warnings.push(format!(
                "`{family}` gates its MLP with {a} (GeGLU); priced as the gated MLP of the same three matrices (SiLU)"
            ));
            Mlp::Gated
        }
        Some((_, a)) if a.starts_with("gelu") => Mlp::Gelu,
        Some((key, a)) => {
            return Err(ConfigError::Bad {
                key: key.into(),
                problem: format!(
                    "`{a}` is not an activation Chimera models (silu: gated MLP; gelu: GPT-2's MLP)"
                ),
            });
        }
        None if llama_like => Mlp::Gated,
        None => Mlp::Gelu,
    };
    let d_ff = keys
        .count(&["intermediate_size", "n_inner", "ffn_dim"])?
        .map(|(_, f)| f);

    let norm = if keys.has("rms_norm_eps") || llama_like {
        Norm::RmsNorm
    } else {
        Norm::LayerNorm
    };
    let rope = [
        "rope_theta",
        "rope_scaling",
        "rotary_dim",
        "rotary_pct",
        "partial_rotary_factor",
    ]
    .iter()
    .any(|k| keys.has(k))
        || llama_like;
    let position_encoding = if rope {
        PositionEncoding::Rope
    } else {
        PositionEncoding::Learned
    };

    let tie = match keys.flag("tie_word_embeddings")? {
        Some(t) => t,
        None => {
            // The Hugging Face class defaults: Llama, Mistral and Qwen untie,
            // GPT-2 and Gemma tie.
            let tied = !llama_like || family.starts_with("gemma");
            warnings.push(format!(
                "`tie_word_embeddings` absent: took {tied}, the default of {}",
                if family.is_empty() {
                    "configs without a model_type"
                } else {
                    family
                }
            ));
            tied
        }
    };
    let (qkv_bias, dense_bias) = if family == "qwen2" {
        (true, false)
    } else if llama_like || keys.has("attention_bias") {
        let attention = keys.flag("attention_bias")?.unwrap_or(false);
        let mlp_bias = keys.flag("mlp_bias")?.unwrap_or(false);
        if attention && !mlp_bias {
            warnings.push(
                "`attention_bias` true: the output projection's bias is priced with the MLP's (absent), so d parameters per layer are not counted".into(),
            );
        }
        (attention, mlp_bias)
    } else {
        (true, true)
    };

    unmapped_warnings(&keys, family, &mut warnings)?;

    let spec = ShapeSpec {
        layers,
        d_model,
        heads: Some(heads),
        kv_heads: kv_heads.map(|(_, k)| k),
        head_dim: head_dim.map(|(_, h)| h),
        d_ff,
        mlp: Some(mlp),
        norm: Some(norm),
        position_encoding: Some(position_encoding),
        tie_embeddings: Some(tie),
        qkv_bias: Some(qkv_bias),
        dense_bias: Some(dense_bias),
        vocab: Some(vocab),
        positions: positions.map(|(_, p)| p),
        seq: None,
        batch: None,
    };
    Ok(HfConfig {
        spec,
        model_type,
        warnings,
    })
}

/// Warnings for what the config has and the model does not express.
fn unmapped_warnings(keys: &Keys, family: &str, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    for key in [
        "num_local_experts",
        "num_experts",
        "n_routed_experts",
        "moe_num_experts",
    ] {
        if let Some((_, n)) = keys.count(&[key]).ok().flatten()
            && n > 1
        {
            warnings.push(format!(
                "`{key}` = {n}: mixture-of-experts is not modelled; priced as one dense MLP of `intermediate_size`"
            ));
        }
    }
    let sliding = keys.count(&["sliding_window"]).ok().flatten();
    if let Some((_, window)) = sliding
        && keys.flag("use_sliding_window").ok().flatten() != Some(false)
    {
        warnings.push(format!(
            "`sliding_window` = {window}: not modelled; attention is priced over the whole context"
        ));
    }
    for key in ["attn_logit_softcapping", "final_logit_softcapping"] {
        if keys.has(key) {
            warnings.push(format!(
                "`{key}`: soft-capping is not modelled (a few elementwise operations)"
            ));
        }
    }
    if family == "qwen3" {
        warnings.push(
            "qwen3's per-head query/key RMSNorms are not modelled (2·head_dim parameters per layer)".into(),
        );
    }
    if family == "gemma2" || family == "gemma3_text" {
        warnings.push(format!(
            "`{family}`'s extra norms around attention and the MLP are not modelled (2·d parameters per layer)"
        ));
    }
    if let Some((_, f)) = keys.find(&["partial_rotary_factor"])
        && f.as_f64() != Some(1.0)
    {
        warnings.push(format!(
            "`partial_rotary_factor` = {f}: rotary embeddings are priced over whole heads"
        ));
    }
    if keys.has("quantization_config") {
        warnings.push(
            "`quantization_config`: quantised weights are not modelled; Chimera measures and prices f32"
                .into(),
        );
    }
    if let Some((key, dtype)) = keys.text(&["torch_dtype", "dtype"])?
        && dtype != "float32"
    {
        warnings.push(format!(
            "`{key}` = {dtype}: Chimera measures and prices f32 (bytes and memory are f32's)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presets;

    const LLAMA_3_2_1B: &str = r#"{
      "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
      "bos_token_id": 128000, "eos_token_id": 128001, "head_dim": 64, "hidden_act": "silu",
      "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 8192,
      "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
      "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
      "pretraining_tp": 1, "rms_norm_eps": 1e-05,
      "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                       "original_max_position_embeddings": 8192, "rope_type": "llama3"},
      "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
      "transformers_version": "4.45.0.dev0", "use_cache": true, "vocab_size": 128256 }"#;

    const GPT2: &str = r#"{ "activation_function": "gelu_new", "model_type": "gpt2", "n_ctx": 1024,
      "n_embd": 768, "n_head": 12, "n_inner": null, "n_layer": 12, "n_positions": 1024,
      "layer_norm_epsilon": 1e-05, "vocab_size": 50257 }"#;

    const MIXTRAL: &str = r#"{ "model_type": "mistral", "hidden_size": 4096, "num_hidden_layers": 32,
      "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
      "vocab_size": 32000, "sliding_window": 4096, "num_local_experts": 8, "hidden_act": "silu" }"#;

    #[test]
    fn llama_3_2_1b_config_is_the_preset() {
        let c = parse(LLAMA_3_2_1B).unwrap();
        let shape = c.spec.validate().unwrap();
        let preset = presets::find("llama-3.2-1b").unwrap().spec.validate().unwrap();
        assert_eq!(shape, preset);
        assert_eq!(shape.accounting().params.total, 1_235_814_400);
        assert_eq!(
            c.warnings,
            vec!["`torch_dtype` = bfloat16: Chimera measures and prices f32 (bytes and memory are f32's)"]
        );
    }

    #[test]
    fn gpt2_config_is_gpt2_small() {
        let shape = parse(GPT2).unwrap().spec.validate().unwrap();
        assert!(shape.is_gpt2_style());
        assert_eq!(shape.accounting().params.total, 124_439_808);
    }

    #[test]
    fn experts_and_windows_are_named_not_dropped() {
        let c = parse(MIXTRAL).unwrap();
        let all = c.warnings.join("\n");
        assert!(all.contains("`num_local_experts` = 8"), "{all}");
        assert!(all.contains("`sliding_window` = 4096"), "{all}");
        assert!(all.contains("`tie_word_embeddings` absent: took false"), "{all}");
        assert!(!c.spec.validate().unwrap().tie_embeddings());
    }

    #[test]
    fn moe_families_read_as_llama_like_with_their_experts_named() {
        let c = parse(
            r#"{"model_type": "mixtral", "hidden_size": 4096, "num_hidden_layers": 32,
            "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
            "vocab_size": 32000, "num_local_experts": 8, "rms_norm_eps": 1e-5}"#,
        )
        .unwrap();
        let s = c.spec.validate().unwrap();
        assert_eq!(
            (s.mlp(), s.tie_embeddings(), s.qkv_bias()),
            (Mlp::Gated, false, false)
        );
        assert!(
            c.warnings.iter().any(|w| w.contains("`num_local_experts` = 8")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn bad_configs_name_the_key() {
        let err = |t: &str| parse(t).unwrap_err().to_string();
        assert!(err("{ not json").starts_with("config is not valid JSON"));
        assert_eq!(
            err("[1, 2]"),
            "config must be a JSON object of model settings (got an array)"
        );
        assert!(
            err(r#"{"hidden_size": 64, "num_attention_heads": 2, "vocab_size": 10}"#)
                .contains("lacks `num_hidden_layers` (or `n_layer`, `num_layers`)")
        );
        let contradictory = r#"{"num_hidden_layers": 2, "hidden_size": 2048, "num_attention_heads": 32,
            "num_key_value_heads": 6, "vocab_size": 100}"#;
        assert!(
            err(contradictory).contains("`num_key_value_heads` (6) must divide `num_attention_heads` (32)")
        );
        let negative =
            r#"{"num_hidden_layers": -2, "hidden_size": 64, "num_attention_heads": 2, "vocab_size": 10}"#;
        assert!(err(negative).contains("`num_hidden_layers` must be a positive integer (got -2)"));
        let odd =
            r#"{"num_hidden_layers": 2, "hidden_size": 100, "num_attention_heads": 3, "vocab_size": 10}"#;
        assert!(err(odd).contains("`hidden_size` (100) must be divisible by `num_attention_heads` (3)"));
        let act = r#"{"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 2, "vocab_size": 10, "hidden_act": "relu"}"#;
        assert!(err(act).contains("`hidden_act` `relu` is not an activation"));
    }

    #[test]
    fn huge_and_deep_files_are_refused_before_parsing() {
        let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(10 << 20));
        assert!(matches!(parse(&big), Err(ConfigError::TooLarge { .. })));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse(&deep), Err(ConfigError::TooDeep { depth: 100_000 }));
        // Brackets inside strings do not count.
        let quoted = r#"{"note": "[[[[[[[[[[[[[[[[[[[[[[[[[", "num_hidden_layers": 1, "hidden_size": 64,
            "num_attention_heads": 1, "vocab_size": 10}"#;
        assert!(parse(quoted).is_ok());
    }
}
