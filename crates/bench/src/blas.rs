//! Which kernels OpenBLAS, the BLAS the ndarray backend multiplies matrices
//! with, runs on this CPU.
//!
//! An OpenBLAS built for many CPUs (Debian's is) picks its kernels when it
//! loads, by the CPU's model; a model it does not know gets its generic
//! SSE3 kernels, [`GENERIC_CORE`], whatever vector units the CPU has.
//! Debian's OpenBLAS 0.3.21 did so on the Xeon VM of 2026-12-07
//! (GenuineIntel 6/207/2, AVX-512): ndarray's prefill ran there ×1.9–3.2
//! slower than the Xeon profile of another model predicted
//! (`data/onboarding/xeon-207/`). Which kernels run is a fact of the machine
//! and its software as much as the CPU is, so every ndarray line records it
//! ([`crate::fingerprint::Fingerprint::blas_core`]) and pools apart by it.
//!
//! OpenBLAS says which kernels it chose on standard error when
//! `OPENBLAS_VERBOSE=2` is set (`Core: Haswell`); this module asks a child
//! process of this program, which links the same library, for that line.

use std::sync::OnceLock;

/// OpenBLAS's name for its generic x86-64 kernels (SSE3), which a CPU model
/// it does not know gets.
pub const GENERIC_CORE: &str = "Prescott";

/// The line OpenBLAS prints with `OPENBLAS_VERBOSE=2` once it has chosen.
const CORE_PREFIX: &str = "Core: ";

/// The kernel set named in OpenBLAS's verbose output, if any.
pub fn parse_core(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix(CORE_PREFIX))
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
}

/// The kernels OpenBLAS runs for `backend`: ndarray multiplies through it,
/// the other backends do not (`None`), nor a build without it.
pub fn core_for(backend: &str) -> Option<String> {
    static CORE: OnceLock<Option<String>> = OnceLock::new();
    if backend != "ndarray" {
        return None;
    }
    CORE.get_or_init(ask).clone()
}

/// Runs this program once more with `OPENBLAS_VERBOSE=2` (`--version` does
/// nothing else) and reads which kernels OpenBLAS chose as it loaded.
#[cfg(feature = "ndarray")]
fn ask() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .arg("--version")
        .env("OPENBLAS_VERBOSE", "2")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    parse_core(&String::from_utf8_lossy(&out.stderr))
}

/// A build without ndarray links no OpenBLAS.
#[cfg(not(feature = "ndarray"))]
fn ask() -> Option<String> {
    None
}

/// A warning where OpenBLAS runs its generic kernels on a CPU whose vector
/// units ([`crate::fingerprint::CpuDetails::simd`]) are wider: it did not
/// know the CPU, and ndarray's matrix products run far below its speed.
pub fn generic_kernels_warning(core: &str, cpu_simd: &str) -> Option<String> {
    (core == GENERIC_CORE && matches!(cpu_simd, "avx2" | "avx512f")).then(|| {
        format!(
            "ndarray: OpenBLAS runs its generic {GENERIC_CORE} (SSE3) kernels on this CPU, which has {cpu_simd}: \
             it does not know the CPU's model, so ndarray measures far below the CPU's speed. \
             OPENBLAS_CORETYPE (Haswell for AVX2, SkylakeX for AVX-512) chooses the kernels; \
             it is recorded with every line, which pools apart by it"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_core_is_read_from_openblas_verbose_output() {
        assert_eq!(parse_core("Core: Prescott\n").as_deref(), Some("Prescott"));
        assert_eq!(
            parse_core("bench 0.1.0\n  Core: SkylakeX \n").as_deref(),
            Some("SkylakeX")
        );
        assert_eq!(parse_core("bench 0.1.0\n"), None);
        assert_eq!(parse_core("Core: \n"), None);
    }

    #[test]
    fn only_ndarray_multiplies_through_openblas() {
        assert_eq!(core_for("flex"), None);
        assert_eq!(core_for("wgpu"), None);
    }

    #[test]
    fn generic_kernels_on_a_wider_cpu_are_warned_about() {
        let warning = generic_kernels_warning("Prescott", "avx512f").unwrap();
        assert!(warning.contains("SkylakeX") && warning.contains("avx512f"));
        assert!(generic_kernels_warning("Prescott", "avx2").is_some());
        assert_eq!(generic_kernels_warning("Prescott", "sse4_2"), None);
        assert_eq!(generic_kernels_warning("SkylakeX", "avx512f"), None);
    }
}
