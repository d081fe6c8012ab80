//! WebAssembly bindings of `planner` for the static web calculator.
//!
//! No logic lives here: every function parses its JSON argument, calls the
//! planner, and serialises the answer, exactly as `chimera-plan --json` does,
//! so the page and the CLI print the same numbers. Errors become JavaScript
//! `Error`s with the planner's message.

use planner::plan::{PlanRequest, charts, plan};
use planner::profile::Profile;
use wasm_bindgen::prelude::*;

/// A loaded, validated profile.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Planner {
    profile: Profile,
}

fn request(json: &str) -> Result<PlanRequest, String> {
    serde_json::from_str(json).map_err(|e| format!("invalid request: {e}"))
}

impl Planner {
    /// Loads a profile from JSON (size-limited and validated by the planner).
    pub fn from_json(json: &str) -> Result<Planner, String> {
        Profile::from_json(json)
            .map(|profile| Planner { profile })
            .map_err(|e| e.to_string())
    }

    /// The `chimera-plan --json` answer for a request, as JSON.
    pub fn plan_json(&self, request_json: &str) -> Result<String, String> {
        let answer = plan(&self.profile, &request(request_json)?).map_err(|e| e.to_string())?;
        serde_json::to_string(&answer).map_err(|e| e.to_string())
    }

    /// `{"depth_svg": ..., "params_svg": ...}` for a request.
    pub fn charts_json(&self, request_json: &str) -> Result<String, String> {
        let c = charts(&self.profile, &request(request_json)?).map_err(|e| e.to_string())?;
        serde_json::to_string(&c).map_err(|e| e.to_string())
    }
}

#[wasm_bindgen]
impl Planner {
    /// Loads a user's profile; the error names what is wrong with it.
    #[wasm_bindgen(constructor)]
    pub fn new(profile_json: &str) -> Result<Planner, JsError> {
        Self::from_json(profile_json).map_err(|e| JsError::new(&e))
    }

    /// The profile embedded in the planner (fitted from the committed measurements).
    pub fn embedded() -> Planner {
        Planner {
            profile: planner::default_profile(),
        }
    }

    /// The profile's name.
    pub fn name(&self) -> String {
        self.profile.name.clone()
    }

    /// The profile's backends, in profile order.
    pub fn backends(&self) -> Vec<String> {
        self.profile.backend_names()
    }

    /// Answers a request (JSON of `planner::plan::PlanRequest`) with JSON of `planner::plan::Plan`.
    pub fn plan(&self, request_json: &str) -> Result<String, JsError> {
        self.plan_json(request_json).map_err(|e| JsError::new(&e))
    }

    /// The two SVG charts of a request, as JSON `{depth_svg, params_svg}` (either may be null).
    pub fn charts(&self, request_json: &str) -> Result<String, JsError> {
        self.charts_json(request_json).map_err(|e| JsError::new(&e))
    }
}

/// Milliseconds as µs/ms/s, as the CLI prints them.
#[wasm_bindgen]
pub fn duration(ms: f64) -> String {
    planner::format::duration_ms(ms)
}

/// A count with K/M/B, as the CLI prints it.
#[wasm_bindgen]
pub fn count(n: f64) -> String {
    if n.is_finite() && n >= 0.0 {
        planner::format::count(n as u64)
    } else {
        "n/a".into()
    }
}

/// Bytes in KiB/MiB/GiB, as the CLI prints them.
#[wasm_bindgen]
pub fn bytes(n: f64) -> String {
    if n.is_finite() && n >= 0.0 {
        planner::format::bytes(n as u64)
    } else {
        "n/a".into()
    }
}

/// Parses `25M`, `1.5B`, `300k` as the CLI's `--budget` does.
#[wasm_bindgen]
pub fn parse_count(text: &str) -> Result<f64, JsError> {
    planner::format::parse_count(text)
        .map(|v| v as f64)
        .map_err(|e| JsError::new(&e))
}

/// The presets: `[{"name", "source", "published_params", "spec"}]`, spec
/// as a shape's fields (`layers`, `d_model`, `heads`, `kv_heads`, ...).
pub fn presets() -> String {
    let all: Vec<serde_json::Value> = planner::presets::PRESETS
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "source": p.source,
                "published_params": p.published_params,
                "spec": p.spec,
            })
        })
        .collect();
    serde_json::Value::Array(all).to_string()
}

/// A Hugging Face config.json read as `chimera-plan --config` reads it:
/// `{"spec": {...}, "warnings": [...]}`; the error names the key.
pub fn config(text: &str) -> Result<String, String> {
    let c = planner::hf_config::parse(text).map_err(|e| e.to_string())?;
    Ok(serde_json::json!({ "spec": c.spec, "warnings": c.warnings }).to_string())
}

/// [`presets`] for the page.
#[wasm_bindgen]
pub fn presets_json() -> String {
    presets()
}

/// [`config`] for the page.
#[wasm_bindgen]
pub fn read_config(text: &str) -> Result<String, JsError> {
    config(text).map_err(|e| JsError::new(&e))
}

/// Largest config.json the page reads, bytes.
#[wasm_bindgen]
pub fn max_config_bytes() -> usize {
    planner::hf_config::MAX_CONFIG_BYTES
}

/// Largest profile file the page accepts, bytes.
#[wasm_bindgen]
pub fn max_profile_bytes() -> usize {
    planner::profile::MAX_PROFILE_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_match_the_planner() {
        let p = Planner::embedded();
        let json = p.plan_json(r#"{"layers": 16, "d_model": 512}"#).unwrap();
        let direct = plan(
            &planner::default_profile(),
            &PlanRequest {
                layers: Some(16),
                d_model: Some(512),
                ..PlanRequest::default()
            },
        )
        .unwrap();
        assert_eq!(json, serde_json::to_string(&direct).unwrap());
    }

    #[test]
    fn bad_input_is_an_error_message() {
        let p = Planner::embedded();
        assert!(p.plan_json("{").unwrap_err().contains("invalid request"));
        assert!(
            p.plan_json(r#"{"layers": 0, "d_model": 64}"#)
                .unwrap_err()
                .contains("layers")
        );
        assert!(Planner::from_json("{}").is_err());
        assert!(Planner::from_json("[1,2").unwrap_err().contains("JSON"));
    }

    #[test]
    fn presets_and_configs_read_as_the_cli_reads_them() {
        let all: serde_json::Value = serde_json::from_str(&presets()).unwrap();
        let llama = all
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "llama-3.2-1b")
            .unwrap();
        assert_eq!(llama["published_params"], 1_235_814_400u64);
        assert_eq!(llama["spec"]["kv_heads"], 8);
        assert_eq!(llama["spec"]["mlp"], "gated");
        let read: serde_json::Value = serde_json::from_str(
            &config(
                r#"{"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
                "num_key_value_heads": 2, "vocab_size": 100, "model_type": "llama", "sliding_window": 32}"#,
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(read["spec"]["kv_heads"], 2);
        assert!(
            read["warnings"][1].as_str().unwrap().contains("sliding_window"),
            "{read}"
        );
        assert!(config("{").unwrap_err().contains("not valid JSON"));
    }

    #[test]
    fn charts_are_svg() {
        let c = Planner::embedded()
            .charts_json(r#"{"layers": 16, "d_model": 512}"#)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&c).unwrap();
        assert!(v["depth_svg"].as_str().unwrap().starts_with("<svg"));
        assert!(v["params_svg"].as_str().unwrap().starts_with("<svg"));
    }
}
