//! The allocator state every `bench` process measures in.
//!
//! glibc's malloc hands large freed buffers back to the system and raises its
//! thresholds only as a process frees buffers of each size, so a fresh process
//! page-faults through buffers that a process running for minutes recycles.
//! On the 2-core Xeon VM of 2026-12-04 the onboarding's flex prefill repeats
//! ran up to 1.6× slower at its start than five minutes later (noise floor
//! 24.8%; 2.0% with the allocator told to keep its memory), and a held-out
//! prefill measured in a fresh process up to 3× slower than in a kept one
//! (`data/onboarding/xeon/`). A long-running inference process ends up in the
//! kept state anyway: measuring in it makes every process start where it ends.
//!
//! So `bench` starts itself again with [`KEEP_FREED_MEMORY`] set, unless an
//! allocator variable is already set (the user's choice, kept as given) or
//! `CHIMERA_ALLOCATOR=system` asks for glibc as shipped. The variables land in
//! every line's fingerprint, so the fit keeps such lines apart as another
//! machine, as it keeps any allocator setting.

use thiserror::Error;

use crate::fingerprint::ALLOCATOR_VARS;

/// What `bench` sets before it measures: serve every buffer from the heap and
/// never hand freed memory back (1 GiB and 4 GiB thresholds).
pub const KEEP_FREED_MEMORY: [(&str, &str); 2] = [
    ("MALLOC_MMAP_THRESHOLD_", "1073741824"),
    ("MALLOC_TRIM_THRESHOLD_", "4294967296"),
];

/// The variable that chooses the allocator state: `keep` (the default) or
/// `system` (glibc as shipped).
pub const CHOICE_VAR: &str = "CHIMERA_ALLOCATOR";

/// Whether this process must start again before it measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start again with [`KEEP_FREED_MEMORY`] in the environment.
    Restart,
    /// Go on as the process is: asked for as shipped, not glibc, or
    /// allocator variables already set.
    AsIs,
}

/// A value of [`CHOICE_VAR`] that means nothing.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "{CHOICE_VAR}=`{0}`: expected `keep` (glibc's malloc keeps freed memory, the default) or `system` (as shipped)"
)]
pub struct ChoiceError(pub String);

/// Decides from the environment (`var` reads one variable), on a platform
/// whose allocator reads the variables (`glibc`).
pub fn decide(var: impl Fn(&str) -> Option<String>, glibc: bool) -> Result<Decision, ChoiceError> {
    match var(CHOICE_VAR).as_deref() {
        None | Some("keep") => {}
        Some("system") => return Ok(Decision::AsIs),
        Some(other) => return Err(ChoiceError(other.to_string())),
    }
    if !glibc {
        // Not glibc: its variables would do nothing.
        return Ok(Decision::AsIs);
    }
    if ALLOCATOR_VARS.iter().any(|k| var(k).is_some()) {
        return Ok(Decision::AsIs);
    }
    Ok(Decision::Restart)
}

/// [`decide`] for this process.
pub fn decide_here() -> Result<Decision, ChoiceError> {
    decide(
        |k| std::env::var(k).ok(),
        cfg!(all(target_os = "linux", target_env = "gnu")),
    )
}

/// Replaces this process by itself with [`KEEP_FREED_MEMORY`] set, same
/// arguments; returns only if that failed.
#[cfg(unix)]
pub fn restart() -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_default();
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return e,
    };
    std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .envs(KEEP_FREED_MEMORY)
        .exec()
}

/// Never asked for off Unix ([`decide`] says so first).
#[cfg(not(unix))]
pub fn restart() -> std::io::Error {
    std::io::Error::other("restarting is only done on Unix")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn a_plain_environment_restarts_once_and_then_goes_on() {
        assert_eq!(decide(env(&[]), true), Ok(Decision::Restart));
        assert_eq!(decide(env(&[(CHOICE_VAR, "keep")]), true), Ok(Decision::Restart));
        // After the restart the variables are set: no second restart.
        assert_eq!(decide(env(&KEEP_FREED_MEMORY), true), Ok(Decision::AsIs));
    }

    #[test]
    fn the_users_allocator_settings_and_choice_are_kept() {
        for set in [
            &[("MALLOC_ARENA_MAX", "2")][..],
            &[("LD_PRELOAD", "libjemalloc.so")],
            &[(CHOICE_VAR, "system")],
        ] {
            assert_eq!(decide(env(set), true), Ok(Decision::AsIs), "{set:?}");
        }
        assert_eq!(decide(env(&[]), false), Ok(Decision::AsIs));
    }

    #[test]
    fn an_unknown_choice_is_an_error_naming_the_valid_ones() {
        let err = decide(env(&[(CHOICE_VAR, "jemalloc")]), true).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("CHIMERA_ALLOCATOR=`jemalloc`")
                && text.contains("`keep`")
                && text.contains("`system`"),
            "{text}"
        );
    }

    #[test]
    fn what_is_set_is_what_the_fingerprint_records() {
        for (k, _) in KEEP_FREED_MEMORY {
            assert!(ALLOCATOR_VARS.contains(&k), "{k}");
        }
    }
}
