//! The fit, as the benchmarker runs it: read measurement files, turn their
//! lines into `fit`'s observations, call `fit::pipeline::run`, and hand back
//! what it found. All the statistics live in `fit`; this is the adapter.

use std::path::{Path, PathBuf};

use anyhow::Context;
use fit::memory::MemoryObservation;
use fit::observation::{Disturbance, DisturbanceThresholds, Family, Observation, Session};
use fit::pipeline::{FitInputs, FitOutcome};
use planner::costlaw::OperatorLaws;
use planner::profile::DeviceClass;

use crate::composing::DataByMachine;
use crate::harness::load::{OTHER_LOAD_WARNING_CORES, STEAL_WARNING_PCT};
use crate::memory::MemoryMeasurement;
use crate::record::{self, Measurement, Status};

/// The runner's warning thresholds: the fit leaves out what is above them.
pub const THRESHOLDS: DisturbanceThresholds = DisturbanceThresholds {
    steal_pct: STEAL_WARNING_PCT,
    busy_cores: OTHER_LOAD_WARNING_CORES,
};

/// The measurements `bench fit` and `bench report` fit by default: those of
/// the embedded default profile.
pub const DEFAULT_MEASUREMENTS: &str = "data/measurements";

/// The name the embedded default profile is fitted under.
pub const DEFAULT_PROFILE_NAME: &str = "default (2-core Xeon, CPU backends)";

/// Where `bench memory` writes memory measurements, and the fit reads them by default.
pub const MEMORY_FILE: &str = "data/memory/cpu.jsonl";

/// Where `bench ops` writes operator measurements, and the fit reads them by default.
pub const OPS_FILE: &str = "data/ops/cpu.jsonl";

/// What to fit.
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Measurement files or folders of `*.jsonl`, one session per file.
    pub measurements: Vec<PathBuf>,
    /// Files or folders measured independently, to check the profile against.
    pub evaluate: Vec<PathBuf>,
    /// Memory measurements (`bench memory`); a missing file is none.
    pub memory: PathBuf,
    /// Name stored in the profile.
    pub name: String,
    /// Fit only the machine whose key contains this (see [`machine_key`]).
    pub machine: Option<String>,
    /// Operator files (`bench ops`): a backend whose fitted machine has
    /// operator measurements also gets the operator model.
    pub ops: Vec<PathBuf>,
    /// Operator files whose busy-core readings say which operators split
    /// across threads, for a machine whose own operator files lack them: used
    /// only where backend, threads, build features, Burn version and
    /// allocator settings all match ([`software_key`]), since the split is
    /// the backend's dispatch rule, not the CPU's; the fit says when it does.
    pub parallelism_from: Vec<PathBuf>,
    /// Fit measurements taken while other load ran or the hypervisor stole
    /// time too (left out by default: see [`THRESHOLDS`]).
    pub keep_disturbed: bool,
}

/// What a fit found.
pub struct Fitted {
    /// The fit's result: profile, fits, session factors, checks.
    pub outcome: FitOutcome,
    /// The memory measurements it calibrated from.
    pub memory: Vec<MemoryObservation>,
    /// Lines of the measurement files that could not be read, and operator
    /// data the fit could not use, one message each.
    pub skipped_lines: Vec<String>,
    /// What the fit took from another machine, or why it fitted no
    /// parallelism from a machine's readings, one message each.
    pub notes: Vec<String>,
}

/// The machine a measurement describes, as pooling keys it: CPU (with its
/// vendor, family/model/stepping and SIMD level where the line records them),
/// threads, build features and Burn version (the commit may differ between
/// passes), the allocator's settings where any is set, and the BLAS kernels
/// where the backend multiplies through OpenBLAS (both move latency as much
/// as a CPU does: [`crate::blas`]). Lines written before the CPU details were
/// recorded keep the shorter key, so they never pool with lines that have
/// them: `AMD EPYC` alone cannot tell a Zen 1 guest from a Zen 4 one.
pub fn machine_key(m: &Measurement) -> String {
    machine_key_of(&m.fingerprint)
}

