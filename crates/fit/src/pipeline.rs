//! The whole fit, in one call: sessions of observations → disturbed ones left
//! out → sessions scaled → pooled per backend and phase → a profile (latency
//! and memory) → checked against independently measured sessions. Returns
//! everything it found as a value; the benchmarker reads the files and prints.

use planner::Phase;
use planner::profile::{Accuracy, DeviceClass, PROFILE_SCHEMA_VERSION, Profile};

use crate::FitError;
use crate::memory::MemoryObservation;
use crate::observation::{DisturbanceThresholds, Session};
use crate::pooling::{BackendData, group, noise_floor};
use crate::profile_fit::{BackendFit, MIN_POINTS, fit_backend};
use crate::sessions::{LeftOut, SessionFactor, leave_out_disturbed, normalize_sessions, session_spreads};

/// What the fit starts from.
pub struct FitInputs<'a> {
    /// Measuring sessions (one per file), in reading order.
    pub sessions: Vec<Session>,
    /// Independently measured sessions to check the profile against, by source name.
    pub evaluation: Vec<(String, Vec<Session>)>,
    /// Peak-memory measurements to calibrate each backend's overheads from.
    pub memory: Vec<MemoryObservation>,
    /// Above these, an observation is disturbed and left out.
    pub thresholds: DisturbanceThresholds,
    /// Name stored in the profile.
    pub name: String,
    /// Where the sessions came from, for the profile's `source`.
    pub source: String,
    /// Device class of a backend.
    pub device_of: &'a dyn Fn(&str) -> DeviceClass,
    /// Fit only the observations whose machine key contains this text
    /// (`None`: per backend, the machine with the most observations).
    pub machine: Option<String>,
    /// Operator cost laws by (backend, machine key): a backend whose fitted
    /// machine has laws also gets the operator model, kept if better held out.
    pub operators: Vec<(String, String, planner::costlaw::OperatorLaws)>,
}

/// One backend and phase checked on one independent source.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The source's name (a file).
    pub source: String,
    /// Backend.
    pub backend: String,
    /// Phase.
    pub phase: Phase,
    /// Accuracy on the source's pooled shapes.
    pub accuracy: Accuracy,
}

/// Everything one fit produced.
pub struct FitOutcome {
    /// The profile (latency models, decode where measured, memory overheads where measured).
    pub profile: Profile,
    /// Pooled prefill data per backend (what `fits` were fitted on, in order).
    pub data: Vec<BackendData>,
    /// Prefill fits.
    pub fits: Vec<BackendFit>,
    /// Pooled decode data per backend with enough shapes (what `decode_fits` were fitted on).
    pub decode_data: Vec<BackendData>,
    /// Decode fits.
    pub decode_fits: Vec<BackendFit>,
    /// Backends whose decode data was too thin to fit (fewer than
    /// [`MIN_POINTS`] undisturbed shapes): backend and shapes, so the shell
    /// can say why the profile has no decode model for it.
    pub decode_too_few: Vec<(String, usize)>,
    /// How each session was scaled.
    pub factors: Vec<SessionFactor>,
    /// Observations left out as disturbed, per session.
    pub left_out: Vec<LeftOut>,
    /// The same for the evaluation sessions.
    pub evaluation_left_out: Vec<LeftOut>,
    /// The profile checked on each independent source.
    pub evaluations: Vec<Evaluation>,
    /// Measurements read (failed ones included, disturbed ones left out).
    pub measurements: usize,
}

