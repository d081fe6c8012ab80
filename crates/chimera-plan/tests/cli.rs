//! The CLI as a user runs it: exit codes, messages, and the `--json` contract.

use std::process::{Command, Output};

use proptest::prelude::*;

fn plan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chimera-plan"))
        .args(args)
        .output()
        .expect("runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_headline_command_prints_predictions_and_recommendations() {
    let o = plan(&["--layers", "16", "--d-model", "512"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(text.contains("L=16 d=512 h=8 n=128 b=1 V=50257"), "{text}");
    assert!(text.contains("flex"));
    assert!(text.contains("same budget"));
    // The machine the embedded profile describes; where this CPU's model
    // name differs, one line says the predictions are that machine's.
    assert!(
        text.contains("machine  Intel(R) Xeon(R) Processor, 2 cores"),
        "{text}"
    );
    let here = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let same_cpu = here.contains("model name\t: Intel(R) Xeon(R) Processor\n");
    assert_eq!(
        text.contains("note: this profile was measured on"),
        !same_cpu && !here.is_empty(),
        "{text}"
    );
}

#[test]
fn decode_mode_prints_tokens_per_second_memory_and_end_to_end() {
    let o = plan(&[
        "--layers",
        "12",
        "--d-model",
        "768",
        "--mode",
        "decode",
        "--context",
        "1024",
        "--output-tokens",
        "256",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    for needle in [
        "decode, one token per sequence at context 1024",
        "tokens/s",
        "end to end on",
        "256 tokens",
        "KV cache 72.0 MiB",
        "by end-to-end time (prefill + 256 tokens)",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let bad = plan(&[
        "--layers",
        "12",
        "--d-model",
        "768",
        "--mode",
        "decode",
        "--context",
        "0",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("context 0 is out of range"),
        "{}",
        stderr(&bad)
    );
    let bad = plan(&["--layers", "12", "--d-model", "768", "--output-tokens", "0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("output tokens 0 is out of range"),
        "{}",
        stderr(&bad)
    );
    let bad = plan(&["--layers", "12", "--d-model", "768", "--mode", "train"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("train"), "{}", stderr(&bad));
}

/// A frozen, rounded profile: the snapshot does not move when the default is refitted.
const FIXTURE_PROFILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../planner/tests/fixtures/profile.json"
);

#[test]
fn json_output_is_stable() {
    let o = plan(&[
        "--layers",
        "16",
        "--d-model",
        "512",
        "--json",
        "--top",
        "3",
        "--profile",
        FIXTURE_PROFILE,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for key in ["shape", "params", "predictions", "recommendations"] {
        assert!(!v[key].is_null(), "missing {key}");
    }
    let p = &v["predictions"][0];
    for key in ["backend", "latency_ms", "interval_ms", "regime", "extrapolated"] {
        assert!(!p[key].is_null(), "prediction lacks {key}");
    }
    insta::assert_snapshot!("headline_json", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn llama_json_output_is_stable() {
    // A Llama-style preset in decode with the KV-head and MLP-ratio axes, on
    // the frozen fixture profile: the architecture, its accounting, the
    // "architecture never measured" extrapolation and the axis gains.
    let o = plan(&[
        "--preset",
        "smollm2-135m",
        "--mode",
        "decode",
        "--context",
        "1024",
        "--vary-kv-heads",
        "--vary-mlp-ratio",
        "--budget",
        "30M",
        "--json",
        "--profile",
        FIXTURE_PROFILE,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Only the first candidates: the list is long and its tail adds nothing.
    let mut v = v;
    if let Some(c) = v["recommendations"]["candidates"].as_array_mut() {
        c.truncate(3);
    }
    if let Some(c) = v["recommendations"]["pareto"].as_array_mut() {
        c.truncate(3);
    }
    assert_eq!(v["params"]["total"], 134_515_008u64);
    insta::assert_snapshot!("llama_json", serde_json::to_string_pretty(&v).unwrap());
}

#[test]
fn bad_input_gets_one_line_and_exit_code_2() {
    let cases: [(&[&str], &str); 8] = [
        (
            &["--budget", "25M", "--min-layers", "9", "--max-layers", "3"],
            "need 1 <= min <= max",
        ),
        (
            &["--budget", "25M", "--tolerance", "0"],
            "tolerance 0 is out of range",
        ),
        (
            &["--layers", "0", "--d-model", "512"],
            "layers must be at least 1",
        ),
        (
            &["--layers", "4", "--d-model", "512", "--heads", "7"],
            "must be divisible by heads",
        ),
        (
            &["--layers", "4", "--d-model", "512", "--seq", "0"],
            "seq must be at least 1",
        ),
        (
            &["--layers", "4", "--d-model", "512", "--backend", "tpu"],
            "backend `tpu` is not in the profile",
        ),
        (&["--budget", "lots"], "is not a number"),
        (
            &[
                "--layers",
                "4",
                "--d-model",
                "512",
                "--profile",
                "/nonexistent.json",
            ],
            "reading profile",
        ),
    ];
    for (args, needle) in cases {
        let o = plan(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// A config.json holding `text`, in a temporary folder kept alive by the caller.
fn config_file(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, text).unwrap();
    (dir, path.to_str().unwrap().to_string())
}

const LLAMA_3_2_1B: &str = r#"{"architectures": ["LlamaForCausalLM"], "attention_bias": false,
  "head_dim": 64, "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 8192,
  "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 16, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "tie_word_embeddings": true,
  "torch_dtype": "bfloat16", "vocab_size": 128256}"#;

#[test]
fn a_llama_config_and_its_preset_give_the_same_answer() {
    let (_dir, path) = config_file(LLAMA_3_2_1B);
    let from_config = plan(&["--config", &path, "--mode", "decode", "--json"]);
    assert!(from_config.status.success(), "{}", stderr(&from_config));
    // What the config could not map is a warning on stderr, never dropped.
    assert!(
        stderr(&from_config).contains("warning: `torch_dtype` = bfloat16"),
        "{}",
        stderr(&from_config)
    );
    let from_preset = plan(&["--preset", "llama-3.2-1b", "--mode", "decode", "--json"]);
    assert!(from_preset.status.success(), "{}", stderr(&from_preset));
    assert_eq!(from_config.stdout, from_preset.stdout);
    let v: serde_json::Value = serde_json::from_slice(&from_config.stdout).unwrap();
    assert_eq!(v["params"]["total"], 1_235_814_400u64);
    assert_eq!(v["shape"]["kv_heads"], 8);
    assert!(
        v["decode"]["predictions"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
    assert!(v["memory"]["decode"]["kv_cache_bytes"].as_u64().unwrap() > 0);
    // The embedded profile never measured this architecture: it says so.
    let outside = v["predictions"][0]["outside"].to_string();
    assert!(
        outside.contains("architecture (grouped-query attention"),
        "{outside}"
    );
    // Flags override the config.
    let mqa = plan(&["--config", &path, "--kv-heads", "1", "--json"]);
    let w: serde_json::Value = serde_json::from_slice(&mqa.stdout).unwrap();
    assert_eq!(w["shape"]["kv_heads"], 1);
}

#[test]
fn the_recommender_varies_kv_heads_and_mlp_ratio_and_names_the_best_axis() {
    let o = plan(&[
        "--preset",
        "smollm2-135m",
        "--vary-kv-heads",
        "--vary-mlp-ratio",
        "--top",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    assert!(
        text.contains("arch     GQA: 9 query / 3 KV heads (group 3)"),
        "{text}"
    );
    assert!(text.contains("axis depth and width:"), "{text}");
    assert!(text.contains("axis kv heads:"), "{text}");
    assert!(text.contains("axis mlp ratio:"), "{text}");
    let listed = plan(&["--list-presets"]);
    let list = String::from_utf8(listed.stdout).unwrap();
    assert!(list.contains("llama-3.2-1b       1,235,814,400"), "{list}");
}

#[test]
fn bad_configs_are_refused_naming_the_key() {
    let huge = format!("{{\"pad\": \"{}\"}}", "x".repeat(10 << 20));
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let cases: [(&str, &str); 6] = [
        ("{ not json", "config is not valid JSON"),
        (
            r#"{"hidden_size": 64, "num_attention_heads": 2, "vocab_size": 10}"#,
            "lacks `num_hidden_layers`",
        ),
        (
            r#"{"num_hidden_layers": 2, "hidden_size": 2048, "num_attention_heads": 32, "num_key_value_heads": 5, "vocab_size": 10}"#,
            "`num_key_value_heads` (5) must divide `num_attention_heads` (32)",
        ),
        (
            r#"{"num_hidden_layers": "two", "hidden_size": 64, "num_attention_heads": 2, "vocab_size": 10}"#,
            "`num_hidden_layers` must be a positive integer",
        ),
        (&huge, "limit 1048576 bytes"),
        (&deep, "nests objects/arrays 5000 deep"),
    ];
    for (text, needle) in cases {
        let (_dir, path) = config_file(text);
        let o = plan(&["--config", &path]);
        assert_eq!(o.status.code(), Some(2), "{needle}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(needle), "{needle}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let o = plan(&["--preset", "llama-9"]);
    assert!(
        stderr(&o).contains("unknown preset `llama-9`; known: gpt2"),
        "{}",
        stderr(&o)
    );
}

/// Runs the headline shape against a profile file holding `text`.
fn plan_with_profile(text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.json");
    std::fs::write(&path, text).unwrap();
    plan(&[
        "--layers",
        "4",
        "--d-model",
        "512",
        "--profile",
        path.to_str().unwrap(),
    ])
}

#[test]
fn malformed_profile_is_a_clear_error() {
    let o = plan_with_profile("{\"schema_version\": 1, \"name\": 3}");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("profile"), "{}", stderr(&o));
    let o = plan_with_profile("{\"schema_version\": 99}");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("schema version 99 is not supported"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn completions_come_from_the_same_definition() {
    let o = plan(&["--completions", "bash"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("--d-model"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// Random argument vectors: valid output or a clear error, never a panic.
    #[test]
    fn random_arguments_never_panic(
        layers in prop_oneof![Just("0".to_string()), (1u64..200).prop_map(|v| v.to_string()), Just("x".to_string()), Just("-3".to_string())],
        d in prop_oneof![(1u64..4096).prop_map(|v| v.to_string()), Just("99999999999999999999".to_string())],
        heads in proptest::option::of(0u64..64),
        seq in 0u64..3000,
        budget in proptest::option::of(prop_oneof![Just("25M".to_string()), Just("1e3".to_string()), Just("nan".to_string())]),
    ) {
        let mut args = vec!["--layers".to_string(), layers, "--d-model".to_string(), d, "--seq".to_string(), seq.to_string(), "--json".to_string()];
        if let Some(h) = heads { args.push("--heads".into()); args.push(h.to_string()); }
        if let Some(b) = budget { args.push("--budget".into()); args.push(b); }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = plan(&refs);
        let code = o.status.code();
        prop_assert!(code == Some(0) || code == Some(2), "{args:?} exited {code:?}: {}", stderr(&o));
        if code == Some(0) {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            for p in v["predictions"].as_array().unwrap() {
                let ms = p["latency_ms"].as_f64().unwrap();
                prop_assert!(ms.is_finite() && ms > 0.0);
            }
        } else {
            prop_assert_eq!(stderr(&o).trim().lines().count(), 1, "one-line error: {}", stderr(&o));
        }
    }
}
