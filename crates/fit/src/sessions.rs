//! Measuring sessions: which observations to trust, and how to put sessions
//! measured hours apart on one scale.
//!
//! A cloud machine runs 10–30% faster or slower from one hour to the next,
//! while shapes measured in one session stay within a few percent of each
//! other. Each session of a backend and phase is therefore scaled to the
//! session with the most observations before fitting, by factors estimated
//! jointly over every shape observed in more than one session.

use std::collections::BTreeMap;

use planner::Phase;

use crate::observation::{DisturbanceThresholds, Session};

/// How one measuring session relates to the reference session of a backend
/// and phase.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionFactor {
    /// Backend.
    pub backend: String,
    /// Prefill or decode (sessions of each are scaled among themselves).
    pub phase: Phase,
    /// Session (file) name.
    pub session: String,
    /// Its latencies divided by the reference session's (estimated jointly
    /// over all sessions); `None` for the reference itself or when fewer
    /// than [`MIN_ANCHORS`] shapes link it (then left unscaled).
    pub factor: Option<f64>,
    /// Its shapes also observed in another linked session.
    pub anchors: usize,
    /// True for the reference session (the one with most observations).
    pub reference: bool,
}

/// Shapes two sessions must share before one is scaled to the other.
pub const MIN_ANCHORS: usize = 2;

/// Observations left out of one session because the machine was not their own.
#[derive(Debug, Clone, PartialEq)]
pub struct LeftOut {
    /// Session name.
    pub session: String,
    /// Observations the session had.
    pub before: usize,
    /// How many were left out, per reason.
    pub reasons: BTreeMap<&'static str, usize>,
    /// The thresholds they were above.
    pub thresholds: DisturbanceThresholds,
}

impl LeftOut {
    /// Observations left out in all.
    pub fn count(&self) -> usize {
        self.reasons.values().sum()
    }
}

impl std::fmt::Display for LeftOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why: Vec<String> = self.reasons.iter().map(|(r, n)| format!("{n}: {r}")).collect();
        write!(
            f,
            "`{}`: {} of {} measurements left out, taken while the machine was not their own ({}; above the runner's warning thresholds of {}% stolen, {} cores busy)",
            self.session,
            self.count(),
            self.before,
            why.join(", "),
            self.thresholds.steal_pct,
            self.thresholds.busy_cores
        )
    }
}

/// Removes the observations taken while the machine was not their own (the
/// hypervisor stole CPU time, or other processes kept cores busy: the
/// conditions the runner warns about), and says per session how many went
/// and why. They stay in their files; a refit on a quieter day can use them
/// if the thresholds change.
pub fn leave_out_disturbed(sessions: &mut [Session], thresholds: DisturbanceThresholds) -> Vec<LeftOut> {
    let mut left_out = vec![];
    for session in sessions.iter_mut() {
        let before = session.measurements();
        let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
        session.observations.retain(|o| match o.disturbed {
            Some(d) => {
                *reasons.entry(d.reason()).or_default() += 1;
                false
            }
            None => true,
        });
        if !reasons.is_empty() {
            left_out.push(LeftOut {
                session: session.name.clone(),
                before,
                reasons,
                thresholds,
            });
        }
    }
    left_out
}

/// Scales every session of each backend and phase to that backend's
/// reference session (the one with most shapes), in place, and says how.
pub fn normalize_sessions(sessions: &mut [Session]) -> Vec<SessionFactor> {
    let mut factors = vec![];
    for phase in Phase::ALL {
        factors.extend(normalize_phase(sessions, phase));
    }
    factors
}