/// Runs the whole fit.
pub fn run(inputs: FitInputs) -> Result<FitOutcome, FitError> {
    let FitInputs {
        mut sessions,
        evaluation,
        memory,
        thresholds,
        name,
        source,
        device_of,
        machine,
        operators,
    } = inputs;
    if let Some(wanted) = &machine {
        keep_machine(&mut sessions, wanted)?;
    }
    let left_out = leave_out_disturbed(&mut sessions, thresholds);
    // Before scaling: how far sessions lie apart is what scaling removes.
    let spreads = session_spreads(&sessions);
    let factors = normalize_sessions(&mut sessions);
    let measurements: usize = sessions.iter().map(Session::measurements).sum();
    let newest = sessions
        .iter()
        .flat_map(|s| {
            s.observations
                .iter()
                .map(|o| &o.timestamp_utc)
                .chain(&s.failed_utc)
        })
        .max()
        .cloned()
        .unwrap_or_default();
    let observations: Vec<_> = sessions.into_iter().flat_map(|s| s.observations).collect();
    let data = group(&observations, Phase::Prefill);
    // A decode sweep cut short (a timed-out GPU run) leaves the profile
    // without a decode model rather than failing the whole fit.
    let (decode_data, thin): (Vec<BackendData>, Vec<BackendData>) = group(&observations, Phase::Decode)
        .into_iter()
        .partition(|d| d.points.len() >= MIN_POINTS);
    let decode_too_few = thin.into_iter().map(|d| (d.backend, d.points.len())).collect();
    let fit_one = |d: &BackendData, phase: Phase| {
        fit_backend(
            &d.backend,
            device_of(&d.backend),
            d.fingerprint.clone(),
            &d.points,
            noise_floor(&d.repeat_diffs_pct),
            phase,
            operators
                .iter()
                .find(|(backend, machine, _)| *backend == d.backend && *machine == d.machine)
                .map(|(_, _, laws)| laws),
        )
        .map(|mut fit| {
            fit.profile.session_spread_pct = spreads
                .get(&(d.backend.clone(), phase, d.machine.clone()))
                .copied();
            fit
        })
        .map_err(|e| FitError::Backend {
            backend: d.backend.clone(),
            phase,
            source: Box::new(e),
        })
    };
    let fits = data
        .iter()
        .map(|d| fit_one(d, Phase::Prefill))
        .collect::<Result<Vec<_>, _>>()?;
    if fits.is_empty() {
        return Err(FitError::NoPrefill);
    }
    let mut decode_fits = vec![];
    for d in &decode_data {
        if !fits.iter().any(|f| f.profile.backend == d.backend) {
            return Err(FitError::DecodeWithoutPrefill(d.backend.clone()));
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
            let cpu = entry.fingerprint.get("cpu").map(String::as_str);
            entry.memory = crate::memory::calibration(&memory, &entry.backend, cpu);
            entry
        })
        .collect();
    let profile = Profile {
        schema_version: PROFILE_SCHEMA_VERSION,
        name,
        created_utc: newest,
        source: format!("{source} ({measurements} measurements)"),
        backends,
    };
    let mut evaluation_left_out = vec![];
    let mut evaluations = vec![];
    for (source, mut sessions) in evaluation {
        evaluation_left_out.extend(leave_out_disturbed(&mut sessions, thresholds));
        let observed: Vec<_> = sessions.into_iter().flat_map(|s| s.observations).collect();
        evaluations.extend(evaluate(&source, &observed, &fits, &decode_fits));
    }
    Ok(FitOutcome {
        profile,
        data,
        fits,
        decode_data,
        decode_fits,
        decode_too_few,
        factors,
        left_out,
        evaluation_left_out,
        evaluations,
        measurements,
    })
}

/// Keeps only the observations of the machines whose key contains `wanted`.
fn keep_machine(sessions: &mut [Session], wanted: &str) -> Result<(), FitError> {
    let mut available: Vec<String> = sessions
        .iter()
        .flat_map(|s| s.observations.iter().map(|o| o.machine.clone()))
        .collect();
    available.sort();
    available.dedup();
    if !available.iter().any(|m| m.contains(wanted)) {
        return Err(FitError::NoSuchMachine {
            wanted: wanted.to_string(),
            available,
        });
    }
    for s in sessions.iter_mut() {
        s.observations.retain(|o| o.machine.contains(wanted));
        if s.observations.is_empty() {
            s.failed_utc.clear();
        }
    }
    Ok(())
}

