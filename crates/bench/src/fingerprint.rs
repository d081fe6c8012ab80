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
    /// Environment variables that change threading, memory allocation or
    /// the BLAS kernels ([`THREAD_VARS`], [`ALLOCATOR_VARS`], [`BLAS_VARS`]), as set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// What decides a CPU's speed beyond its model string (`AMD EPYC` names
    /// Zen 1 and Zen 5 guests alike); absent in lines written before it was
    /// recorded. Pooling keys on it (`fitting::machine_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_details: Option<CpuDetails>,
    /// The kernels OpenBLAS chose for this CPU (`Haswell`, `SkylakeX`, its
    /// generic `Prescott`…), for a backend that multiplies through it
    /// (ndarray; [`crate::blas`]); absent for the others and in lines written
    /// before it was recorded. Pooling keys on it (`fitting::machine_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blas_core: Option<String>,
}

/// A CPU as `/proc/cpuinfo` and sysfs describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuDetails {
    /// `vendor_id` (GenuineIntel, AuthenticAMD, …).
    pub vendor: String,
    /// `cpu family`, `model` and `stepping`, as `family/model/stepping`.
    pub family_model_stepping: String,
    /// The widest x86 vector extension the CPU reports (`avx512f`, `avx2`,
    /// `avx`, `sse4_2`), or `none`; what runtime-dispatched kernels can use.
    pub simd: String,
    /// Cache sizes per level and type, as sysfs gives them (`L1d 48K`, `L2 2048K`, `L3 107520K`).
    pub caches: Vec<String>,
}

impl CpuDetails {
    /// Reads this machine's, `None` where `/proc/cpuinfo` says nothing (not Linux).
    pub fn current() -> Option<Self> {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
        let caches = (0..8)
            .filter_map(|i| {
                let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
                let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok();
                let (level, kind, size) = (read("level")?, read("type")?, read("size")?);
                let kind = match kind.trim() {
                    "Data" => "d",
                    "Instruction" => "i",
                    _ => "",
                };
                Some(format!("L{}{kind} {}", level.trim(), size.trim()))
            })
            .collect();
        Self::parse(&cpuinfo, caches)
    }

