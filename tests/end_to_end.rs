//! Chimera end to end, as a user chains it: measure tiny shapes with `bench`,
//! fit them into a profile, and ask `chimera-plan` about a shape the fit never
//! saw; and the page's bindings answer exactly what the CLI answers.

use chimera_tests::{repo_root, run_ok};

/// Ten tiny shapes (V = 256, n = 16-32): milliseconds each, enough for a fit.
const SWEEP: &str = r#"
name = "e2e"
description = "end-to-end test: tiny shapes"
"#;

fn sweep_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = SWEEP.to_string();
    for (layers, d_model, seq) in [
        (1, 32, 16),
        (2, 32, 16),
        (4, 32, 16),
        (1, 64, 16),
        (2, 64, 32),
        (4, 64, 16),
        (1, 128, 32),
        (2, 128, 16),
        (3, 96, 32),
        (6, 32, 32),
    ] {
        text.push_str(&format!(
            "\n[[shape]]\nfamily = \"e2e\"\nlayers = {layers}\nd_model = {d_model}\nheads = {}\nvocab = 256\nseq = {seq}\n",
            (d_model / 32).max(1)
        ));
    }
    let path = dir.join("e2e.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `bench fit` of `measurements` into `profile` (no memory file); its log.
fn fit(measurements: &str, profile: &str, no_memory: &str, name: &str) -> String {
    let fit = run_ok(
        "bench",
        &[
            "fit",
            "--measurements",
            measurements,
            "--out",
            profile,
            "--memory",
            no_memory,
            "--name",
            name,
            // The hypervisor may steal time from the test machine: fit every
            // shape, so the check does not depend on a quiet machine.
            "--keep-disturbed",
        ],
    );
    String::from_utf8_lossy(&fit.stderr).into_owned()
}

/// chimera-plan's arguments for the held-out shape (`--shape 3,64,2,32,1,256`).
const HELD_OUT_SHAPE: [&str; 10] = [
    "--layers",
    "3",
    "--d-model",
    "64",
    "--heads",
    "2",
    "--seq",
    "32",
    "--vocab",
    "256",
];

fn median_ms(json: &[u8]) -> f64 {
    let v: serde_json::Value = serde_json::from_slice(json).expect("bench --json prints JSON");
    v["median_ms"].as_f64().expect("a measured shape has a median")
}

#[test]
fn a_tiny_sweep_fits_a_profile_that_predicts_a_shape_it_never_saw() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).display().to_string();
    let sweep = sweep_file(dir.path());
    let common = ["--backend", "flex", "--mode", "prefill", "--no-progress"];
    let quick = ["--max-time-per-shape", "2", "--target-ci", "5"];
    let mut args = vec!["--sweep", sweep.to_str().unwrap(), "--out"];
    let measurements = d("sweep.jsonl");
    args.push(&measurements);
    args.extend(common);
    args.extend(quick);
    run_ok("bench", &args);
    // The held-out shape, measured on its own, in its own file.
    let held_out = d("held-out.jsonl");
    let mut args = vec!["--shape", "3,64,2,32,1,256", "--out", &held_out, "--json"];
    args.extend(common);
    args.extend(quick);
    let measured = median_ms(&run_ok("bench", &args).stdout);
    let profile = d("profile.json");
    let log = fit(&measurements, &profile, &d("no-memory.jsonl"), "end-to-end");
    assert!(log.contains("flex prefill: 10 shapes"), "{log}");
    let plan = run_ok(
        "chimera-plan",
        &[
            &["--profile", profile.as_str(), "--json"][..],
            &HELD_OUT_SHAPE[..],
        ]
        .concat(),
    );
    let answer: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(answer["profile"], "end-to-end");
    let predicted = answer["predictions"][0]["latency_ms"].as_f64().unwrap();
    // Shapes of a fraction of a millisecond vary from run to run by tens of
    // percent on a shared machine; a model that had learnt nothing would miss
    // by far more than this.
    let ratio = predicted / measured;
    assert!(
        (0.5..=2.0).contains(&ratio),
        "predicted {predicted:.4} ms for a shape measured at {measured:.4} ms (×{ratio:.2})"
    );

    // The held-out shape as the session's one anchor is too few; the sweep's
    // ten shapes put the profile on this session's level, and the planner says so.
    let calibrated = d("calibrated.json");
    let o = std::process::Command::new(chimera_tests::binary("bench"))
        .args([
            "calibrate",
            "--profile",
            &profile,
            "--from",
            &held_out,
            "--out",
            &calibrated,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("need at least 3"));
    let table = run_ok(
        "bench",
        &[
            "calibrate",
            "--profile",
            &profile,
            "--from",
            &measurements,
            "--out",
            &calibrated,
            "--keep-disturbed",
        ],
    );
    assert!(String::from_utf8_lossy(&table.stdout).contains("| flex | prefill | 10 |"));
    let plan = run_ok(
        "chimera-plan",
        &[&["--profile", calibrated.as_str()][..], &HELD_OUT_SHAPE[..]].concat(),
    );
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("session  flex prefill ×") && l.contains("10 anchors")),
        "{text}"
    );
}

