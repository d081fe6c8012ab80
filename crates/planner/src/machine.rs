//! Which machine a profile describes, and whether it is this one.
//!
//! Profiles store the fingerprint of the machine they were measured on as a
//! string map. What decides speed — the CPU model, vendor, family/model/
//! stepping, the widest SIMD extension, the core count and, for a backend
//! that multiplies through OpenBLAS, the kernels it chose — is compared with
//! the machine a prediction is asked on; where they differ, the predictions
//! describe the other machine, and the CLI and the page say so.

use std::collections::BTreeMap;

/// Fingerprint keys that decide speed, in the order they are shown.
pub const SPEED_KEYS: [&str; 6] = [
    "cpu",
    "cpu_vendor",
    "cpu_family_model_stepping",
    "cpu_simd",
    "logical_cores",
    "blas_core",
];

/// The fingerprint fields of the first processor of a `/proc/cpuinfo` text:
/// `cpu` (model name), `cpu_vendor`, `cpu_family_model_stepping` and
/// `cpu_simd` (the widest of AVX-512F, AVX2, AVX, SSE4.2, or `none`);
/// `None` where the text names no vendor.
pub fn cpu_fields(cpuinfo: &str) -> Option<BTreeMap<String, String>> {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let vendor = field("vendor_id")?;
    let flags = field("flags").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|x| x == f);
    let simd = ["avx512f", "avx2", "avx", "sse4_2"]
        .into_iter()
        .find(|f| has(f))
        .unwrap_or("none");
    let mut m = BTreeMap::new();
    if let Some(name) = field("model name") {
        m.insert("cpu".to_string(), name);
    }
    m.insert("cpu_vendor".to_string(), vendor);
    m.insert(
        "cpu_family_model_stepping".to_string(),
        format!(
            "{}/{}/{}",
            field("cpu family").unwrap_or_default(),
            field("model").unwrap_or_default(),
            field("stepping").unwrap_or_default()
        ),
    );
    m.insert("cpu_simd".to_string(), simd.to_string());
    Some(m)
}

/// A short description of a fingerprint's machine, e.g.
/// `AMD EPYC (AuthenticAMD 25/17/1, avx512f), 2 cores`.
pub fn describe(fingerprint: &BTreeMap<String, String>) -> String {
    let get = |k: &str| fingerprint.get(k).map(String::as_str);
    let mut s = get("cpu").unwrap_or("unknown CPU").to_string();
    let details: Vec<&str> = ["cpu_vendor", "cpu_family_model_stepping", "cpu_simd"]
        .iter()
        .filter_map(|k| get(k))
        .collect();
    if !details.is_empty() {
        s.push_str(&format!(" ({})", details.join(", ").replacen(", ", " ", 1)));
    }
    if let Some(cores) = get("logical_cores") {
        s.push_str(&format!(", {cores} cores"));
    }
    s
}

/// The speed keys both fingerprints record and on which they differ.
pub fn differences(
    profile: &BTreeMap<String, String>,
    local: &BTreeMap<String, String>,
) -> Vec<&'static str> {
    SPEED_KEYS
        .into_iter()
        .filter(|k| matches!((profile.get(*k), local.get(*k)), (Some(a), Some(b)) if a != b))
        .collect()
}

/// The one line a shell prints when the profile describes another machine,
/// or may: a profile that lacks speed keys this machine records (written
/// before they were) cannot tell two CPUs of one model name apart, and says
/// so. `None` when every speed key this machine records agrees.
pub fn mismatch_line(profile: &BTreeMap<String, String>, local: &BTreeMap<String, String>) -> Option<String> {
    let differ = differences(profile, local);
    if differ.is_empty() {
        let unknown: Vec<&str> = SPEED_KEYS
            .into_iter()
            .filter(|k| local.contains_key(*k) && !profile.contains_key(*k))
            .collect();
        if unknown.is_empty() {
            return None;
        }
        return Some(format!(
            "note: this profile records its machine only as {} (not its {}), so it cannot tell whether it describes this one ({}); onboard this one with `cargo run -p bench --release -- profile` to be sure",
            describe(profile),
            unknown.join(", "),
            describe(local)
        ));
    }
    Some(format!(
        "note: this profile was measured on {}, not on this machine ({}; differs in {}): its predictions describe that machine; onboard this one with `cargo run -p bench --release -- profile`",
        describe(profile),
        describe(local),
        differ.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZEN1: &str = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 1\nmodel name\t: AMD EPYC\nstepping\t: 2\nflags\t\t: fpu sse4_2 avx avx2 fma\n";

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn cpuinfo_gives_what_decides_speed() {
        let m = cpu_fields(ZEN1).unwrap();
        assert_eq!(
            m,
            map(&[
                ("cpu", "AMD EPYC"),
                ("cpu_vendor", "AuthenticAMD"),
                ("cpu_family_model_stepping", "23/1/2"),
                ("cpu_simd", "avx2")
            ])
        );
        let zen5 = ZEN1
            .replace("cpu family\t: 23", "cpu family\t: 26")
            .replace("fma", "fma avx512f");
        assert_eq!(cpu_fields(&zen5).unwrap()["cpu_simd"], "avx512f");
        assert!(cpu_fields("no cpu here").is_none());
    }

    #[test]
    fn two_epycs_differ_and_old_profiles_compare_on_what_they_have() {
        let mut zen1 = cpu_fields(ZEN1).unwrap();
        zen1.insert("logical_cores".into(), "2".into());
        let mut zen4 = zen1.clone();
        zen4.insert("cpu_family_model_stepping".into(), "25/17/1".into());
        zen4.insert("cpu_simd".into(), "avx512f".into());
        assert_eq!(
            differences(&zen4, &zen1),
            ["cpu_family_model_stepping", "cpu_simd"]
        );
        let line = mismatch_line(&zen4, &zen1).unwrap();
        assert!(line.starts_with("note: this profile was measured on AMD EPYC (AuthenticAMD 25/17/1, avx512f), 2 cores, not on this machine (AMD EPYC (AuthenticAMD 23/1/2, avx2), 2 cores;"), "{line}");
        assert!(line.contains("bench --release -- profile"), "{line}");
        assert_eq!(mismatch_line(&zen1, &zen1.clone()), None);
        // A profile written before the details: the model name and cores agree,
        // but it cannot tell a Zen 1 from a Zen 4, and says so.
        let old = map(&[("cpu", "AMD EPYC"), ("logical_cores", "2")]);
        assert!(differences(&old, &zen1).is_empty());
        let line = mismatch_line(&old, &zen1).unwrap();
        assert!(
            line.contains(
                "only as AMD EPYC, 2 cores (not its cpu_vendor, cpu_family_model_stepping, cpu_simd)"
            ),
            "{line}"
        );
        let xeon = map(&[("cpu", "Intel(R) Xeon(R) Processor"), ("logical_cores", "2")]);
        assert_eq!(differences(&xeon, &zen1), ["cpu"]);
        // OpenBLAS's kernels count where both record them.
        let mut generic = zen1.clone();
        generic.insert("blas_core".into(), "Prescott".into());
        let mut chosen = zen1.clone();
        chosen.insert("blas_core".into(), "SkylakeX".into());
        assert_eq!(differences(&generic, &chosen), ["blas_core"]);
        assert!(differences(&generic, &zen1).is_empty());
    }
}
