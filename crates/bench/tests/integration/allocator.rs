//! `bench` measures with glibc's malloc keeping freed memory, and records it.

use std::process::Command;

/// One tiny shape measured by a `bench` started with `vars` (and no other
/// allocator variable): exit code, the line's fingerprint environment, stderr.
fn measure_with(vars: &[(&str, &str)]) -> (Option<i32>, serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.jsonl");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bench"));
    for k in bench::fingerprint::ALLOCATOR_VARS
        .iter()
        .chain(&[bench::allocator::CHOICE_VAR])
    {
        cmd.env_remove(k);
    }
    let o = cmd
        .envs(vars.iter().copied())
        .args([
            "--shape",
            "1,32,1,8,1,256",
            "--backend",
            "flex",
            "--mode",
            "prefill",
            "--json",
        ])
        .args(["--no-progress", "--max-time-per-shape", "1", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let env = serde_json::from_str::<serde_json::Value>(&stdout)
        .map(|m| m["fingerprint"]["env"].clone())
        .unwrap_or(serde_json::Value::Null);
    (
        o.status.code(),
        env,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn measurements_run_with_the_allocator_keeping_memory_unless_told_otherwise() {
    let kept = cfg!(all(target_os = "linux", target_env = "gnu"));
    let (code, env, err) = measure_with(&[]);
    assert_eq!(code, Some(0), "{err}");
    for (k, v) in bench::allocator::KEEP_FREED_MEMORY {
        let recorded = env[k].as_str();
        assert_eq!(recorded, kept.then_some(v), "{k} in {env}");
    }
    // As shipped, when asked: nothing recorded.
    let (code, env, err) = measure_with(&[(bench::allocator::CHOICE_VAR, "system")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(env.get("MALLOC_MMAP_THRESHOLD_").is_none(), "{env}");
    // The user's own setting is kept as given, not added to.
    let (code, env, err) = measure_with(&[("MALLOC_ARENA_MAX", "1")]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(env["MALLOC_ARENA_MAX"].as_str(), Some("1"), "{env}");
    assert!(env.get("MALLOC_TRIM_THRESHOLD_").is_none(), "{env}");
}

#[test]
fn an_unknown_allocator_choice_is_a_clear_error_before_anything_runs() {
    let (code, _, err) = measure_with(&[(bench::allocator::CHOICE_VAR, "tcmalloc")]);
    assert_eq!(code, Some(2));
    assert!(err.contains("CHIMERA_ALLOCATOR=`tcmalloc`"), "{err}");
}