    /// The details of the first processor of a `/proc/cpuinfo` text
    /// (parsed by `planner::machine::cpu_fields`, which the CLI compares).
    pub fn parse(cpuinfo: &str, caches: Vec<String>) -> Option<Self> {
        let mut m = planner::machine::cpu_fields(cpuinfo)?;
        let mut take = |k: &str| m.remove(k).unwrap_or_default();
        Some(CpuDetails {
            vendor: take("cpu_vendor"),
            family_model_stepping: take("cpu_family_model_stepping"),
            simd: take("cpu_simd"),
            caches,
        })
    }
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
pub const THREAD_VARS: [&str; 3] = ["RAYON_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"];

/// Variables that change how memory is allocated: glibc malloc's tuning
/// variables and tunables, and a preloaded allocator. They move latency:
/// a prefill whose logits outgrow what malloc recycles page-faults through
/// them on every forward unless these say otherwise (14–29% here,
/// `data/probes/logits-cliff/`).
pub const ALLOCATOR_VARS: [&str; 10] = [
    "GLIBC_TUNABLES",
    "LD_PRELOAD",
    "MALLOC_ARENA_MAX",
    "MALLOC_ARENA_TEST",
    "MALLOC_CHECK_",
    "MALLOC_MMAP_MAX_",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_PERTURB_",
    "MALLOC_TOP_PAD_",
    "MALLOC_TRIM_THRESHOLD_",
];

/// Variables that choose which kernels OpenBLAS runs ([`crate::blas`]).
pub const BLAS_VARS: [&str; 2] = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"];

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
            .chain(&ALLOCATOR_VARS)
            .chain(&BLAS_VARS)
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
            cpu_details: CpuDetails::current(),
            blas_core: crate::blas::core_for(backend),
        }
    }

    /// The allocator variables that are set, as `NAME=value` joined by
    /// spaces; empty when the allocator runs as shipped.
    pub fn allocator_settings(&self) -> String {
        ALLOCATOR_VARS
            .iter()
            .filter_map(|&k| self.env.get(k).map(|v| format!("{k}={v}")))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The BLAS kernels and the variables that chose them, as `core=NAME`
    /// and `NAME=value` joined by spaces; empty for a backend without BLAS
    /// and variables left unset.
    pub fn blas_settings(&self) -> String {
        let core = self.blas_core.iter().map(|c| format!("core={c}"));
        let vars = BLAS_VARS
            .iter()
            .filter_map(|&k| self.env.get(k).map(|v| format!("{k}={v}")));
        core.chain(vars).collect::<Vec<_>>().join(" ")
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
        if let Some(c) = &self.cpu_details {
            m.insert("cpu_vendor".into(), c.vendor.clone());
            m.insert(
                "cpu_family_model_stepping".into(),
                c.family_model_stepping.clone(),
            );
            m.insert("cpu_simd".into(), c.simd.clone());
            m.insert("cpu_caches".into(), c.caches.join(", "));
        }
        if let Some(core) = &self.blas_core {
            m.insert("blas_core".into(), core.clone());
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

    #[test]
    fn two_epycs_are_told_apart_by_what_decides_speed() {
        let zen1 = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 1\nmodel name\t: AMD EPYC\nstepping\t: 2\nflags\t\t: fpu sse4_2 avx avx2 fma\n";
        let zen5 = zen1
            .replace("cpu family\t: 23", "cpu family\t: 26")
            .replace("fma", "fma avx512f avx512bw");
        let a = CpuDetails::parse(zen1, vec!["L2 512K".into()]).unwrap();
        let b = CpuDetails::parse(&zen5, vec![]).unwrap();
        assert_eq!((a.vendor.as_str(), a.simd.as_str()), ("AuthenticAMD", "avx2"));
        assert_eq!(a.family_model_stepping, "23/1/2");
        assert_eq!(
            (b.simd.as_str(), b.family_model_stepping.as_str()),
            ("avx512f", "26/1/2")
        );
        assert_ne!(a, b);
        assert!(CpuDetails::parse("no cpu here", vec![]).is_none());
    }

    #[test]
    fn allocator_settings_are_recorded_and_change_the_id() {
        let mut f = Fingerprint::current("flex");
        for k in ALLOCATOR_VARS {
            f.env.remove(k);
        }
        assert_eq!(f.allocator_settings(), "");
        let mut tuned = f.clone();
        tuned
            .env
            .insert("MALLOC_TRIM_THRESHOLD_".into(), "4294967296".into());
        tuned
            .env
            .insert("MALLOC_MMAP_THRESHOLD_".into(), "1073741824".into());
        tuned.env.insert("RAYON_NUM_THREADS".into(), "2".into());
        assert_eq!(
            tuned.allocator_settings(),
            "MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296"
        );
        assert_ne!(f.id(), tuned.id());
    }

    #[test]
    fn blas_kernels_are_recorded_and_change_the_id() {
        let mut f = Fingerprint::current("flex");
        assert_eq!(f.blas_core, None, "flex multiplies without OpenBLAS");
        for k in BLAS_VARS {
            f.env.remove(k);
        }
        assert_eq!(f.blas_settings(), "");
        let mut generic = f.clone();
        generic.blas_core = Some("Prescott".into());
        let mut chosen = generic.clone();
        chosen.env.insert("OPENBLAS_CORETYPE".into(), "SkylakeX".into());
        chosen.blas_core = Some("SkylakeX".into());
        assert_eq!(generic.blas_settings(), "core=Prescott");
        assert_eq!(chosen.blas_settings(), "core=SkylakeX OPENBLAS_CORETYPE=SkylakeX");
        assert_ne!(f.id(), generic.id());
        assert_ne!(generic.id(), chosen.id());
        assert_eq!(generic.to_map()["blas_core"], "Prescott");
    }

    #[test]
    fn lines_written_before_the_details_still_read() {
        let mut f = Fingerprint::current("flex");
        f.cpu_details = None;
        f.blas_core = None;
        let json = serde_json::to_string(&f).unwrap();
        assert!(!json.contains("cpu_details") && !json.contains("blas_core"));
        assert_eq!(serde_json::from_str::<Fingerprint>(&json).unwrap(), f);
    }
}
