//! Bad input to `bench` gets a clear message and exit code 2.

use std::process::Command;

fn bench(args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .output()
        .unwrap();
    (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn bad_backends_and_shapes_are_clear_errors() {
    let (code, err) = bench(&["--quick", "--backend", "tpu", "--out", "/dev/null"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("unknown backend `tpu`; available in this build: flex, ndarray"),
        "{err}"
    );
    let (code, err) = bench(&["--shape", "2,100,3,16,1", "--out", "/dev/null"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("must be divisible by heads"), "{err}");
    let (code, err) = bench(&["--shape", "2,100", "--out", "/dev/null"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("expected 5 or 6 numbers"), "{err}");
    if !cfg!(feature = "wgpu") {
        let (code, err) = bench(&["--quick", "--backend", "wgpu", "--out", "/dev/null"]);
        assert_eq!(code, Some(2));
        assert!(err.contains("--features wgpu"), "{err}");
    }
}

#[test]
fn bad_onboarding_and_fit_input_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.jsonl");
    let out = out.to_str().unwrap();
    let (code, err) = bench(&["profile", "--budget", "5x", "--measurements-out", out]);
    assert_eq!(code, Some(2));
    assert!(err.contains("is not a duration"), "{err}");
    let (code, err) = bench(&["profile", "--budget", "1s", "--measurements-out", out]);
    assert_eq!(code, Some(2));
    assert!(err.contains("between 10s and 24h"), "{err}");
    let (code, err) = bench(&[
        "profile",
        "--backend",
        "tpu",
        "--budget",
        "10s",
        "--measurements-out",
        out,
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown backend `tpu`"), "{err}");
    assert!(
        !std::path::Path::new(out).exists(),
        "nothing is measured before the names are checked"
    );
    let (code, err) = bench(&["fit", "--measurements", "/nonexistent/m.jsonl", "--out", out]);
    assert_ne!(code, Some(0));
    assert!(err.contains("/nonexistent/m.jsonl"), "{err}");
}

#[test]
fn a_bad_shape_json_is_a_clear_error_and_measures_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.jsonl");
    let out = out.to_str().unwrap();
    for (json, needle) in [
        ("{", "--shape-json"),
        (
            r#"{"layers": 2, "d_model": 64, "heads": 4, "kv_heads": 3}"#,
            "kv_heads (3) must divide heads (4)",
        ),
        (r#"{"layers": 2, "d_model": 64, "mlp": "relu"}"#, "--shape-json"),
    ] {
        let (code, err) = bench(&["--shape-json", json, "--backend", "flex", "--out", out]);
        assert_ne!(code, Some(0), "{json}");
        assert!(err.contains(needle), "{json}: {err}");
    }
    assert!(!std::path::Path::new(out).exists(), "nothing measured");
}

#[test]
fn bad_decode_and_memory_input_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.jsonl");
    let out = out.to_str().unwrap();
    let (code, err) = bench(&["--quick", "--mode", "train", "--out", out]);
    assert_eq!(code, Some(2));
    assert!(err.contains("train"), "{err}");
    let (code, err) = bench(&["memory", "--quick", "--backend", "tpu", "--out", out]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown backend `tpu`"), "{err}");
    assert!(!std::path::Path::new(out).exists(), "nothing measured");
    // A memory file with a broken line: the fit names the file and the line,
    // and writes no profile.
    let memory = dir.path().join("memory.jsonl");
    std::fs::write(&memory, "{\"schema_version\": 1, \"kind\": \"decode\"}\n").unwrap();
    let profile = dir.path().join("p.json");
    let measurements = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/measurements");
    let (code, err) = bench(&[
        "fit",
        "--measurements",
        measurements,
        "--memory",
        memory.to_str().unwrap(),
        "--out",
        profile.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("memory.jsonl line 1"), "{err}");
    assert!(!profile.exists());
}

/// `fit --evaluate` checks the new profile against independently measured
/// shapes in both phases; an evaluation file that cannot be read fails before
/// the fit and writes no profile.
#[test]
fn fit_evaluates_prefill_and_decode_on_independent_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("p.json");
    let profile = profile.to_str().unwrap();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/measurements/");
    let file = |name: &str| format!("{data}{name}");
    let fit_args = |evaluate: &[String]| {
        let mut args: Vec<String> = [
            "fit",
            "--measurements",
            &file("cpu-pass1.jsonl"),
            "--measurements",
            &file("decode-batch2-pass1.jsonl"),
            "--memory",
            "/nonexistent/memory.jsonl",
            "--out",
            profile,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for e in evaluate {
            args.extend(["--evaluate".to_string(), e.clone()]);
        }
        args
    };
    let run = |args: Vec<String>| bench(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let (code, err) = run(fit_args(&["/nonexistent/evaluation.jsonl".to_string()]));
    assert_ne!(code, Some(0));
    assert!(err.contains("/nonexistent/evaluation.jsonl"), "{err}");
    assert!(
        !std::path::Path::new(profile).exists(),
        "no fit without its evaluation"
    );

    let (code, err) = run(fit_args(&[
        file("cpu-pass2.jsonl"),
        file("decode-batch2-pass2.jsonl"),
    ]));
    assert_eq!(code, Some(0), "{err}");
    for (backend, phase, name) in [
        ("flex", "prefill", "cpu-pass2.jsonl"),
        ("ndarray", "prefill", "cpu-pass2.jsonl"),
        ("flex", "decode", "decode-batch2-pass2.jsonl"),
        ("ndarray", "decode", "decode-batch2-pass2.jsonl"),
    ] {
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("{backend} {phase}: on "))
                    && l.contains(name)
                    && l.contains("MAPE")),
            "no {backend} {phase} evaluation on {name}:\n{err}"
        );
    }
    // A prefill file holds no decode shapes, and the reverse: no line pairs them.
    assert!(
        !err.lines()
            .any(|l| l.contains("decode: on") && l.contains("cpu-pass2")),
        "{err}"
    );
}

/// `fit` names the machine it fitted and every machine it left out, fits
/// another one when asked, and refuses one it has no measurements of.
#[test]
fn fit_says_which_machines_it_found_and_fits_the_one_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let pass1 = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/measurements/cpu-pass1.jsonl"
    );
    // Twenty of its lines as if measured on another CPU.
    let other: String = std::fs::read_to_string(pass1)
        .unwrap()
        .lines()
        .take(20)
        .map(|l| l.replace("\"cpu\":\"Intel(R) Xeon(R) Processor\"", "\"cpu\":\"Other CPU\"") + "\n")
        .collect();
    assert!(other.contains("Other CPU"));
    let other_file = dir.path().join("other.jsonl");
    std::fs::write(&other_file, other).unwrap();
    let profile = dir.path().join("p.json");
    let fit = |extra: &[&str]| {
        let mut args = vec![
            "fit",
            "--measurements",
            pass1,
            "--measurements",
            other_file.to_str().unwrap(),
            "--memory",
            "/nonexistent/memory.jsonl",
            "--out",
            profile.to_str().unwrap(),
        ];
        args.extend(extra);
        bench(&args)
    };
    let (code, err) = fit(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.lines().any(
            |l| l.starts_with("flex prefill: fitted machine `Intel(R) Xeon(R) Processor|2|")
                && l.contains("(25 measurements, the most)")
                && l.contains("left out, another machine each: `Other CPU|2|")
        ),
        "{err}"
    );
    let (code, err) = fit(&["--machine", "Other CPU"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("flex prefill: machine `Other CPU|2|")),
        "{err}"
    );
    let written = std::fs::read_to_string(&profile).unwrap();
    assert!(
        written.contains("\"cpu\": \"Other CPU\""),
        "the profile describes the machine asked for"
    );
    // As many lines of each machine: the choice is arbitrary, and it says so.
    let all_other: String = std::fs::read_to_string(pass1)
        .unwrap()
        .lines()
        .map(|l| l.replace("\"cpu\":\"Intel(R) Xeon(R) Processor\"", "\"cpu\":\"Other CPU\"") + "\n")
        .collect();
    std::fs::write(&other_file, all_other).unwrap();
    let (code, err) = fit(&[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("as many as another: the choice is arbitrary"),
        "{err}"
    );
    let (code, err) = fit(&["--machine", "Graviton"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("no measurements of a machine matching `Graviton`") && err.contains("`Other CPU|2|"),
        "{err}"
    );
}

/// `calibrate --from` levels the embedded profile on another session of its
/// own machine, records the level, and moves predictions by exactly it; too
/// few anchors and a missing profile are clear errors that write nothing.
#[test]
fn calibrate_levels_a_profile_from_anchor_files_and_refuses_too_few() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("calibrated.json");
    let out = out.to_str().unwrap();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/measurements/");
    let (prefill, decode) = (
        format!("{data}cpu-pass2.jsonl"),
        format!("{data}decode-batch2-pass2.jsonl"),
    );
    let o = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["calibrate", "--from", &prefill, &decode, "--out", out])
        .output()
        .unwrap();
    let (table, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{err}");
    for row in [
        "| flex | prefill |",
        "| ndarray | prefill |",
        "| flex | decode |",
        "| ndarray | decode |",
    ] {
        assert!(table.contains(row), "no {row} row:\n{table}");
    }
    let before = planner::default_profile();
    let after = planner::Profile::from_json(&std::fs::read_to_string(out).unwrap()).unwrap();
    let shape = planner::ShapeSpec::new(8, 512).validate().unwrap();
    for (b, a) in before.backends.iter().zip(&after.backends) {
        for (b, a) in [
            (b, a),
            (b.decode.as_deref().unwrap(), a.decode.as_deref().unwrap()),
        ] {
            let level = a
                .session
                .as_ref()
                .expect("every backend and phase was calibrated");
            assert!(
                level.anchors >= 3 && level.source.contains("cpu-pass2.jsonl"),
                "{level:?}"
            );
            // The fit's own machine, another session: a level near 1.
            assert!((0.7..1.4).contains(&level.factor), "{level:?}");
            let ratio = a.model.predict_ms(&shape) / b.model.predict_ms(&shape);
            assert!((ratio / level.factor - 1.0).abs() < 1e-9, "{ratio} vs {level:?}");
        }
    }

    let two = dir.path().join("two.jsonl");
    let lines: Vec<&str> = include_str!("../../../../data/measurements/cpu-pass2.jsonl")
        .lines()
        .filter(|l| l.contains("\"backend\":\"flex\"") && l.contains("\"status\":\"ok\""))
        .take(2)
        .collect();
    std::fs::write(&two, lines.join("\n") + "\n").unwrap();
    let fresh = dir.path().join("none.json");
    let fresh = fresh.to_str().unwrap();
    let (code, err) = bench(&["calibrate", "--from", two.to_str().unwrap(), "--out", fresh]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("flex prefill: 2 usable anchor(s)") && err.contains("need at least 3"),
        "{err}"
    );
    let (code, err) = bench(&[
        "calibrate",
        "--profile",
        "/nonexistent/p.json",
        "--from",
        &prefill,
        "--out",
        fresh,
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("/nonexistent/p.json"), "{err}");
    assert!(
        !std::path::Path::new(fresh).exists(),
        "nothing written on an error"
    );
}