#[test]
fn a_tiny_llama_sweep_covers_its_architecture_and_predicts_an_unseen_llama_shape() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).display().to_string();
    let mut text = "name = \"e2e-llama\"\n".to_string();
    for (layers, d_model, heads, kv_heads, seq) in [
        (1, 64, 4, 1, 16),
        (2, 64, 4, 2, 32),
        (4, 64, 4, 4, 16),
        (1, 128, 4, 1, 32),
        (2, 128, 8, 2, 16),
        (3, 96, 4, 1, 32),
        (6, 32, 2, 1, 32),
        (2, 32, 2, 2, 16),
    ] {
        text.push_str(&format!(
            "\n[[shape]]\nfamily = \"e2e\"\nlayers = {layers}\nd_model = {d_model}\nheads = {heads}\nkv_heads = {kv_heads}\nmlp = \"gated\"\nnorm = \"rmsnorm\"\nposition_encoding = \"rope\"\nqkv_bias = false\ndense_bias = false\nvocab = 256\nseq = {seq}\n"
        ));
    }
    let sweep = d("llama.toml");
    std::fs::write(&sweep, text).unwrap();
    let measurements = d("llama.jsonl");
    let common = [
        "--backend",
        "flex",
        "--mode",
        "prefill",
        "--no-progress",
        "--max-time-per-shape",
        "2",
        "--target-ci",
        "5",
    ];
    let mut args = vec!["--sweep", &sweep, "--out", &measurements];
    args.extend(common);
    run_ok("bench", &args);
    let profile = d("profile.json");
    let no_memory = d("no-memory.jsonl");
    fit(&measurements, &profile, &no_memory, "e2e-llama");
    let fitted: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    let features = fitted["backends"][0]["validity"]["architecture_features"].to_string();
    for f in ["grouped-query attention", "gated MLP", "RMSNorm", "RoPE"] {
        assert!(features.contains(f), "{features}");
    }
    let plan = run_ok(
        "chimera-plan",
        &[
            "--profile",
            &profile,
            "--layers",
            "3",
            "--d-model",
            "64",
            "--heads",
            "4",
            "--kv-heads",
            "2",
            "--mlp",
            "gated",
            "--norm",
            "rmsnorm",
            "--positions",
            "rope",
            "--bias",
            "none",
            "--seq",
            "32",
            "--vocab",
            "256",
            "--json",
        ],
    );
    let answer: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let outside = answer["predictions"][0]["outside"].to_string();
    assert!(
        !outside.contains("architecture"),
        "measured features are not extrapolation: {outside}"
    );
    let predicted = answer["predictions"][0]["latency_ms"].as_f64().unwrap();
    let held_out = d("held-out.jsonl");
    let mut args = vec![
        "--shape-json",
        r#"{"layers":3,"d_model":64,"heads":4,"kv_heads":2,"mlp":"gated","norm":"rmsnorm","position_encoding":"rope","qkv_bias":false,"dense_bias":false,"vocab":256,"seq":32}"#,
        "--out",
        &held_out,
        "--json",
    ];
    args.extend(common);
    let measured = median_ms(&run_ok("bench", &args).stdout);
    let ratio = predicted / measured;
    assert!(
        (0.5..=2.0).contains(&ratio),
        "predicted {predicted:.4} ms for a Llama-style shape measured at {measured:.4} ms (×{ratio:.2})"
    );
}

#[test]
fn the_page_bindings_answer_what_the_cli_answers() {
    let fixture = repo_root().join("crates/planner/tests/fixtures/profile.json");
    let profile = std::fs::read_to_string(&fixture).unwrap();
    let planner = chimera_web::Planner::from_json(&profile).unwrap();
    for (args, request) in [
        (
            vec!["--layers", "16", "--d-model", "512"],
            r#"{"layers": 16, "d_model": 512}"#,
        ),
        (
            vec![
                "--layers",
                "12",
                "--d-model",
                "768",
                "--mode",
                "decode",
                "--context",
                "1024",
                "--output-tokens",
                "64",
            ],
            r#"{"layers": 12, "d_model": 768, "mode": "decode", "context": 1024, "output_tokens": 64}"#,
        ),
        (vec!["--budget", "25M"], r#"{"budget": 25000000}"#),
    ] {
        let mut cli_args = args.clone();
        cli_args.extend(["--json", "--profile", fixture.to_str().unwrap()]);
        let cli: serde_json::Value =
            serde_json::from_slice(&run_ok("chimera-plan", &cli_args).stdout).unwrap();
        let web: serde_json::Value = serde_json::from_str(&planner.plan_json(request).unwrap()).unwrap();
        assert_eq!(cli, web, "CLI {args:?} and the page's request {request} disagree");
    }
}