/// [`machine_key`] of a fingerprint (operator measurements carry one too).
pub fn machine_key_of(f: &crate::fingerprint::Fingerprint) -> String {
    let cpu = match &f.cpu_details {
        Some(d) => format!("{} ({} {} {})", f.cpu, d.vendor, d.family_model_stepping, d.simd),
        None => f.cpu.clone(),
    };
    let mut key = format!("{cpu}|{}|{}|{}", f.threads, f.build_features.join(","), f.burn);
    for settings in [f.allocator_settings(), f.blas_settings()] {
        if !settings.is_empty() {
            key = format!("{key}|{settings}");
        }
    }
    key
}

/// The observation a measurement line gives the fit: `None` for a failed
/// line, an invalid shape, or a software GPU adapter (its timings exercise
/// the GPU code path, not a GPU: never fitted).
pub fn observation(m: &Measurement) -> Option<Observation> {
    let t = m.timing.as_ref().filter(|_| m.status == Status::Ok)?;
    if crate::gpu::is_software(m.fingerprint.gpu.as_deref()) {
        return None;
    }
    let disturbed = if t.load.stolen() {
        Some(Disturbance::Stolen)
    } else if t.load.busy() {
        Some(Disturbance::Busy)
    } else {
        None
    };
    Some(Observation {
        backend: m.backend.clone(),
        phase: m.kind,
        shape: m.shape().ok()?,
        configuration: m.gelu.name().to_string(),
        family: Family::from_tag(&m.family),
        median_ms: t.median_ms,
        ci95_ms: t.ci95_ms,
        run_id: m.run_id.clone(),
        machine: machine_key(m),
        fingerprint: m.fingerprint.to_map(),
        disturbed,
        timestamp_utc: m.timestamp_utc.clone(),
    })
}

/// The fit's view of memory measurements (lines with an invalid shape are skipped).
pub fn memory_observations(all: &[MemoryMeasurement]) -> Vec<MemoryObservation> {
    all.iter()
        .filter_map(|m| {
            Some(MemoryObservation {
                backend: m.backend.clone(),
                phase: m.kind,
                shape: m.shape.shape().ok()?,
                peak_bytes: m.peak_bytes,
                recorded_estimate_bytes: m.predicted.total_bytes,
                cpu: m.fingerprint.cpu.clone(),
            })
        })
        .collect()
}

