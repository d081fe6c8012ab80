//! Helpers of the end-to-end tests: where the workspace's release binaries
//! are, and how to run them.
//!
//! These tests run the binaries that `cargo test --workspace --release`
//! builds for the other crates' own tests (`target/release/bench`,
//! `target/release/chimera-plan`), so they add no build of Burn.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The folder the running test executable was built into (`target/<profile>`).
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps")
        .to_path_buf()
}

/// A workspace binary, built by `cargo test --workspace`.
pub fn binary(name: &str) -> PathBuf {
    let path = build_dir().join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run the workspace's tests (`cargo test --workspace --release`), which build it",
        path.display()
    );
    path
}

/// Runs a workspace binary and returns its output; panics, with its stderr,
/// when it fails.
pub fn run_ok(name: &str, args: &[&str]) -> Output {
    let output = Command::new(binary(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {name}: {e}"));
    assert!(
        output.status.success(),
        "{name} {args:?} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    // Cargo sets the variable when it runs a test; the compile-time value is
    // the fallback. (A binary reused from a build in another checkout keeps
    // that checkout's compile-time path.)
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .parent()
        .expect("tests/ sits in the repository root")
        .to_path_buf()
}
