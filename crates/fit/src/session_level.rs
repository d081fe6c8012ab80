//! A profile put on the level of today's session: the median of a few anchor
//! shapes' measured/predicted ratios, per backend and phase, multiplies that
//! backend's predictions ([`planner::session`] applies it).
//!
//! The median, not the mean: one anchor measured while a neighbour took the
//! memory bus must not move the level. And only when its 95% bootstrap
//! interval excludes 1 and it exceeds the profile's noise floor (run-to-run
//! variability, which its intervals already include): eight anchors of a
//! session already on the profile's level scatter by several percent, and
//! moving by that scatter made held-out shapes worse (2026-12-01, README). The anchors' spread after the level is
//! divided out is kept with it, so a user sees how evenly the session moved.

use std::collections::BTreeMap;

use planner::profile::BackendProfile;
use planner::session::SessionLevel;
use planner::{Phase, Profile, Shape, machine};
use thiserror::Error;

use crate::observation::Observation;
use crate::stats::{bootstrap_median_ci, median, sorted};

/// Anchors one backend and phase needs before its level is moved: with fewer,
/// one disturbed measurement would be the level.
pub const MIN_ANCHORS: usize = 3;

/// Bootstrap resamples of the level's interval.
const RESAMPLES: usize = 2000;

/// One anchor: a shape measured now, and what the profile predicted for it.
#[derive(Debug, Clone, PartialEq)]
pub struct AnchorRatio {
    /// The shape (decode: `seq` is the context).
    pub shape: Shape,
    /// Measured median, ms.
    pub measured_ms: f64,
    /// The profile's prediction before this calibration, ms.
    pub predicted_ms: f64,
}

impl AnchorRatio {
    /// Measured / predicted.
    pub fn ratio(&self) -> f64 {
        self.measured_ms / self.predicted_ms
    }
}

/// The level fitted for one backend and phase.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelFit {
    /// Backend.
    pub backend: String,
    /// Phase.
    pub phase: Phase,
    /// Median measured/predicted of the anchors.
    pub ratio: f64,
    /// Its 95% bootstrap confidence interval.
    pub ratio_ci95: [f64; 2],
    /// Whether predictions were multiplied by `ratio`: the interval excludes
    /// 1 and the level exceeds the profile's noise floor.
    pub applied: bool,
    /// Why not, where not.
    pub not_moved_because: String,
    /// Smallest and largest anchor ratio divided by `ratio`: how evenly the session moved.
    pub ratio_range: [f64; 2],
    /// Every anchor used.
    pub anchors: Vec<AnchorRatio>,
    /// Observations not used: taken while the machine was not its own.
    pub disturbed: usize,
    /// The anchors' machine, where it differs from the profile's in a key
    /// that decides speed: a level cannot make one machine's profile
    /// another's (their regimes differ), so say so.
    pub other_machine: Option<String>,
}

/// Why a session level cannot be fitted.
#[derive(Debug, Error, PartialEq)]
pub enum LevelError {
    /// No observation at all.
    #[error("no anchor measurements to calibrate from")]
    NoAnchors,
    /// A backend the profile does not have.
    #[error("anchors of backend `{name}`, which the profile does not have (it has: {available})")]
    UnknownBackend {
        /// The anchors' backend.
        name: String,
        /// The profile's.
        available: String,
    },
    /// Decode anchors for a backend without a decode model.
    #[error("decode anchors of backend `{0}`, whose profile has no decode model")]
    NoDecodeModel(String),
    /// Too few usable anchors.
    #[error(
        "{backend} {}: {have} usable anchor(s) ({disturbed} taken while the machine was not its own), need at least {MIN_ANCHORS}",
        phase.name()
    )]
    TooFewAnchors {
        /// Backend.
        backend: String,
        /// Phase.
        phase: Phase,
        /// Usable anchors.
        have: usize,
        /// Left out as disturbed.
        disturbed: usize,
    },
}

/// Fits the session level of every backend and phase the observations
/// measured, and returns the profile moved to it (backends and phases
/// without anchors keep their level) with what was fitted.
pub fn calibrate_profile(
    profile: &Profile,
    observations: &[Observation],
    source: &str,
) -> Result<(Profile, Vec<LevelFit>), LevelError> {
    if observations.is_empty() {
        return Err(LevelError::NoAnchors);
    }
    let mut groups: BTreeMap<(String, Phase), Vec<&Observation>> = BTreeMap::new();
    for o in observations {
        groups.entry((o.backend.clone(), o.phase)).or_default().push(o);
    }
    let mut moved = profile.clone();
    let mut fits = vec![];
    for ((backend, phase), group) in groups {
        let entry = moved
            .backends
            .iter_mut()
            .find(|b| b.backend == backend)
            .ok_or_else(|| LevelError::UnknownBackend {
                name: backend.clone(),
                available: profile.backend_names().join(", "),
            })?;
        let target: &mut BackendProfile = match phase {
            Phase::Prefill => entry,
            Phase::Decode => entry
                .decode
                .as_deref_mut()
                .ok_or_else(|| LevelError::NoDecodeModel(backend.clone()))?,
        };
        let (fit, level) = fit_level(target, &backend, phase, &group, source)?;
        *target = target.at_session_level(level);
        fits.push(fit);
    }
    Ok((moved, fits))
}