/// Measurement files named by `paths` (a folder: every `*.jsonl` in it).
fn files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = vec![];
    for path in paths {
        if path.is_dir() {
            files.extend(record::jsonl_files(path).with_context(|| format!("reading {}", path.display()))?);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Reads measurement files, one session per file, with a message for every
/// line that could not be read. Fails when none holds a measurement.
pub fn read_sessions(paths: &[PathBuf], skipped: &mut Vec<String>) -> anyhow::Result<Vec<Session>> {
    let mut sessions = vec![];
    let mut any = false;
    for file in files(paths)? {
        let r = record::read(&file).with_context(|| format!("reading {}", file.display()))?;
        for (line, why) in &r.skipped {
            skipped.push(format!("{}: skipped line {line}: {why}", file.display()));
        }
        any |= !r.measurements.is_empty();
        sessions.push(Session {
            name: session_name(&file),
            observations: r.measurements.iter().filter_map(observation).collect(),
            failed_utc: r
                .measurements
                .iter()
                .filter(|m| m.status == Status::Failed)
                .map(|m| m.timestamp_utc.clone())
                .collect(),
        });
    }
    if !any {
        anyhow::bail!("no measurements found in {:?}", paths);
    }
    Ok(sessions)
}

fn session_name(file: &Path) -> String {
    file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The device class of a backend this build knows (CPU for an unknown name:
/// a file from another build).
pub fn device_of(backend: &str) -> DeviceClass {
    crate::backend::BACKENDS
        .iter()
        .find(|b| b.name == backend)
        .map_or(DeviceClass::Cpu, |b| b.device)
}

/// Clears the load gate's marks, so the fit keeps every observation.
fn keep_disturbed(sessions: &mut [Session]) {
    for o in sessions.iter_mut().flat_map(|s| s.observations.iter_mut()) {
        o.disturbed = None;
    }
}

/// Reads every input, then fits. Every file is read before the (long) fit,
/// so a broken one fails at once.
pub fn fit(options: &FitOptions) -> anyhow::Result<Fitted> {
    let memory = memory_observations(&crate::memory::read(&options.memory)?);
    let mut skipped_lines = vec![];
    let mut sessions = read_sessions(&options.measurements, &mut skipped_lines)?;
    if options.keep_disturbed {
        keep_disturbed(&mut sessions);
    }
    let evaluation = options
        .evaluate
        .iter()
        .map(|path| {
            let sessions = read_sessions(std::slice::from_ref(path), &mut skipped_lines)?;
            Ok((path.display().to_string(), sessions))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let source = options
        .measurements
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let (operators, ops_warnings) = crate::composing::read_laws_by_machine(&options.ops)?;
    skipped_lines.extend(ops_warnings);
    let probes: Vec<(String, String, usize)> = operators
        .iter()
        .map(|((backend, machine), data)| {
            (backend.clone(), machine.clone(), data.hot.len() + data.cold.len())
        })
        .collect();
    let mut notes: Vec<String> = operators
        .iter()
        .filter(|(_, data)| planner::parallelism::pool_spins(&data.cores))
        .map(|((backend, machine), _)| spinning_note(backend, machine))
        .collect();
    let mut operators: Vec<(String, String, OperatorLaws)> = operators
        .into_iter()
        .map(|((backend, machine), data)| (backend, machine, fit::operators::fit_laws(&data).0))
        .collect();
    if !options.parallelism_from.is_empty() {
        let (donors, warnings) = crate::composing::read_laws_by_machine(&options.parallelism_from)?;
        skipped_lines.extend(warnings);
        notes.extend(borrow_parallelism(&mut operators, &donors));
    }
    let outcome = fit::pipeline::run(FitInputs {
        sessions,
        evaluation,
        memory: memory.clone(),
        thresholds: THRESHOLDS,
        name: options.name.clone(),
        source,
        device_of: &device_of,
        machine: options.machine.clone(),
        operators,
    })?;
    skipped_lines.extend(unused_operator_data(&probes, &outcome));
    Ok(Fitted {
        outcome,
        memory,
        skipped_lines,
        notes,
    })
}

/// A machine key without its CPU: threads, build features, Burn version and
/// allocator settings (see [`machine_key_of`]), what decides how a backend
/// splits its kernels across threads.
pub fn software_key(machine: &str) -> &str {
    machine.split_once('|').map_or("", |(_, software)| software)
}

/// Gives each backend's laws without a measured [`planner::parallelism::Parallelism`]
/// the one measured on a donor machine of the same backend and [`software_key`];
/// says, per backend, what it took or why it took nothing.
fn borrow_parallelism(
    operators: &mut [(String, String, OperatorLaws)],
    donors: &DataByMachine,
) -> Vec<String> {
    let mut notes = vec![];
    for (backend, machine, laws) in operators.iter_mut().filter(|(_, _, l)| l.parallelism.is_none()) {
        let donor = donors.iter().find(|((b, m), data)| {
            b == backend && software_key(m) == software_key(machine) && !data.cores.is_empty()
        });
        match donor {
            Some(((_, from), data)) if planner::parallelism::pool_spins(&data.cores) => {
                notes.push(spinning_note(backend, from));
            }
            Some(((_, from), data)) => {
                laws.parallelism = planner::parallelism::Parallelism::fit(&data.cores);
                notes.push(format!(
                    "{backend} on `{machine}`: which operators split across threads taken from {} busy-core readings on `{from}` (same backend, threads, features, Burn and allocator; not measured on this machine)",
                    data.cores.len()
                ));
            }
            None => notes.push(format!(
                "{backend} on `{machine}`: no busy-core readings of the same backend, threads, features, Burn and allocator in --parallelism-from; nothing taken"
            )),
        }
    }
    notes
}

/// Why a backend's busy-core readings give it no parallelism.
fn spinning_note(backend: &str, machine: &str) -> String {
    format!(
        "{backend} on `{machine}`: most operator classes read busy on more than one core even at their smallest size, a pool that spins between operations; which operators split is not fitted from these readings"
    )
}

/// Operator data of a (backend, machine) that no fitted backend is: read
/// but unused, which the user should hear of.
fn unused_operator_data(probes: &[(String, String, usize)], outcome: &FitOutcome) -> Vec<String> {
    let fitted = |backend: &str, machine: &str| {
        outcome
            .data
            .iter()
            .chain(&outcome.decode_data)
            .any(|d| d.backend == backend && d.machine == machine)
    };
    probes
        .iter()
        .filter(|(backend, machine, _)| !fitted(backend, machine))
        .map(|(backend, machine, n)| {
            format!(
                "{n} operator measurements of {backend} on `{machine}` not used: the fit holds no whole-model measurements of that machine, or fitted another (see --machine); to lend which operators split across threads, --parallelism-from"
            )
        })
        .collect()
}

/// The report of a fit: Markdown and the files it links to (name, content).
pub fn report(fitted: &Fitted) -> (String, Vec<(String, String)>) {
    let o = &fitted.outcome;
    let points: Vec<Vec<fit::Point>> = o.data.iter().map(|d| d.points.clone()).collect();
    let decode_points: Vec<Vec<fit::Point>> = o.decode_data.iter().map(|d| d.points.clone()).collect();
    let sessions: Vec<String> = o
        .left_out
        .iter()
        .map(ToString::to_string)
        .chain(o.factors.iter().map(ToString::to_string))
        .collect();
    let memory = &fitted.memory;
    let memory_calibrations = o
        .profile
        .backends
        .iter()
        .filter_map(|b| Some((b.backend.clone(), b.memory.clone()?)))
        .collect();
    fit::report::render(
        &o.fits,
        &points,
        &sessions,
        &fit::report::DecodeInputs {
            fits: &o.decode_fits,
            points: &decode_points,
            memory_table: (!memory.is_empty())
                .then(|| fit::memory::accuracy_table(memory) + "\n" + &fit::memory::calibrated_table(memory)),
            memory_calibrations,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZEN4: &str = "AMD EPYC (AuthenticAMD 25/17/1 avx512f)|2|flex,ndarray|0.22.1";
    const ZEN5: &str = "AMD EPYC (AuthenticAMD 26/2/1 avx512f)|2|flex,ndarray|0.22.1";

    fn laws() -> OperatorLaws {
        OperatorLaws::uniform(planner::costlaw::BaseLaw {
            overhead_ms: 0.001,
            ms_per_gflop: 1.0,
            ms_per_mb: 0.1,
            ms_per_dispatch: 0.0,
        })
    }

    /// Operator data with one busy-core reading per GEMM size: split from 2¹⁴ columns on.
    fn donor_data() -> fit::operators::OperatorData {
        let gemm = |n| planner::operators::OpKind::Linear {
            batch: 4,
            rows: 1,
            k: 1024,
            n,
            bias: false,
        };
        fit::operators::OperatorData {
            cores: [(1 << 12, 1.0), (1 << 13, 1.02), (1 << 14, 1.7), (1 << 15, 1.9)]
                .map(|(n, cores)| planner::parallelism::CoresReading { op: gemm(n), cores })
                .to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn the_software_key_is_the_machine_key_without_its_cpu() {
        assert_eq!(software_key(ZEN4), "2|flex,ndarray|0.22.1");
        assert_eq!(software_key(ZEN4), software_key(ZEN5));
        assert_ne!(software_key(ZEN4), software_key(&ZEN5.replace("|2|", "|16|")));
        assert_eq!(software_key("no separator"), "");
    }

    #[test]
    fn parallelism_is_borrowed_only_from_the_same_backend_and_software_and_said_so() {
        let donors: DataByMachine = [
            (("flex".to_string(), ZEN5.to_string()), donor_data()),
            (("ndarray".to_string(), ZEN5.replace("|2|", "|16|")), donor_data()),
        ]
        .into_iter()
        .collect();
        let mut operators = vec![
            ("flex".to_string(), ZEN4.to_string(), laws()),
            ("ndarray".to_string(), ZEN4.to_string(), laws()),
        ];
        let notes = borrow_parallelism(&mut operators, &donors);
        let borrowed = operators[0].2.parallelism.as_ref().expect("flex borrows");
        assert_eq!(borrowed.classes.iter().map(|c| c.measured).max(), Some(4));
        assert!(
            notes[0].contains("taken from 4 busy-core readings") && notes[0].contains(ZEN5),
            "{notes:?}"
        );
        // ndarray's donor ran 16 threads: nothing taken, and the note says so.
        assert_eq!(operators[1].2.parallelism, None);
        assert!(notes[1].contains("nothing taken"), "{notes:?}");
        // A machine that measured its own is left as it is.
        let own = operators[0].2.parallelism.clone();
        assert!(borrow_parallelism(&mut operators[..1], &donors).is_empty());
        assert_eq!(operators[0].2.parallelism, own);
        // A donor whose pool spins (split even at the smallest size) lends nothing.
        let mut spinning = donor_data();
        spinning.cores.iter_mut().for_each(|r| r.cores = 1.9);
        let donors: DataByMachine = [(("ndarray".to_string(), ZEN5.to_string()), spinning)].into();
        let notes = borrow_parallelism(&mut operators[1..], &donors);
        assert_eq!(operators[1].2.parallelism, None);
        assert!(notes[0].contains("spins"), "{notes:?}");
    }

    #[test]
    fn keep_disturbed_clears_what_the_load_gate_marked() {
        // The final onboarding run of 2026-12-01: 35 of its 151 measurements
        // were taken while the hypervisor stole CPU time.
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/onboarding/zen4-v4-5m.jsonl");
        let mut sessions = read_sessions(&[file], &mut vec![]).unwrap();
        let marked = |s: &[Session]| -> usize {
            s.iter()
                .flat_map(|s| &s.observations)
                .filter(|o| o.disturbed.is_some())
                .count()
        };
        assert_eq!(marked(&sessions), 35);
        keep_disturbed(&mut sessions);
        assert_eq!(marked(&sessions), 0);
        let left = fit::sessions::leave_out_disturbed(&mut sessions, THRESHOLDS);
        assert!(left.is_empty());
        assert_eq!(sessions[0].observations.len(), 151);
    }

    #[test]
    fn machines_with_one_model_name_but_other_cpus_are_kept_apart() {
        let mut zen4 = crate::fingerprint::Fingerprint::current("flex");
        zen4.cpu = "AMD EPYC".into();
        zen4.env.clear();
        let details = |fms: &str, simd: &str| crate::fingerprint::CpuDetails {
            vendor: "AuthenticAMD".into(),
            family_model_stepping: fms.into(),
            simd: simd.into(),
            caches: vec![],
        };
        zen4.cpu_details = Some(details("25/17/1", "avx512f"));
        let mut zen1 = zen4.clone();
        zen1.cpu_details = Some(details("23/1/2", "avx2"));
        let mut unknown = zen4.clone();
        unknown.cpu_details = None;
        let keys = [&zen4, &zen1, &unknown].map(machine_key_of);
        assert!(
            keys[0].starts_with("AMD EPYC (AuthenticAMD 25/17/1 avx512f)|"),
            "{}",
            keys[0]
        );
        assert_ne!(keys[0], keys[1]);
        assert!(keys[2].starts_with("AMD EPYC|"), "{}", keys[2]);
        // The cache list and the commit do not split a machine.
        let mut again = zen4.clone();
        again.commit = "other".into();
        again.cpu_details.as_mut().unwrap().caches = vec!["L3 32768K".into()];
        assert_eq!(machine_key_of(&again), keys[0]);
        // A tuned allocator does split it.
        let mut tuned = zen4.clone();
        tuned
            .env
            .insert("MALLOC_MMAP_THRESHOLD_".into(), "1073741824".into());
        assert_eq!(
            machine_key_of(&tuned),
            format!("{}|MALLOC_MMAP_THRESHOLD_=1073741824", keys[0])
        );
        // So do the BLAS kernels, after the allocator's settings.
        let mut generic = tuned.clone();
        generic.blas_core = Some("Prescott".into());
        assert_eq!(
            machine_key_of(&generic),
            format!("{}|MALLOC_MMAP_THRESHOLD_=1073741824|core=Prescott", keys[0])
        );
    }
}
