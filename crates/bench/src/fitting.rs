//! Glue between measurement files and the `fit` crate: group, pool repeated
//! runs, estimate the noise floor, fit each backend.

use std::collections::BTreeMap;

use fit::Point;
use fit::profile_fit::{BackendFit, fit_backend};
use planner::Phase;
use planner::profile::{PROFILE_SCHEMA_VERSION, Profile};

use crate::backend;
use crate::record::{Measurement, Status};

/// Measurements of one backend pooled per shape.
pub struct BackendData {
    /// Backend name.
    pub backend: String,
    /// Points, one per shape (repeated runs pooled by their mean median).
    pub points: Vec<Point>,
    /// Per shape measured in 2+ runs: relative difference between runs, %.
    pub repeat_diffs_pct: Vec<f64>,
    /// Fingerprint of the measurements used.
    pub fingerprint: BTreeMap<String, String>,
}

/// How one measuring session (one file) relates to the reference session of
/// a backend and phase.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionFactor {
    /// Backend.
    pub backend: String,
    /// Prefill or decode (sessions of each are scaled among themselves).
    pub phase: Phase,
    /// Session (file) name.
    pub session: String,
    /// Its latencies divided by the reference session's on the shapes both
    /// measured (median ratio); `None` for the reference itself or when fewer
    /// than [`MIN_ANCHORS`] shapes are shared (then left unscaled).
    pub factor: Option<f64>,
    /// Shapes shared with the reference session.
    pub anchors: usize,
    /// True for the reference session (the one with most measurements).
    pub reference: bool,
}

/// Shapes two sessions must share before one is scaled to the other.
pub const MIN_ANCHORS: usize = 2;

fn key(m: &Measurement) -> Option<String> {
    Some(format!(
        "{}|{}",
        crate::record::shape_key(&m.shape().ok()?),
        m.gelu.name()
    ))
}

/// Removes the measurements taken while the machine was not their own (the
/// hypervisor stole CPU time, or other processes kept cores busy: the
/// conditions the runner warns about), and says per session how many went
/// and why. They stay in their files; a refit on a quieter day can use them
/// if the thresholds change. Failed measurements are left as they are.
pub fn leave_out_disturbed(sessions: &mut [(String, Vec<Measurement>)]) -> Vec<String> {
    let mut notes = vec![];
    for (name, ms) in sessions.iter_mut() {
        let before = ms.len();
        let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
        ms.retain(|m| {
            let Some(t) = m.timing.as_ref() else { return true };
            let (stolen, busy) = (t.load.stolen(), t.load.busy());
            if stolen {
                *reasons.entry("the hypervisor stole CPU time").or_default() += 1;
            } else if busy {
                *reasons.entry("other processes kept cores busy").or_default() += 1;
            }
            !(stolen || busy)
        });
        if ms.len() < before {
            let why: Vec<String> = reasons.iter().map(|(r, n)| format!("{n}: {r}")).collect();
            notes.push(format!(
                "`{name}`: {} of {before} measurements left out, taken while the machine was not their own ({}; above the runner's warning thresholds of {}% stolen, {} cores busy)",
                before - ms.len(),
                why.join(", "),
                crate::harness::load::STEAL_WARNING_PCT,
                crate::harness::load::OTHER_LOAD_WARNING_CORES
            ));
        }
    }
    notes
}

/// A cloud machine runs 10–30% faster or slower from one hour to the next,
/// while shapes measured in one session stay within a few percent of each
/// other. Each session (file) of a backend and phase is therefore scaled to
/// the session with the most measurements before fitting, by factors estimated
/// jointly over every shape measured in more than one session (see
/// `joint_factors`); sessions without anchors are left as they are and reported.
pub fn normalize_sessions(sessions: &mut [(String, Vec<Measurement>)]) -> Vec<SessionFactor> {
    let mut factors = vec![];
    for phase in Phase::ALL {
        factors.extend(normalize_phase(sessions, phase));
    }
    factors
}

