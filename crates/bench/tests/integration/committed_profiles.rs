//! The committed profiles are what their documented fits of the committed
//! measurements write: `bench report` (fit's defaults) for the embedded
//! default, README's commands for `zen4-llama.json`, `zen5-llama.json` and `xeon-llama.json`. A change to the fit, or to
//! the data, that would change a profile fails here until the profile is refit
//! and committed with it.

use std::path::{Path, PathBuf};

use bench::fitting::{DEFAULT_MEASUREMENTS, DEFAULT_PROFILE_NAME, FitOptions, MEMORY_FILE, OPS_FILE, fit};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A profile's JSON text without `source` (the paths as given). Both sides
/// are parsed from text, as numbers are compared through the same parser.
fn without_source(text: &str) -> serde_json::Value {
    let mut value: serde_json::Value = serde_json::from_str(text).unwrap();
    value.as_object_mut().unwrap().remove("source");
    value
}

/// The profile a fit writes, as `bench fit` writes it.
fn refit(options: FitOptions) -> serde_json::Value {
    without_source(&fit(&options).unwrap().outcome.profile.to_json())
}

fn committed(path: &str) -> serde_json::Value {
    without_source(&std::fs::read_to_string(root().join(path)).unwrap())
}

#[test]
fn the_embedded_default_is_the_fit_of_the_committed_measurements() {
    let r = root();
    let options = FitOptions {
        measurements: vec![r.join(DEFAULT_MEASUREMENTS)],
        evaluate: vec![],
        memory: r.join(MEMORY_FILE),
        name: DEFAULT_PROFILE_NAME.into(),
        machine: None,
        ops: vec![r.join(OPS_FILE)],
        parallelism_from: vec![],
        keep_disturbed: false,
    };
    assert!(
        refit(options) == committed("data/profiles/default.json"),
        "refit differs: run `bench report`"
    );
}

/// A README fit: one machine's measurement files, memory and operator files.
struct ReadmeFit<'a> {
    measurements: &'a [&'a str],
    memory: &'a str,
    name: &'a str,
    machine: &'a str,
    ops: &'a [&'a str],
    parallelism_from: &'a [&'a str],
}

impl ReadmeFit<'_> {
    fn options(&self) -> FitOptions {
        let r = root();
        let paths = |files: &[&str]| files.iter().map(|f| r.join(f)).collect();
        FitOptions {
            measurements: paths(self.measurements),
            evaluate: vec![],
            memory: r.join(self.memory),
            name: self.name.into(),
            machine: Some(self.machine.into()),
            ops: paths(self.ops),
            parallelism_from: paths(self.parallelism_from),
            keep_disturbed: false,
        }
    }
}

#[test]
fn zen4_llama_is_the_readme_fit_of_the_committed_measurements() {
    let fit = ReadmeFit {
        measurements: &[
            "data/onboarding/zen4-v4-5m.jsonl",
            "data/ops/whole-model.jsonl",
            "data/llama/llama-prefill.jsonl",
            "data/llama/llama-decode.jsonl",
            "data/llama/llama-more-prefill.jsonl",
            "data/llama/llama-more-decode.jsonl",
            "data/llama/llama-large-prefill.jsonl",
            "data/llama/llama-large-decode.jsonl",
            "data/llama/ablation-prefill.jsonl",
            "data/llama/ablation-decode.jsonl",
            "data/llama/evaluate-prefill.jsonl",
            "data/llama/evaluate-decode.jsonl",
            "data/llama/evaluate-later-prefill.jsonl",
            "data/llama/evaluate-later-decode.jsonl",
            "data/llama/calibration",
        ],
        memory: "data/onboarding/zen4-v4-memory.jsonl",
        name: "zen4-llama (2-core AMD EPYC Zen 4 VM, CPU backends, GPT-2 and Llama-style shapes, 2026-12-01)",
        machine: "AMD EPYC (AuthenticAMD 25/17/1",
        ops: &["data/llama/ops-2.jsonl"],
        // The Zen 4 VM recorded no busy cores; the Zen 5 VM's flex readings
        // (same Burn, threads and features) say which operators split.
        parallelism_from: &["data/llama/ops-3-flex.jsonl"],
    };
    assert!(
        refit(fit.options()) == committed("data/profiles/zen4-llama.json"),
        "refit differs: run README's zen4-llama fit"
    );
}

#[test]
fn zen5_llama_is_the_readme_fit_of_the_committed_measurements() {
    let fit = ReadmeFit {
        measurements: &[
            "data/onboarding/zen5-5m.jsonl",
            "data/llama/zen5/llama-prefill.jsonl",
            "data/llama/zen5/llama-decode.jsonl",
            "data/llama/zen5/llama-more-prefill.jsonl",
            "data/llama/zen5/llama-more-decode.jsonl",
            "data/llama/zen5/ablation-prefill.jsonl",
            "data/llama/zen5/ablation-decode.jsonl",
            "data/llama/zen5/llama-large-prefill.jsonl",
            "data/llama/zen5/llama-large-decode.jsonl",
        ],
        memory: "data/onboarding/zen5-memory.jsonl",
        name: "zen5-llama (2-core AMD EPYC Zen 5 VM, CPU backends, 5-minute onboarding and Llama-style sweeps, 2026-12-03)",
        machine: "AMD EPYC (AuthenticAMD 26/2/1",
        ops: &["data/onboarding/zen5-ops.jsonl", "data/llama/ops-3-flex.jsonl"],
        parallelism_from: &[],
    };
    assert!(
        refit(fit.options()) == committed("data/profiles/zen5-llama.json"),
        "refit differs: run README's zen5-llama fit"
    );
}

#[test]
fn xeon_llama_is_the_readme_fit_of_the_committed_measurements() {
    let fit = ReadmeFit {
        measurements: &[
            "data/onboarding/xeon-3/onboard-5m.jsonl",
            "data/onboarding/xeon-3/llama-prefill.jsonl",
            "data/onboarding/xeon-3/llama-decode.jsonl",
        ],
        memory: "data/onboarding/xeon-3/memory.jsonl",
        name: "xeon-llama (2-core Intel Xeon VM, CPU backends, 5-minute onboarding and Llama-style sweeps, 2026-12-06)",
        machine: "GenuineIntel 6/167/1",
        ops: &["data/onboarding/xeon-3/ops.jsonl"],
        parallelism_from: &[],
    };
    assert!(
        refit(fit.options()) == committed("data/profiles/xeon-llama.json"),
        "refit differs: run README's xeon-llama fit"
    );
}