/// How well each fitted backend predicts independently measured shapes,
/// prefill and decode alike.
pub fn evaluate(
    source: &str,
    observations: &[crate::Observation],
    fits: &[BackendFit],
    decode_fits: &[BackendFit],
) -> Vec<Evaluation> {
    let mut out = vec![];
    for (phase, fits) in [(Phase::Prefill, fits), (Phase::Decode, decode_fits)] {
        let others = group(observations, phase);
        for f in fits {
            let Some(d) = others.iter().find(|d| d.backend == f.profile.backend) else {
                continue;
            };
            let predicted: Vec<f64> = d
                .points
                .iter()
                .map(|p| f.profile.model.predict_ms(&p.shape))
                .collect();
            let measured: Vec<f64> = d.points.iter().map(|p| p.median_ms).collect();
            out.push(Evaluation {
                source: source.to_string(),
                backend: f.profile.backend.clone(),
                phase,
                accuracy: crate::metrics::accuracy("independent", &predicted, &measured),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::fixtures::observation;
    use crate::observation::{Disturbance, Family};

    /// Sessions of a backend whose latency is 0.5 ms per GFLOP plus 1 ms, the
    /// second session 20% slower, a third disturbed by the hypervisor.
    fn sessions() -> Vec<Session> {
        let session = |name: &str, factor: f64, disturbed: Option<Disturbance>| Session {
            name: name.into(),
            observations: [
                (1, 256),
                (2, 256),
                (4, 256),
                (2, 512),
                (4, 512),
                (8, 512),
                (1, 1024),
                (2, 1024),
                (3, 768),
                (6, 384),
            ]
            .iter()
            .map(|&(l, d)| {
                let shape = planner::ShapeSpec::new(l, d).validate().unwrap();
                let gflop = shape.accounting().flops.total as f64 / 1e9;
                let mut o = observation("flex", l, d, factor * (1.0 + 0.5 * gflop));
                o.run_id = name.into();
                o.family = Family::from_tag(if d == 512 { "iso-x" } else { "other" });
                o.disturbed = disturbed;
                o
            })
            .collect(),
            failed_utc: vec![],
        };
        vec![
            session("a.jsonl", 1.0, None),
            session("b.jsonl", 1.2, None),
            session("c.jsonl", 3.0, Some(Disturbance::Stolen)),
        ]
    }

    fn inputs(sessions: Vec<Session>, evaluation: Vec<(String, Vec<Session>)>) -> FitInputs<'static> {
        FitInputs {
            sessions,
            evaluation,
            memory: vec![],
            thresholds: DisturbanceThresholds {
                steal_pct: 2.0,
                busy_cores: 0.25,
            },
            name: "test".into(),
            source: "synthetic".into(),
            device_of: &|_| DeviceClass::Cpu,
            machine: None,
            operators: vec![],
        }
    }

    #[test]
    fn a_fit_leaves_out_scales_pools_and_checks_in_one_call() {
        let independent = vec![("d.jsonl".to_string(), vec![sessions().remove(0)])];
        let out = run(inputs(sessions(), independent)).unwrap();
        assert_eq!(out.left_out.len(), 1);
        assert_eq!(out.left_out[0].count(), 10);
        assert!(
            out.left_out[0]
                .to_string()
                .starts_with("`c.jsonl`: 10 of 10 measurements left out")
        );
        let b = out.factors.iter().find(|f| f.session == "b.jsonl").unwrap();
        assert!((b.factor.unwrap() - 1.2).abs() < 1e-9);
        assert_eq!(out.measurements, 20);
        assert_eq!(out.profile.source, "synthetic (20 measurements)");
        assert_eq!(out.data[0].points.len(), 10);
        assert!(out.profile.backends[0].decode.is_none());
        // The reference session's own shapes, predicted by the profile.
        let e = &out.evaluations[0];
        assert_eq!(
            (e.backend.as_str(), e.phase, e.accuracy.n),
            ("flex", Phase::Prefill, 10)
        );
        assert!(e.accuracy.mape_pct < 5.0, "{}", e.accuracy.mape_pct);
    }

    #[test]
    fn decode_without_prefill_is_refused_by_name() {
        let mut s = sessions();
        for o in s.iter_mut().flat_map(|s| s.observations.iter_mut()) {
            if o.backend == "flex" {
                o.phase = Phase::Decode;
                o.backend = "ndarray".into();
            }
        }
        s.extend(sessions().into_iter().map(|mut s| {
            s.name.push_str(".prefill");
            s
        }));
        let err = run(inputs(s, vec![])).err().unwrap();
        assert!(
            matches!(err, FitError::DecodeWithoutPrefill(ref b) if b == "ndarray"),
            "{err}"
        );
    }

    #[test]
    fn one_machine_is_fitted_when_asked_and_an_unknown_one_is_named() {
        let mut s = sessions();
        let mut other = sessions().remove(0);
        other.name = "epyc.jsonl".into();
        for o in &mut other.observations {
            o.machine = "AMD EPYC|2".into();
            o.median_ms *= 2.0;
            o.run_id = "epyc".into();
        }
        s.push(other);
        let all = run(inputs(s.clone(), vec![])).unwrap();
        assert_eq!(all.data[0].machine, "cpu|2", "the machine with most observations");
        assert_eq!(all.data[0].other_machines, vec![("AMD EPYC|2".to_string(), 10)]);
        let mut only = inputs(s.clone(), vec![]);
        only.machine = Some("EPYC".into());
        let epyc = run(only).unwrap();
        assert_eq!(epyc.data[0].machine, "AMD EPYC|2");
        assert!(epyc.data[0].other_machines.is_empty());
        let mut none = inputs(s, vec![]);
        none.machine = Some("Graviton".into());
        let err = run(none).err().unwrap().to_string();
        assert!(
            err.contains("Graviton") && err.contains("AMD EPYC|2") && err.contains("cpu|2"),
            "{err}"
        );
    }
}
