//! `bench ops`: micro-benchmarks of every operator class on one backend,
//! with the harness of whole-model runs (sync, cold call, warm-up,
//! interleaved rounds, CI, load gate), appended to an operator file.
//!
//! Probes are built and run in chunks whose tensors stay under a memory
//! bound; within a chunk they are interleaved round by round, so drift of the
//! machine's speed spreads over all of them instead of biasing some. A probe
//! that fails to build or run is recorded with its error and the run goes
//! on. A rerun skips every probe the file already holds for this
//! fingerprint and GELU variant (a killed run loses at most its chunk in flight).

pub mod grid;
pub mod record;
pub mod workload;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::backend;
use crate::fingerprint::Fingerprint;
use crate::harness::rounds::{Event, Job, Schedule, Timings, run_interleaved};
use crate::harness::timing::WallClock;
use crate::model::Gelu;
use crate::record::{Status, append_line};
use crate::runner::{now_utc, warnings_for};
use grid::Grid;
use record::{OPERATOR_SCHEMA_VERSION, OperatorMeasurement, Probe, ProbeTiming};

/// Options of one `bench ops` run.
pub struct OpsOptions<'a> {
    /// Backend name.
    pub backend: &'a str,
    /// GELU variant of the `gelu` probes.
    pub gelu: Gelu,
    /// Which grid.
    pub grid: Grid,
    /// Sampling schedule (see [`schedule`]).
    pub schedule: Schedule,
    /// Operator file to append to.
    pub out: &'a Path,
    /// Measure every probe anew.
    pub fresh: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// Asked after every step; once true the run stops.
    pub stop: &'a dyn Fn() -> bool,
    /// Bytes of probe tensors built at once.
    pub max_held_bytes: u64,
}

/// Default bound on the tensors of one chunk.
pub const DEFAULT_MAX_HELD_BYTES: u64 = 3 << 30;

/// What a run did.
#[derive(Debug, Default)]
pub struct OpsReport {
    /// Lines written (ok and failed).
    pub written: Vec<OperatorMeasurement>,
    /// Probes skipped because the file had them.
    pub skipped: usize,
    /// Lines of the file that could not be read.
    pub file_skipped: Vec<(usize, String)>,
    /// Stopped before every probe finished.
    pub interrupted: bool,
}

/// The default schedule of micro-benchmarks: short rounds, few of them. An
/// operator runs for microseconds to a few hundred ms; a ±3% CI of its median
/// is what the cost laws need.
pub fn schedule() -> Schedule {
    Schedule {
        target_rel_ci: 0.03,
        min_rounds: 2,
        max_rounds: 4,
        warmup_runs: 1,
        warmup_time: Duration::from_millis(10),
        min_samples_per_round: 3,
        round_time: Duration::from_millis(20),
        max_samples_per_round: 200,
        job_time_cap: Duration::from_secs(3),
        renew_each_round: false,
    }
}

fn line(
    probe: Probe,
    opts: &OpsOptions,
    fp: &Fingerprint,
    run_id: &str,
    outcome: Result<&Timings, &str>,
) -> OperatorMeasurement {
    let (status, error, timing, warnings) = match outcome {
        Err(e) => (Status::Failed, Some(e.to_string()), None, vec![]),
        Ok(t) => (
            Status::Ok,
            None,
            Some(ProbeTiming {
                median_ms: t.summary.median,
                ci95_ms: t.summary.ci95,
                cold_ms: t.cold_ms,
                samples: t.summary.n,
                samples_ms: t.samples_ms.clone(),
                round_medians_ms: t.round_medians_ms.clone(),
                converged: t.converged,
                load: t.load,
            }),
            warnings_for(t, opts.schedule.target_rel_ci),
        ),
    };
    OperatorMeasurement {
        schema_version: OPERATOR_SCHEMA_VERSION,
        backend: opts.backend.to_string(),
        gelu: opts.gelu,
        run_id: run_id.to_string(),
        timestamp_utc: now_utc(),
        probe,
        status,
        error,
        timing,
        warnings,
        fingerprint: fp.clone(),
        fingerprint_id: fp.id(),
    }
}

/// Measures every probe of the grid the file lacks.
pub fn run(opts: &OpsOptions) -> anyhow::Result<OpsReport> {
    let device = backend::device(opts.backend)?;
    let fp = Fingerprint::current(opts.backend);
    let fp_id = fp.id();
    let run_id = format!("{}-{}", now_utc(), std::process::id());
    let existing = record::read(opts.out).with_context(|| format!("reading {}", opts.out.display()))?;
    let done: HashSet<String> = existing
        .measurements
        .iter()
        .filter(|m| m.status == Status::Ok && !opts.fresh)
        .map(OperatorMeasurement::resume_key)
        .collect();
    let all = grid::probes(opts.grid);
    let todo: Vec<Probe> = all
        .iter()
        .filter(|p| !done.contains(&record::resume_key(&fp_id, opts.gelu, p)))
        .copied()
        .collect();
    let mut report = OpsReport {
        skipped: all.len() - todo.len(),
        file_skipped: existing.skipped,
        ..OpsReport::default()
    };
    let bar = if opts.progress {
        let bar = ProgressBar::new(todo.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} probes, ETA {eta} {msg}",
            )
            .expect("valid template"),
        );
        bar.set_prefix(format!("{} ops", opts.backend));
        bar
    } else {
        ProgressBar::hidden()
    };
    let write = |m: OperatorMeasurement, report: &mut OpsReport| -> anyhow::Result<()> {
        let json = serde_json::to_string(&m)?;
        append_line(opts.out, &json).with_context(|| format!("appending to {}", opts.out.display()))?;
        report.written.push(m);
        Ok(())
    };
    let clock = WallClock::default();
    let mut rest = todo.as_slice();
    while !rest.is_empty() {
        // The next chunk: probes until their tensors would pass the bound (at least one).
        let mut held = 0u64;
        let take = rest
            .iter()
            .position(|p| {
                held = held.saturating_add(p.held_bytes());
                held > opts.max_held_bytes
            })
            .unwrap_or(rest.len())
            .max(1);
        let (chunk, later) = rest.split_at(take);
        rest = later;
        let mut jobs = Vec::new();
        let mut probes = Vec::new();
        for p in chunk {
            bar.set_message(p.key());
            match workload::build(p, opts.gelu, &device) {
                Ok(w) => {
                    jobs.push(Job::new(w));
                    probes.push(*p);
                }
                Err(e) => {
                    write(line(*p, opts, &fp, &run_id, Err(&e)), &mut report)?;
                    bar.inc(1);
                }
            }
        }
        let mut failure: Option<anyhow::Error> = None;
        let finished = run_interleaved(&mut jobs, &opts.schedule, &clock, opts.stop, |event| {
            if let Event::Finished(i, job) = event {
                let outcome = job.outcome().expect("a finished job has an outcome");
                let m = line(
                    probes[i],
                    opts,
                    &fp,
                    &run_id,
                    outcome.as_ref().map_err(String::as_str),
                );
                if let Err(e) = write(m, &mut report)
                    && failure.is_none()
                {
                    failure = Some(e);
                }
                bar.inc(1);
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        if !finished {
            report.interrupted = true;
            break;
        }
    }
    bar.finish_and_clear();
    Ok(report)
}
