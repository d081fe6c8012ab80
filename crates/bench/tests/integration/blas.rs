//! Every ndarray line records the kernels OpenBLAS chose, and the variables
//! that choose them; a flex line records none.

use std::process::Command;

/// One tiny shape on `backend` by a `bench` started with `vars`: exit code,
/// the line's fingerprint, stderr.
fn measure(backend: &str, vars: &[(&str, &str)]) -> (Option<i32>, serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.jsonl");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bench"));
    for k in bench::fingerprint::BLAS_VARS {
        cmd.env_remove(k);
    }
    let o = cmd
        .envs(vars.iter().copied())
        .args(["--shape", "1,32,1,8,1,256", "--backend", backend])
        .args([
            "--mode",
            "prefill",
            "--json",
            "--no-progress",
            "--max-time-per-shape",
            "1",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let fingerprint = serde_json::from_str::<serde_json::Value>(&stdout)
        .map(|m| m["fingerprint"].clone())
        .unwrap_or(serde_json::Value::Null);
    (
        o.status.code(),
        fingerprint,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// What OpenBLAS says it chose when this build's `bench` loads (nothing
/// where the library picks no kernels at load time).
fn core_openblas_reports() -> Option<String> {
    let o = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("--version")
        .env("OPENBLAS_VERBOSE", "2")
        .env_remove("OPENBLAS_CORETYPE")
        .output()
        .unwrap();
    bench::blas::parse_core(&String::from_utf8_lossy(&o.stderr))
}

#[test]
fn ndarray_lines_record_the_blas_kernels_and_flex_lines_none() {
    let core = core_openblas_reports();
    let (code, fingerprint, err) = measure("ndarray", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        fingerprint["blas_core"].as_str(),
        core.as_deref(),
        "{fingerprint}"
    );
    let (code, fingerprint, err) = measure("flex", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(fingerprint.get("blas_core").is_none(), "{fingerprint}");
    // The variable that chooses the kernels is recorded as set (here to the
    // kernels OpenBLAS chose anyway, which this CPU runs).
    if let Some(core) = core {
        let (code, fingerprint, err) = measure("ndarray", &[("OPENBLAS_CORETYPE", core.as_str())]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(
            fingerprint["env"]["OPENBLAS_CORETYPE"].as_str(),
            Some(core.as_str())
        );
        assert_eq!(fingerprint["blas_core"].as_str(), Some(core.as_str()));
    }
}