/// The (backend, machine) pairs observed in `phase`. Sessions are compared
/// among those of one backend on one machine: another machine's speed is not
/// drift.
fn groups(sessions: &[Session], phase: Phase) -> Vec<(String, String)> {
    let mut groups: Vec<(String, String)> = sessions
        .iter()
        .flat_map(|s| {
            s.observations
                .iter()
                .filter(|o| o.phase == phase)
                .map(|o| (o.backend.clone(), o.machine.clone()))
        })
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// Whether `o` belongs to the group of `phase`, `backend` and `machine`.
fn in_group(o: &crate::Observation, phase: Phase, backend: &str, machine: &str) -> bool {
    o.phase == phase && o.backend == backend && o.machine == machine
}

/// Per session, the mean median of each shape of the group (a file may hold
/// a shape twice); empty for a session without any.
fn per_session_medians(
    sessions: &[Session],
    phase: Phase,
    backend: &str,
    machine: &str,
) -> Vec<BTreeMap<String, f64>> {
    sessions
        .iter()
        .map(|s| {
            let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for o in s
                .observations
                .iter()
                .filter(|o| in_group(o, phase, backend, machine))
            {
                by.entry(o.key()).or_default().push(o.median_ms);
            }
            by.into_iter().map(|(k, v)| (k, crate::stats::mean(&v))).collect()
        })
        .collect()
}

fn normalize_phase(sessions: &mut [Session], phase: Phase) -> Vec<SessionFactor> {
    let mut factors = vec![];
    for (backend, machine) in groups(sessions, phase) {
        let per_session = per_session_medians(sessions, phase, &backend, &machine);
        let Some(reference) = (0..sessions.len())
            .filter(|&i| !per_session[i].is_empty())
            .max_by_key(|&i| (per_session[i].len(), std::cmp::Reverse(i)))
        else {
            continue;
        };
        let joint = joint_factors(&per_session, reference);
        for (i, session) in sessions.iter_mut().enumerate() {
            if per_session[i].is_empty() {
                continue;
            }
            let (factor, anchors) = joint[i];
            let factor = factor.filter(|_| i != reference);
            if let Some(f) = factor {
                for o in session
                    .observations
                    .iter_mut()
                    .filter(|o| in_group(o, phase, &backend, &machine))
                {
                    o.scale_by(f);
                }
            }
            factors.push(SessionFactor {
                backend: backend.clone(),
                phase,
                session: session.name.clone(),
                factor,
                anchors,
                reference: i == reference,
            });
        }
    }
    factors
}

/// How far one session's measurement of a shape lies from another
/// session's, per backend, phase and machine: the median relative difference
/// (%, read like the noise floor) over every pair of sessions that measured
/// the same shape, taken before any scaling. A prediction at the fitted level
/// meets a later session about that far off, however well the shape is
/// modelled; absent where no shape was measured in two sessions.
pub fn session_spreads(sessions: &[Session]) -> BTreeMap<(String, Phase, String), f64> {
    let mut spreads = BTreeMap::new();
    for phase in Phase::ALL {
        for (backend, machine) in groups(sessions, phase) {
            let per_session = per_session_medians(sessions, phase, &backend, &machine);
            let mut diffs = vec![];
            for (i, a) in per_session.iter().enumerate() {
                for b in &per_session[i + 1..] {
                    for (shape, x) in a {
                        if let Some(y) = b.get(shape) {
                            diffs.push(200.0 * (x - y).abs() / (x + y));
                        }
                    }
                }
            }
            if let Some(spread) = crate::stats::median_of(&diffs) {
                spreads.insert((backend, phase, machine), spread);
            }
        }
    }
    spreads
}

/// Per session: its latency factor relative to `reference` and the number of
/// its shapes also measured in another linked session.
///
/// All factors are estimated together (least squares of ln t = ln f_session +
/// ln μ_shape over the shapes measured in two or more sessions), so a session
/// linked to the reference by a few anchors but to another session by many
/// shapes is placed by all of them, not by its few anchors alone. Sessions
/// that share fewer than [`MIN_ANCHORS`] shapes with the linked ones get `None`.
fn joint_factors(per_session: &[BTreeMap<String, f64>], reference: usize) -> Vec<(Option<f64>, usize)> {
    let n = per_session.len();
    let shared = |a: usize, b: usize| {
        per_session[a]
            .keys()
            .filter(|k| per_session[b].contains_key(*k))
            .count()
    };
    // Link sessions to the reference one at a time, each through the linked
    // session it shares most shapes with; the chained median ratios start the
    // joint fit close to its solution.
    let mut linked = vec![false; n];
    linked[reference] = true;
    let mut log_f = vec![0.0f64; n];
    loop {
        let next = (0..n)
            .filter(|&i| !linked[i] && !per_session[i].is_empty())
            .flat_map(|i| (0..n).filter(|&j| linked[j]).map(move |j| (i, j)))
            .map(|(i, j)| (shared(i, j), i, j))
            .filter(|&(c, _, _)| c >= MIN_ANCHORS)
            .max_by_key(|&(c, i, _)| (c, std::cmp::Reverse(i)));
        let Some((_, i, parent)) = next else { break };
        let ratios: Vec<f64> = per_session[i]
            .iter()
            .filter_map(|(k, t)| per_session[parent].get(k).map(|p| t.ln() - p.ln()))
            .collect();
        log_f[i] = log_f[parent] + crate::stats::median_of(&ratios).unwrap_or(0.0);
        linked[i] = true;
    }
    // Shapes measured in two or more linked sessions carry the information.
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for i in (0..n).filter(|&i| linked[i]) {
        for k in per_session[i].keys() {
            *counts.entry(k).or_default() += 1;
        }
    }
    let common: Vec<&String> = counts
        .into_iter()
        .filter(|&(_, c)| c >= 2)
        .map(|(k, _)| k)
        .collect();
    // Least squares on logs (alternating means): unlike a median polish, whose
    // fixed point depended on where it started here, this has one solution.
    let mean = |v: Vec<f64>| (!v.is_empty()).then(|| crate::stats::mean(&v));
    for _ in 0..10_000 {
        let level: BTreeMap<&String, f64> = common
            .iter()
            .filter_map(|&k| {
                let v: Vec<f64> = (0..n)
                    .filter(|&i| linked[i])
                    .filter_map(|i| per_session[i].get(k).map(|t| t.ln() - log_f[i]))
                    .collect();
                Some((k, mean(v)?))
            })
            .collect();
        let mut change = 0.0f64;
        for i in (0..n).filter(|&i| linked[i] && i != reference) {
            let v: Vec<f64> = per_session[i]
                .iter()
                .filter_map(|(k, t)| level.get(k).map(|l| t.ln() - l))
                .collect();
            if let Some(f) = mean(v) {
                change = change.max((f - log_f[i]).abs());
                log_f[i] = f;
            }
        }
        if change < 1e-13 {
            break;
        }
    }
    (0..n)
        .map(|i| {
            let anchors = per_session[i].keys().filter(|k| common.contains(k)).count();
            (linked[i].then(|| log_f[i].exp()), anchors)
        })
        .collect()
}

impl std::fmt::Display for SessionFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (backend, phase) = (&self.backend, self.phase.name());
        match (self.reference, self.factor) {
            (true, _) => write!(f, "{backend} {phase} `{}`: reference session", self.session),
            (false, Some(x)) => write!(
                f,
                "{backend} {phase} `{}`: ×{x:.3} the reference's latency (estimated jointly; {} of its shapes measured in other sessions too); scaled to it",
                self.session, self.anchors
            ),
            (false, None) => write!(
                f,
                "{backend} {phase} `{}`: shares fewer than {MIN_ANCHORS} shapes with any one session linked to the reference ({} of its shapes are measured in two or more of them), left unscaled",
                self.session, self.anchors
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::Disturbance;
    use crate::observation::fixtures::session;

    #[test]
    fn a_slower_session_is_scaled_back_by_its_anchor_ratio() {
        let base = session("pass1", 1..21, 1.0);
        let mut sessions = vec![
            base.clone(),
            session("later", 1..6, 1.25),
            session("lone", 1..2, 2.0),
        ];
        let factors = normalize_sessions(&mut sessions);
        let later = factors.iter().find(|f| f.session == "later").unwrap();
        assert_eq!(later.anchors, 5);
        assert!((later.factor.unwrap() - 1.25).abs() < 1e-12);
        for (scaled, original) in sessions[1].observations.iter().zip(&base.observations) {
            assert!((scaled.median_ms - original.median_ms).abs() < 1e-9 * original.median_ms);
        }
        let lone = factors.iter().find(|f| f.session == "lone").unwrap();
        assert_eq!(
            (lone.factor, lone.anchors),
            (None, 1),
            "one shared shape is not enough"
        );
        assert_eq!(
            sessions[2].observations[0].median_ms,
            2.0 * base.observations[0].median_ms
        );
        assert!(factors.iter().any(|f| f.reference && f.session == "pass1"));
        assert!(later.to_string().contains("×1.250"));
        assert!(lone.to_string().contains("left unscaled"));
    }

    #[test]
    fn the_session_spread_is_the_median_difference_of_shapes_measured_twice() {
        // Shapes 1–4 in three sessions at ×1, ×1.1 and ×1.2: per shape the
        // pairs differ by 2·0.1/2.1, 2·0.2/2.2 and 2·0.1/2.3; shapes 5–9 in one
        // session only count for nothing.
        let sessions = vec![
            session("a", 1..10, 1.0),
            session("b", 1..5, 1.1),
            session("c", 1..5, 1.2),
        ];
        let spreads = session_spreads(&sessions);
        let machine = sessions[0].observations[0].machine.clone();
        let spread = spreads[&("flex".to_string(), Phase::Prefill, machine)];
        let expected = 200.0 * 0.1 / 2.1;
        assert!((spread - expected).abs() < 1e-9, "{spread} vs {expected}");
        assert!(spreads.keys().all(|(_, phase, _)| *phase == Phase::Prefill));
        assert!(session_spreads(&[session("alone", 1..10, 1.0)]).is_empty());
    }

    #[test]
    fn a_session_without_anchors_on_the_reference_is_placed_through_another() {
        // `a` shares 4 shapes with the reference (×1.1); `b` shares none with the
        // reference but 8 with `a` (×1.2 of a): b must come out at ×1.32.
        let mut a = session("a", 9..13, 1.1);
        a.observations.extend(session("a", 13..21, 1.1).observations);
        let mut sessions = vec![
            session("reference", 1..13, 1.0),
            a,
            session("b", 13..21, 1.1 * 1.2),
        ];
        let factors = normalize_sessions(&mut sessions);
        let factor = |name: &str| {
            factors
                .iter()
                .find(|f| f.session == name)
                .unwrap()
                .factor
                .unwrap()
        };
        assert!((factor("a") - 1.1).abs() < 1e-9, "{}", factor("a"));
        assert!((factor("b") - 1.32).abs() < 1e-9, "{}", factor("b"));
    }

    #[test]
    fn observations_taken_while_the_hypervisor_stole_time_are_left_out() {
        let base = session("clean", 1..31, 1.0);
        let mut noisy = base.clone();
        noisy.name = "noisy".into();
        let stolen: Vec<usize> = (0..noisy.observations.len()).step_by(3).collect();
        for &i in &stolen {
            noisy.observations[i].disturbed = Some(Disturbance::Stolen);
        }
        noisy.observations[1].disturbed = Some(Disturbance::Busy);
        let mut sessions = vec![base.clone(), noisy];
        let thresholds = DisturbanceThresholds {
            steal_pct: 2.0,
            busy_cores: 0.25,
        };
        let notes = leave_out_disturbed(&mut sessions, thresholds);
        assert_eq!(
            sessions[0].observations.len(),
            30,
            "a clean session keeps everything"
        );
        assert_eq!(sessions[1].observations.len(), 30 - stolen.len() - 1);
        assert!(sessions[1].observations.iter().all(|o| o.disturbed.is_none()));
        assert_eq!(notes.len(), 1, "{notes:?}");
        let note = notes[0].to_string();
        assert!(note.starts_with(&format!(
            "`noisy`: {} of 30 measurements left out",
            stolen.len() + 1
        )));
        assert!(note.contains(&format!("{}: the hypervisor stole CPU time", stolen.len())));
        assert!(note.contains("1: other processes kept cores busy"));
        assert!(
            note.ends_with("thresholds of 2% stolen, 0.25 cores busy)"),
            "{note}"
        );
    }

    #[test]
    fn another_machine_is_never_scaled_to_this_one() {
        let mut epyc = session("epyc", 1..21, 2.0);
        for o in &mut epyc.observations {
            o.machine = "AMD EPYC|2".into();
        }
        let mut sessions = vec![session("pass1", 1..21, 1.0), session("pass2", 1..11, 1.1), epyc];
        let factors = normalize_sessions(&mut sessions);
        let epyc = factors.iter().find(|f| f.session == "epyc").unwrap();
        assert!(
            epyc.reference && epyc.factor.is_none(),
            "its own machine's reference: {epyc:?}"
        );
        assert_eq!(
            sessions[2].observations[0].median_ms, 2.0,
            "left at its own speed"
        );
        let pass2 = factors.iter().find(|f| f.session == "pass2").unwrap();
        assert!((pass2.factor.unwrap() - 1.1).abs() < 1e-12);
    }
}
