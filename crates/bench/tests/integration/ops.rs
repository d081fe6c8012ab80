//! `bench ops` and `bench compose` end to end on tiny sizes.

use std::process::Command;

fn bench(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn ops_measures_every_probe_once_resumes_and_composes() {
    let dir = tempfile::tempdir().unwrap();
    let ops = dir.path().join("ops.jsonl");
    let ops = ops.to_str().unwrap();
    let (code, _, err) = bench(&["ops", "--quick", "--backend", "flex", "--out", ops]);
    assert_eq!(code, Some(0), "{err}");
    let lines = std::fs::read_to_string(ops).unwrap();
    let n = lines.lines().count();
    assert!(n > 20, "{n} lines");
    assert!(lines.lines().all(|l| l.contains("\"status\":\"ok\"")), "{lines}");
    assert!(
        err.contains(&format!("flex: {n} probes measured, 0 already in")),
        "{err}"
    );

    // A torn last line (a killed writer) is skipped with a warning; nothing is measured twice.
    std::fs::write(ops, format!("{lines}{{\"schema_version\":1,\"backe")).unwrap();
    let (code, _, err) = bench(&["ops", "--quick", "--backend", "flex", "--out", ops]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("unreadable line skipped"), "{err}");
    assert!(
        err.contains(&format!("flex: 0 probes measured, {n} already in")),
        "{err}"
    );

    let whole = dir.path().join("whole.jsonl");
    let whole = whole.to_str().unwrap();
    let (code, _, err) = bench(&["--quick", "--backend", "flex", "--no-progress", "--out", whole]);
    assert_eq!(code, Some(0), "{err}");
    // The hypervisor may steal time from the test machine: keep such steps,
    // so the check does not depend on a quiet machine.
    let (code, out, err) = bench(&[
        "compose",
        "--ops",
        ops,
        "--measurements",
        whole,
        "--anchors",
        "2",
        "--keep-disturbed",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("unreadable line skipped"), "{err}");
    assert!(out.contains("## flex"), "{out}");
    for law in [
        "linear",
        "lm_head",
        "attention (causal)",
        "attention (decode)",
        "kv_write",
        "gelu",
    ] {
        assert!(out.contains(&format!("| {law} |")), "{law}: {out}");
    }
    // A phase needs three undisturbed shapes; tests running beside this one
    // may disturb some, and then compose says so.
    let both = out.contains("| prefill |") && out.contains("| decode |");
    assert!(
        both || err.contains("left out: taken while other load ran"),
        "{out}\n{err}"
    );

    // Operators of a backend no whole-model file measured: a clear error.
    let (code, _, err) = bench(&["compose", "--ops", ops, "--measurements", "/dev/null"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no backend has both"), "{err}");
}

#[test]
fn ops_rejects_an_unknown_backend_before_measuring() {
    let dir = tempfile::tempdir().unwrap();
    let ops = dir.path().join("ops.jsonl");
    let (code, _, err) = bench(&[
        "ops",
        "--quick",
        "--backend",
        "tpu",
        "--out",
        ops.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("unknown backend `tpu`"), "{err}");
    assert!(!ops.exists());
}