fn fit_level(
    target: &BackendProfile,
    backend: &str,
    phase: Phase,
    group: &[&Observation],
    source: &str,
) -> Result<(LevelFit, SessionLevel), LevelError> {
    let usable: Vec<&&Observation> = group.iter().filter(|o| o.disturbed.is_none()).collect();
    let disturbed = group.len() - usable.len();
    let anchors: Vec<AnchorRatio> = usable
        .iter()
        .map(|o| AnchorRatio {
            shape: o.shape,
            measured_ms: o.median_ms,
            predicted_ms: target.model.predict_ms(&o.shape),
        })
        .filter(|a| a.predicted_ms.is_finite() && a.predicted_ms > 0.0 && a.measured_ms > 0.0)
        .collect();
    if anchors.len() < MIN_ANCHORS {
        return Err(LevelError::TooFewAnchors {
            backend: backend.to_string(),
            phase,
            have: anchors.len(),
            disturbed,
        });
    }
    let ratios: Vec<f64> = anchors.iter().map(AnchorRatio::ratio).collect();
    let ratio = median(&ratios);
    let ratio_ci95 = bootstrap_median_ci(&sorted(&ratios), RESAMPLES, 0.95);
    let floor = target.noise_floor_pct.map(|pct| pct / 100.0);
    let not_moved_because = if ratio_ci95[0] <= 1.0 && 1.0 <= ratio_ci95[1] {
        "the interval includes 1".to_string()
    } else if let Some(f) = floor.filter(|f| (ratio - 1.0).abs() <= *f) {
        format!("within the profile's run-to-run variability (±{:.1}%)", 100.0 * f)
    } else {
        String::new()
    };
    let applied = not_moved_because.is_empty();
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min) / ratio;
    let hi = ratios.iter().copied().fold(0.0, f64::max) / ratio;
    let measured_utc = usable
        .iter()
        .map(|o| o.timestamp_utc.as_str())
        .max()
        .unwrap_or_default()
        .to_string();
    let mut runs: Vec<&str> = usable.iter().map(|o| o.run_id.as_str()).collect();
    runs.sort_unstable();
    runs.dedup();
    let other_machine = usable
        .iter()
        .find_map(|o| machine_note(&target.fingerprint, &o.fingerprint));
    let level = SessionLevel {
        // `at_session_level` compounds it with the profile's earlier level.
        factor: ratio,
        ratio,
        ratio_ci95,
        applied,
        not_moved_because: not_moved_because.clone(),
        anchors: anchors.len(),
        ratio_range: [lo, hi],
        measured_utc,
        source: format!("{source} (run {})", runs.join(", ")),
    };
    let fit = LevelFit {
        backend: backend.to_string(),
        phase,
        ratio,
        ratio_ci95,
        applied,
        not_moved_because,
        ratio_range: [lo, hi],
        anchors,
        disturbed,
        other_machine,
    };
    Ok((fit, level))
}

