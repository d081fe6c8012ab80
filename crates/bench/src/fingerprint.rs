//! The hardware/software fingerprint stored with every measurement.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backend;

/// The burn version this crate pins (`burn = "=0.22.1"`; a test checks the pin).
pub const BURN_VERSION: &str = "0.22.1";

/// Where and how a measurement was taken. Two measurements are comparable
/// (and a sweep resumes over them) only under the same [`Fingerprint::id`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// CPU model name.
    pub cpu: String,
    /// Logical CPUs the OS reports.
    pub logical_cores: usize,
    /// Threads the backend may use (rayon / OpenBLAS pool size).
    pub threads: usize,
    /// OS and kernel.
    pub os: String,
    /// Compiler that built the benchmarker.
    pub rustc: String,
    /// Burn version.
    pub burn: String,
    /// Backend name.
    pub backend: String,
    /// Cargo features of the build.
    pub build_features: Vec<String>,
    /// Git commit of the project (`-dirty` when built from a modified tree).
    pub commit: String,
    /// GPU adapter and driver, for GPU backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    /// Environment variables that change threading, as set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// The adapter a wgpu backend runs on, asked once per process and backend.
#[cfg(feature = "wgpu")]
fn gpu_description(backend: &str) -> Option<String> {
    use std::sync::OnceLock;
    static GPU: OnceLock<Option<String>> = OnceLock::new();
    static SOFTWARE: OnceLock<Option<String>> = OnceLock::new();
    let (cell, software) = match backend {
        "wgpu" => (&GPU, false),
        "wgpu-cpu" => (&SOFTWARE, true),
        _ => return None,
    };
    cell.get_or_init(|| {
        crate::gpu::wgpu_adapter(software)
            .map(|a| a.describe())
            .or_else(|| Some("no adapter found".into()))
    })
    .clone()
}

#[cfg(not(feature = "wgpu"))]
fn gpu_description(_backend: &str) -> Option<String> {
    None
}

/// Variables that change how many threads a backend uses.
const THREAD_VARS: [&str; 3] = ["RAYON_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"];

impl Fingerprint {
    /// The fingerprint of this process for `backend`.
    pub fn current(backend: &str) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let logical_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let env: BTreeMap<String, String> = THREAD_VARS
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        let threads = env
            .get("RAYON_NUM_THREADS")
            .and_then(|v| v.parse().ok())
            .unwrap_or(logical_cores);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Fingerprint {
            cpu,
            logical_cores,
            threads,
            os: format!("{} {}", std::env::consts::OS, kernel.trim())
                .trim()
                .to_string(),
            rustc: env!("CHIMERA_RUSTC_VERSION").to_string(),
            burn: BURN_VERSION.to_string(),
            backend: backend.to_string(),
            build_features: backend::build_features().iter().map(|s| s.to_string()).collect(),
            commit: env!("CHIMERA_GIT_COMMIT").to_string(),
            gpu: gpu_description(backend),
            env,
        }
    }

    /// A short stable hash of every field (FNV-1a over the canonical JSON).
    pub fn id(&self) -> String {
        let json = serde_json::to_string(self).expect("fingerprints serialise");
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in json.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{hash:016x}")
    }

    /// The fingerprint as a flat string map (as profiles store it).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert("cpu".into(), self.cpu.clone());
        m.insert("logical_cores".into(), self.logical_cores.to_string());
        m.insert("threads".into(), self.threads.to_string());
        m.insert("os".into(), self.os.clone());
        m.insert("rustc".into(), self.rustc.clone());
        m.insert("burn".into(), self.burn.clone());
        m.insert("build_features".into(), self.build_features.join(","));
        m.insert("commit".into(), self.commit.clone());
        if let Some(gpu) = &self.gpu {
            m.insert("gpu".into(), gpu.clone());
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_pin_matches_the_workspace() {
        let manifest = include_str!("../../../Cargo.toml");
        assert!(manifest.contains(&format!("burn = {{ version = \"={BURN_VERSION}\"")));
    }

    #[test]
    fn id_is_stable_and_sensitive() {
        let a = Fingerprint::current("flex");
        assert_eq!(a.id(), a.clone().id());
        let mut b = a.clone();
        b.threads += 1;
        assert_ne!(a.id(), b.id());
        assert!(!a.cpu.is_empty());
    }
}