fn normalize_phase(sessions: &mut [(String, Vec<Measurement>)], phase: Phase) -> Vec<SessionFactor> {
    let ok = |m: &Measurement| m.status == Status::Ok && m.kind == phase.name() && m.timing.is_some();
    let mut backends: Vec<String> = sessions
        .iter()
        .flat_map(|(_, ms)| ms.iter().filter(|m| ok(m)).map(|m| m.backend.clone()))
        .collect();
    backends.sort();
    backends.dedup();
    let mut factors = vec![];
    for backend in backends {
        let medians = |ms: &[Measurement]| -> BTreeMap<String, f64> {
            let mut by: BTreeMap<String, Vec<f64>> = BTreeMap::new();
            for m in ms.iter().filter(|m| ok(m) && m.backend == backend) {
                if let Some(k) = key(m) {
                    by.entry(k)
                        .or_default()
                        .push(m.timing.as_ref().unwrap().median_ms);
                }
            }
            by.into_iter()
                .map(|(k, v)| (k, v.iter().sum::<f64>() / v.len() as f64))
                .collect()
        };
        let per_session: Vec<BTreeMap<String, f64>> = sessions.iter().map(|(_, ms)| medians(ms)).collect();
        let Some(reference) = (0..sessions.len())
            .filter(|&i| !per_session[i].is_empty())
            .max_by_key(|&i| (per_session[i].len(), std::cmp::Reverse(i)))
        else {
            continue;
        };
        let joint = joint_factors(&per_session, reference);
        for (i, (name, ms)) in sessions.iter_mut().enumerate() {
            if per_session[i].is_empty() {
                continue;
            }
            let (factor, anchors) = joint[i];
            let factor = factor.filter(|_| i != reference);
            if let Some(f) = factor {
                for m in ms
                    .iter_mut()
                    .filter(|m| m.backend == backend && m.kind == phase.name())
                {
                    if let Some(t) = m.timing.as_mut() {
                        t.median_ms /= f;
                        t.ci95_ms = [t.ci95_ms[0] / f, t.ci95_ms[1] / f];
                        t.mean_ms /= f;
                    }
                }
            }
            factors.push(SessionFactor {
                backend: backend.clone(),
                phase,
                session: name.clone(),
                factor,
                anchors,
                reference: i == reference,
            });
        }
    }
    factors
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
    let median = |mut v: Vec<f64>| -> Option<f64> {
        v.sort_by(f64::total_cmp);
        (!v.is_empty()).then(|| fit::metrics::median_sorted(&v))
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
        log_f[i] = log_f[parent] + median(ratios).unwrap_or(0.0);
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
    let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
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
                "{backend} {phase} `{}`: only {} shared shapes, left unscaled",
                self.session, self.anchors
            ),
        }
    }
}

/// Median of the repeat differences: the noise floor, %.
pub fn noise_floor(diffs: &[f64]) -> Option<f64> {
    if diffs.is_empty() {
        return None;
    }
    let mut d = diffs.to_vec();
    d.sort_by(f64::total_cmp);
    Some(fit::metrics::median_sorted(&d))
}

/// Groups successful measurements of `phase` by backend; within a backend
/// keeps the fingerprint (machine and build) with the most measurements.
pub fn group(measurements: &[Measurement], phase: Phase) -> Vec<BackendData> {
    let mut by_backend: BTreeMap<&str, Vec<&Measurement>> = BTreeMap::new();
    // Software-adapter timings exercise the GPU code path, not a GPU: never fitted.
    for m in measurements.iter().filter(|m| {
        m.status == Status::Ok
            && m.kind == phase.name()
            && m.timing.is_some()
            && !crate::gpu::is_software(m.fingerprint.gpu.as_deref())
    }) {
        by_backend.entry(&m.backend).or_default().push(m);
    }
    let mut out = vec![];
    for (name, ms) in by_backend {
        // The machine: cpu + threads + features (the commit may differ between passes).
        let machine = |m: &Measurement| {
            let f = &m.fingerprint;
            format!(
                "{}|{}|{}|{}",
                f.cpu,
                f.threads,
                f.build_features.join(","),
                f.burn
            )
        };
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for m in &ms {
            *counts.entry(machine(m)).or_default() += 1;
        }
        let Some((chosen, _)) = counts.into_iter().max_by_key(|(_, c)| *c) else {
            continue;
        };
        let fingerprint = ms
            .iter()
            .find(|m| machine(m) == chosen)
            .map(|m| m.fingerprint.to_map())
            .unwrap_or_default();
        let mut per_shape: BTreeMap<String, Vec<&Measurement>> = BTreeMap::new();
        for m in ms.iter().filter(|m| machine(m) == chosen) {
            per_shape
                .entry(format!(
                    "{}|{}",
                    crate::record::shape_key(&m.shape().expect("valid")),
                    m.gelu.name()
                ))
                .or_default()
                .push(m);
        }
        // The noise floor compares the two runs that share the most shapes
        // (back-to-back passes of a sweep), not runs hours apart.
        let mut pair_counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for group in per_shape.values() {
            let mut runs: Vec<&str> = group.iter().map(|m| m.run_id.as_str()).collect();
            runs.sort();
            runs.dedup();
            for (i, a) in runs.iter().enumerate() {
                for b in &runs[i + 1..] {
                    *pair_counts.entry((a, b)).or_default() += 1;
                }
            }
        }
        let repeat_pair = pair_counts
            .into_iter()
            .max_by_key(|&(k, c)| (c, std::cmp::Reverse(k)))
            .map(|(k, _)| k);
        let mut points = vec![];
        let mut diffs = vec![];
        for group in per_shape.values() {
            let medians: Vec<f64> = group
                .iter()
                .map(|m| m.timing.as_ref().unwrap().median_ms)
                .collect();
            if let Some((ra, rb)) = repeat_pair {
                let run = |id: &str| {
                    group
                        .iter()
                        .find(|m| m.run_id == id)
                        .map(|m| m.timing.as_ref().unwrap().median_ms)
                };
                if let (Some(a), Some(b)) = (run(ra), run(rb)) {
                    diffs.push(200.0 * (a - b).abs() / (a + b));
                }
            }
            let first = group[0];
            let rel_cis: Vec<f64> = group
                .iter()
                .map(|m| {
                    let t = m.timing.as_ref().unwrap();
                    (t.ci95_ms[1] - t.ci95_ms[0]) / 2.0 / t.median_ms
                })
                .collect();
            points.push(Point {
                shape: first.shape().expect("measured shapes are valid"),
                family: first.family.clone(),
                median_ms: medians.iter().sum::<f64>() / medians.len() as f64,
                rel_uncertainty: pooled_uncertainty(&medians, &rel_cis),
            });
        }
        out.push(BackendData {
            backend: name.to_string(),
            points,
            repeat_diffs_pct: diffs,
            fingerprint,
        });
    }
    out
}