/// Why the anchors' machine is, or may be, another than the profile's: a
/// speed key both record differs, or the anchors lack one the profile has
/// (two CPUs of one model name are then one).
fn machine_note(profile: &BTreeMap<String, String>, anchor: &BTreeMap<String, String>) -> Option<String> {
    let (p, a) = (machine::describe(profile), machine::describe(anchor));
    let differ = machine::differences(profile, anchor);
    if !differ.is_empty() {
        return Some(format!(
            "the anchors ran on {a}, not the profile's machine ({p}; differs in {})",
            differ.join(", ")
        ));
    }
    let unknown: Vec<&str> = machine::SPEED_KEYS
        .into_iter()
        .filter(|k| profile.contains_key(*k) && !anchor.contains_key(*k))
        .collect();
    (!unknown.is_empty()).then(|| {
        format!(
            "the anchors record their machine only as {a} (not its {}), so they may come from another machine than the profile's ({p})",
            unknown.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::Disturbance;
    use crate::observation::fixtures::{SHAPES, observation};

    /// A one-backend profile whose prefill prediction is the fixture's FLOP law.
    fn profile() -> Profile {
        let mut p = planner::default_profile();
        p.backends.truncate(1);
        p.backends[0].backend = "flex".into();
        p
    }

    /// Anchors measured `factor` × what the profile predicts, the i-th ×(1 + jitter_i).
    fn anchors(p: &Profile, factor: f64, jitter: &[f64]) -> Vec<Observation> {
        SHAPES
            .iter()
            .zip(jitter)
            .map(|(&(l, d), j)| {
                let mut o = observation("flex", l, d, 1.0);
                o.median_ms = factor * (1.0 + j) * p.backends[0].model.predict_ms(&o.shape);
                o
            })
            .collect()
    }

    #[test]
    fn the_level_is_the_median_ratio_and_predictions_move_by_it() {
        let mut p = profile();
        p.backends[0].noise_floor_pct = Some(2.0);
        // One anchor measured while disturbed in earnest: the median ignores it.
        let obs = anchors(&p, 1.4, &[0.0, 0.02, -0.02, 0.01, 0.9]);
        let (moved, fits) = calibrate_profile(&p, &obs, "anchors.jsonl").unwrap();
        assert_eq!(fits.len(), 1);
        assert!((fits[0].ratio - 1.4 * 1.01).abs() < 1e-9, "{}", fits[0].ratio);
        let shape = obs[0].shape;
        let before = p.backends[0].model.predict_ms(&shape);
        let after = moved.backends[0].model.predict_ms(&shape);
        assert!((after / before - fits[0].ratio).abs() < 1e-9);
        let level = moved.backends[0].session.as_ref().unwrap();
        assert!(level.applied && level.ratio_ci95[0] > 1.0, "{level:?}");
        assert_eq!(level.anchors, 5);
        assert!(
            level.ratio_range[1] > 1.8,
            "the outlier shows in the spread: {level:?}"
        );
        assert!(level.source.starts_with("anchors.jsonl (run "));
        assert!(
            fits[0].other_machine.is_some(),
            "the fixture's CPU is not the default profile's"
        );
        // The moved profile is still a valid one.
        Profile::from_json(&moved.to_json()).unwrap();
    }

    #[test]
    fn a_level_whose_interval_includes_one_moves_nothing() {
        let p = profile();
        let obs = anchors(&p, 1.0, &[0.06, -0.05, 0.03, -0.02, 0.01, -0.04]);
        let (moved, fits) = calibrate_profile(&p, &obs, "x").unwrap();
        let [lo, hi] = fits[0].ratio_ci95;
        assert!(lo < 1.0 && 1.0 < hi && !fits[0].applied, "{:?}", fits[0]);
        assert_eq!(moved.backends[0].model, p.backends[0].model);
        let level = moved.backends[0].session.as_ref().unwrap();
        assert_eq!(level.factor, 1.0);
        assert!(!level.applied && (level.ratio - fits[0].ratio).abs() < 1e-12);
    }

    #[test]
    fn another_or_an_unknown_machine_is_named() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let zen4 = map(&[("cpu", "AMD EPYC"), ("cpu_family_model_stepping", "25/17/1")]);
        let zen2 = map(&[("cpu", "AMD EPYC"), ("cpu_family_model_stepping", "23/49/0")]);
        let bare = map(&[("cpu", "AMD EPYC")]);
        assert_eq!(machine_note(&zen4, &zen4), None);
        assert!(
            machine_note(&zen4, &zen2)
                .unwrap()
                .contains("differs in cpu_family_model_stepping")
        );
        assert!(
            machine_note(&zen4, &bare)
                .unwrap()
                .contains("may come from another machine")
        );
    }

    #[test]
    fn a_level_within_the_noise_floor_moves_nothing() {
        let mut p = profile();
        p.backends[0].noise_floor_pct = Some(5.0);
        let obs = anchors(&p, 1.03, &[0.0, 0.001, -0.001, 0.002, -0.002]);
        let (moved, fits) = calibrate_profile(&p, &obs, "x").unwrap();
        assert!(
            fits[0].ratio_ci95[0] > 1.0,
            "the interval alone would move it: {:?}",
            fits[0]
        );
        assert!(!fits[0].applied);
        assert_eq!(
            fits[0].not_moved_because,
            "within the profile's run-to-run variability (±5.0%)"
        );
        assert_eq!(moved.backends[0].model, p.backends[0].model);
        p.backends[0].noise_floor_pct = Some(2.0);
        let (_, fits) = calibrate_profile(&p, &obs, "x").unwrap();
        assert!(fits[0].applied && fits[0].not_moved_because.is_empty());
    }

    #[test]
    fn disturbed_and_too_few_anchors_are_refused_with_counts() {
        let p = profile();
        let mut obs = anchors(&p, 1.0, &[0.0; 4]);
        obs[0].disturbed = Some(Disturbance::Stolen);
        obs[1].disturbed = Some(Disturbance::Busy);
        let err = calibrate_profile(&p, &obs, "x").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "flex prefill: 2 usable anchor(s) (2 taken while the machine was not its own), need at least {MIN_ANCHORS}"
            )
        );
        assert_eq!(
            calibrate_profile(&p, &[], "x").unwrap_err(),
            LevelError::NoAnchors
        );
    }

    #[test]
    fn unknown_backends_and_missing_decode_models_are_named() {
        let mut p = profile();
        let mut obs = anchors(&p, 1.0, &[0.0; 3]);
        obs.iter_mut().for_each(|o| o.backend = "wgpu".into());
        let err = calibrate_profile(&p, &obs, "x").unwrap_err().to_string();
        assert!(err.contains("`wgpu`") && err.contains("flex"), "{err}");
        p.backends[0].decode = None;
        let mut obs = anchors(&p, 1.0, &[0.0; 3]);
        obs.iter_mut().for_each(|o| o.phase = Phase::Decode);
        assert_eq!(
            calibrate_profile(&p, &obs, "x").unwrap_err(),
            LevelError::NoDecodeModel("flex".into())
        );
    }
}