/// Relative uncertainty of the mean of one shape's session-scaled medians:
/// the runs' own CI half-widths shrink with the number of runs, but repeat runs
/// that disagree more than their CIs admit (sessions differ) set it instead.
pub fn pooled_uncertainty(medians: &[f64], rel_cis: &[f64]) -> f64 {
    let runs = medians.len() as f64;
    let within = crate::harness::stats::median(rel_cis) / runs.sqrt();
    if medians.len() < 2 {
        return within;
    }
    let mean = medians.iter().sum::<f64>() / runs;
    let var = medians.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (runs - 1.0);
    within.max(var.sqrt() / mean / runs.sqrt())
}

fn fit_one(d: &BackendData, phase: Phase) -> anyhow::Result<BackendFit> {
    let device = backend::BACKENDS
        .iter()
        .find(|b| b.name == d.backend)
        .map_or(planner::profile::DeviceClass::Cpu, |b| b.device);
    fit_backend(
        &d.backend,
        device,
        d.fingerprint.clone(),
        &d.points,
        noise_floor(&d.repeat_diffs_pct),
        phase,
    )
    .map_err(|e| anyhow::anyhow!("fitting {} of backend `{}`: {e}", phase.name(), d.backend))
}

/// Fits every backend's prefill, and its decode where measured, into a profile.
/// Returns the profile, the prefill fits and the decode fits.
pub fn fit_profile(
    data: &[BackendData],
    decode_data: &[BackendData],
    name: &str,
    source: &str,
    created_utc: &str,
) -> anyhow::Result<(Profile, Vec<BackendFit>, Vec<BackendFit>)> {
    let fits = data
        .iter()
        .map(|d| fit_one(d, Phase::Prefill))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if fits.is_empty() {
        anyhow::bail!("no successful prefill measurements to fit");
    }
    let mut decode_fits = vec![];
    // A decode sweep cut short (a timed-out GPU run) leaves the profile
    // without a decode model rather than failing the whole fit.
    for d in decode_data
        .iter()
        .filter(|d| d.points.len() >= fit::profile_fit::MIN_POINTS)
    {
        if !fits.iter().any(|f| f.profile.backend == d.backend) {
            anyhow::bail!(
                "backend `{}` has decode measurements but no prefill ones: a profile entry needs both",
                d.backend
            );
        }
        decode_fits.push(fit_one(d, Phase::Decode)?);
    }
    let backends = fits
        .iter()
        .map(|f| {
            let mut entry = f.profile.clone();
            entry.decode = decode_fits
                .iter()
                .find(|d| d.profile.backend == entry.backend)
                .map(|d| Box::new(d.profile.clone()));
            entry
        })
        .collect();
    let profile = Profile {
        schema_version: PROFILE_SCHEMA_VERSION,
        name: name.to_string(),
        created_utc: created_utc.to_string(),
        source: source.to_string(),
        backends,
    };
    Ok((profile, fits, decode_fits))
}

#[cfg(test)]
mod tests {
    use super::pooled_uncertainty;

    #[test]
    fn one_run_keeps_its_own_ci() {
        assert_eq!(pooled_uncertainty(&[10.0], &[0.02]), 0.02);
    }

    #[test]
    fn agreeing_runs_shrink_the_ci_and_disagreeing_runs_set_it() {
        // Two runs within 1% of each other, each ±2%: the CI over √2 wins.
        let agree = pooled_uncertainty(&[10.0, 10.1], &[0.02, 0.02]);
        assert!((agree - 0.02 / 2f64.sqrt()).abs() < 1e-12, "{agree}");
        // Runs 20% apart: standard error of the mean, sd/mean/√n = 0.1.
        let apart = pooled_uncertainty(&[9.0, 11.0], &[0.01, 0.01]);
        let sd = 2f64.sqrt();
        assert!((apart - sd / 10.0 / 2f64.sqrt()).abs() < 1e-12, "{apart}");
    }
}
