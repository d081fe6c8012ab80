//! Measures a sweep on one backend: builds the models, runs the interleaved
//! rounds, saves every step to the round journal (`crate::journal`) as it is
//! taken, and appends each finished measurement to the file at once. A rerun
//! continues every unfinished shape from its saved steps.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use anyhow::Context;
use burn::tensor::{Device, Int, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use planner::{Phase, Shape};

use crate::backend;
use crate::fingerprint::Fingerprint;
use crate::harness::rounds::{Event, Job, Schedule, Timings, run_interleaved};
use crate::harness::timing::{WallClock, Workload};
use crate::model::{Decoder, Gelu, KvCache};
use crate::record::{self, Measurement, Status, TimingFields};
use crate::sweep::{Sweep, SweepEntry};

/// Options of one measuring run.
pub struct RunOptions<'a> {
    /// Backend name.
    pub backend: &'a str,
    /// MLP activation.
    pub gelu: Gelu,
    /// Prefill (a forward over n tokens) or decode (one token against a KV cache of c = seq).
    pub phase: Phase,
    /// Sampling schedule.
    pub schedule: Schedule,
    /// Append here; shapes already in it under the same fingerprint are skipped.
    pub out: &'a Path,
    /// Measure every shape anew: neither the file's measurements nor the
    /// journal's saved steps are reused.
    pub fresh: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// Asked after every step: once true, the run stops with the step in
    /// flight saved (Ctrl-C).
    pub stop: &'a dyn Fn() -> bool,
    /// Told of every step saved to the journal.
    pub on_saved: &'a dyn Fn(&SavedStep),
}

/// For [`RunOptions::stop`]: a run nobody interrupts.
pub fn never_stop() -> bool {
    false
}

/// For [`RunOptions::on_saved`]: nobody listens.
pub fn ignore_saved(_: &SavedStep<'_>) {}

/// One step saved to the journal.
pub struct SavedStep<'a> {
    /// The shape.
    pub shape: &'a Shape,
    /// 0: cold call and warm-up; k: round k.
    pub step: usize,
    /// Samples of the step.
    pub samples: usize,
}

/// What a run did.
pub struct RunReport {
    /// Measurements written by this run (ok and failed).
    pub written: Vec<Measurement>,
    /// Shapes skipped because the file already had them.
    pub skipped: usize,
    /// For each skipped shape, the newest measurement the file holds of it.
    pub reused: Vec<Measurement>,
    /// Shapes continued from steps an earlier run saved in the journal.
    pub resumed: usize,
    /// Stopped before every shape finished (`stop` said so); the journal holds the rest.
    pub interrupted: bool,
    /// The journal of this measurement file.
    pub journal: std::path::PathBuf,
    /// Lines of the journal that could not be read.
    pub journal_skipped: Vec<(usize, String)>,
    /// Time spent writing and syncing journal lines, s.
    pub journal_write_s: f64,
}

/// A decoder, its input and its device; for decode also its KV cache.
struct BurnWorkload {
    /// What it was built from, to build it anew ([`Workload::renew`]).
    shape: Shape,
    gelu: Gelu,
    model: Decoder,
    input: Tensor<2, Int>,
    /// `Some` in decode mode (taken out while a step runs).
    cache: Option<KvCache>,
    phase: Phase,
    device: Device,
    output: Option<Tensor<3>>,
}

/// What a backend's panic said, as a measurement's error.
pub(crate) fn panic_message(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "backend panicked".into())
}

/// Waits for `device`, a failure as a measurement's error.
pub(crate) fn sync_device(device: &Device) -> Result<(), String> {
    device.sync().map_err(|e| format!("device sync failed: {e:?}"))
}

impl Workload for BurnWorkload {
    fn sync(&mut self) -> Result<(), String> {
        sync_device(&self.device)
    }
    fn execute(&mut self) -> Result<(), String> {
        let (model, input) = (&self.model, self.input.clone());
        // Keep the output alive until after the closing sync: a lazy device
        // could otherwise skip work whose result nobody holds.
        self.output = Some(match self.phase {
            Phase::Prefill => {
                catch_unwind(AssertUnwindSafe(|| model.forward(input))).map_err(panic_message)?
            }
            Phase::Decode => {
                let cache = self
                    .cache
                    .take()
                    .ok_or("the KV cache was lost by a failed step")?;
                let (logits, cache) = catch_unwind(AssertUnwindSafe(|| model.decode_step(input, cache)))
                    .map_err(panic_message)?;
                self.cache = Some(cache);
                logits
            }
        });
        Ok(())
    }
    fn finish(&mut self) {
        self.output = None;
    }
    fn renew(&mut self) -> Result<(), String> {
        // The new instance is built while the old one is alive, so its memory
        // is elsewhere; the old one is dropped when replaced.
        let fresh = catch_unwind(AssertUnwindSafe(|| {
            instantiate(&self.shape, self.gelu, self.phase, &self.device)
        }))
        .map_err(panic_message)?;
        *self = fresh;
        Ok(())
    }
}

/// A workload of `shape`: a model with fresh weights, its input and (decode) its KV cache.
fn instantiate(shape: &Shape, gelu: Gelu, phase: Phase, device: &Device) -> BurnWorkload {
    let model = Decoder::new(shape, gelu, device);
    let (input, cache) = match phase {
        Phase::Prefill => (Decoder::input(shape, device), None),
        Phase::Decode => (
            Decoder::decode_input(shape, device),
            Some(model.kv_cache(shape.batch() as usize, shape.seq() as usize, device)),
        ),
    };
    BurnWorkload {
        shape: *shape,
        gelu,
        model,
        input,
        cache,
        phase,
        device: device.clone(),
        output: None,
    }
}

/// Peak memory of building and running a shape, bytes (f32), with a margin
/// on the activations.
fn memory_needed(shape: &Shape, phase: Phase) -> u64 {
    let m = planner::memory::estimate(shape, phase);
    m.weights_bytes + m.kv_cache_bytes + 2 * m.activations_bytes
}

/// Memory a built workload keeps between steps: weights and KV cache.
fn memory_held(shape: &Shape, phase: Phase) -> u64 {
    let m = planner::memory::estimate(shape, phase);
    m.weights_bytes + m.kv_cache_bytes
}

fn memory_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Whether a shape needing `need` bytes may be built when the kernel reports
/// `available` bytes. The models this run has already built are resident (their
/// weights and caches are written when made), so `available` already excludes
/// them: adding them again refused 22 shapes of 0.1-1 GiB with 12 GiB free.
fn fits_in_memory(need: u64, available: u64) -> bool {
    need <= available / 10 * 9
}

fn build(
    entry: &SweepEntry,
    gelu: Gelu,
    phase: Phase,
    device: &Device,
    held: u64,
) -> Result<BurnWorkload, String> {
    let need = memory_needed(&entry.shape, phase);
    if let Some(avail) = memory_available().filter(|&avail| !fits_in_memory(need, avail)) {
        return Err(format!(
            "needs about {:.1} GiB but {:.1} GiB is available (this run already holds {:.1} GiB for other shapes)",
            need as f64 / 1073741824.0,
            avail as f64 / 1073741824.0,
            held as f64 / 1073741824.0
        ));
    }
    catch_unwind(AssertUnwindSafe(|| {
        instantiate(&entry.shape, gelu, phase, device)
    }))
    .map_err(panic_message)
}

/// Now, as RFC 3339 UTC.
pub fn now_utc() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(secs)
}

/// Formats Unix seconds as RFC 3339 UTC (civil-from-days, Howard Hinnant).
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub(crate) fn warnings_for(t: &Timings, target: f64) -> Vec<String> {
    let mut w = Vec::new();
    let s = &t.summary;
    if !t.converged {
        w.push(format!(
            "noisy: the 95% CI of the median is ±{:.1}%, above the ±{:.1}% target",
            100.0 * s.relative_ci_half_width(),
            100.0 * target
        ));
    }
    if s.median > 0.0 && (s.p90 - s.p10) / s.median > 0.15 {
        w.push(format!(
            "wide spread: p10–p90 is {:.0}% of the median",
            100.0 * (s.p90 - s.p10) / s.median
        ));
    }
    w.extend(t.load.disturbances());
    if s.outliers.total() * 10 > s.n {
        w.push(format!(
            "{} of {} samples are Tukey outliers (kept)",
            s.outliers.total(),
            s.n
        ));
    }
    w
}

fn measurement(
    entry: &SweepEntry,
    sweep: &str,
    opts: &RunOptions,
    fp: &Fingerprint,
    run_id: &str,
    outcome: Result<&Timings, &str>,
) -> Measurement {
    let s = &entry.shape;
    let a = s.accounting();
    let (status, error, timing, warnings) = match outcome {
        Err(e) => (Status::Failed, Some(e.to_string()), None, vec![]),
        Ok(t) => {
            let sm = &t.summary;
            let fields = TimingFields {
                median_ms: sm.median,
                ci95_ms: sm.ci95,
                mean_ms: sm.mean,
                std_ms: sm.std_dev,
                min_ms: sm.min,
                max_ms: sm.max,
                p10_ms: sm.p10,
                p90_ms: sm.p90,
                mad_ms: sm.mad,
                cold_ms: t.cold_ms,
                samples: sm.n,
                warmup_runs: t.warmup_runs,
                renewed_each_round: opts.schedule.renew_each_round,
                samples_ms: t.samples_ms.clone(),
                round_medians_ms: t.round_medians_ms.clone(),
                between_round_spread_pct: t.between_round_spread_pct,
                converged: t.converged,
                outliers: sm.outliers,
                gflops: opts.phase.flops(s) as f64 / (sm.median * 1e6),
                load: t.load,
            };
            (
                Status::Ok,
                None,
                Some(fields),
                warnings_for(t, opts.schedule.target_rel_ci),
            )
        }
    };
    Measurement {
        schema_version: record::MEASUREMENT_SCHEMA_VERSION,
        kind: opts.phase,
        status,
        error,
        backend: opts.backend.to_string(),
        gelu: opts.gelu,
        sweep: sweep.to_string(),
        family: entry.family.clone(),
        run_id: run_id.to_string(),
        timestamp_utc: now_utc(),
        shape: record::ShapeFields::of(s),
        params_total: a.params.total,
        params_non_embedding: a.params.non_embedding,
        flops: opts.phase.flops(s),
        timing,
        warnings,
        fingerprint: fp.clone(),
        fingerprint_id: fp.id(),
    }
}

/// Measures every shape of `sweep` not yet in `opts.out` on `opts.backend`.
pub fn run(sweep: &Sweep, opts: &RunOptions) -> anyhow::Result<RunReport> {
    let device = backend::device(opts.backend)?;
    let fp = Fingerprint::current(opts.backend);
    let fp_id = fp.id();
    let run_id = format!("{}-{}", now_utc(), std::process::id());
    let existing = record::read(opts.out).with_context(|| format!("reading {}", opts.out.display()))?;
    // The newest successful measurement of each resume key (later lines win).
    let done: HashMap<String, &Measurement> = existing
        .measurements
        .iter()
        .filter(|m| m.status == Status::Ok && !opts.fresh)
        .map(|m| (m.resume_key(), m))
        .collect();
    let key_of = |e: &SweepEntry| {
        record::resume_key(
            &fp_id,
            opts.phase,
            opts.gelu,
            &record::shape_key(&e.shape),
            opts.schedule.renew_each_round,
        )
    };
    let mut todo: Vec<&SweepEntry> = Vec::new();
    let mut reused: Vec<Measurement> = Vec::new();
    for entry in &sweep.entries {
        match done.get(&key_of(entry)) {
            Some(m) => reused.push((*m).clone()),
            None => todo.push(entry),
        }
    }
    let skipped = reused.len();
    let mut written = Vec::new();
    let journal_path = crate::journal::path_for(opts.out);
    let journal =
        crate::journal::read(&journal_path).with_context(|| format!("reading {}", journal_path.display()))?;

    let write = |m: Measurement, written: &mut Vec<Measurement>| -> anyhow::Result<()> {
        record::append(opts.out, &m).with_context(|| format!("appending to {}", opts.out.display()))?;
        written.push(m);
        Ok(())
    };

    let bar = if opts.progress {
        let steps = todo.len() as u64 * (2 + opts.schedule.min_rounds as u64);
        let bar = ProgressBar::new(steps.max(1));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {bar:30} {pos}/{len} steps, ETA {eta} {msg}",
            )
            .expect("valid template"),
        );
        bar.set_prefix(format!("{} {}", opts.backend, opts.phase.name()));
        bar
    } else {
        ProgressBar::hidden()
    };

    // Build every model first: failures are recorded and the sweep goes on.
    let mut jobs = Vec::new();
    let mut entries = Vec::new();
    // Per job: its resume key and the next step the journal lacks.
    let mut keys: Vec<(String, usize)> = Vec::new();
    let mut resumed = 0;
    let mut held = 0;
    for entry in todo {
        bar.set_message(format!("building {}", entry.shape));
        match build(entry, opts.gelu, opts.phase, &device, held) {
            Ok(w) => {
                held += memory_held(&entry.shape, opts.phase);
                let key = key_of(entry);
                match journal.checkpoints.get(&key).filter(|_| !opts.fresh) {
                    Some(saved) => {
                        resumed += 1;
                        jobs.push(Job::resume(w, saved, &opts.schedule));
                        keys.push((key, saved.rounds.len() + 1));
                    }
                    None => {
                        jobs.push(Job::new(w));
                        keys.push((key, 0));
                    }
                }
                entries.push(entry);
            }
            Err(e) => write(
                measurement(entry, &sweep.name, opts, &fp, &run_id, Err(&e)),
                &mut written,
            )?,
        }
        bar.inc(1);
    }

    let clock = WallClock::default();
    let mut failure: Option<anyhow::Error> = None;
    let mut journal_write_s = 0.0;
    // Saves the job's newest step unless the journal has it (a resumed job's
    // warm-up is not a step: its cumulative counts go with its next round).
    let mut save = |i: usize, job: &Job<BurnWorkload>, keys: &mut [(String, usize)]| -> anyhow::Result<()> {
        let (key, next) = &mut keys[i];
        let step = job.rounds_done();
        if step < *next {
            return Ok(());
        }
        let (state, samples) = job.last_step();
        let samples = if step == 0 { &[][..] } else { samples };
        let begin = std::time::Instant::now();
        crate::journal::append(
            &journal_path,
            &crate::journal::JournalLine::of(key, &run_id, step, &state, samples),
        )
        .with_context(|| format!("appending to {}", journal_path.display()))?;
        journal_write_s += begin.elapsed().as_secs_f64();
        *next = step + 1;
        (opts.on_saved)(&SavedStep {
            shape: &entries[i].shape,
            step,
            samples: samples.len(),
        });
        Ok(())
    };
    let all_finished = run_interleaved(
        &mut jobs,
        &opts.schedule,
        &clock,
        opts.stop,
        |event| match event {
            Event::Prepared(i, job) | Event::Round(i, job) => {
                if let Err(e) = save(i, job, &mut keys) {
                    failure.get_or_insert(e);
                }
                bar.inc(1);
            }
            Event::Finished(i, job) => {
                // The last round too, so a kill before the line below loses nothing.
                if matches!(job.outcome(), Some(Ok(_)))
                    && let Err(e) = save(i, job, &mut keys)
                {
                    failure.get_or_insert(e);
                }
                let entry = entries[i];
                let outcome = job.outcome().expect("finished jobs have an outcome");
                let m = measurement(
                    entry,
                    &sweep.name,
                    opts,
                    &fp,
                    &run_id,
                    outcome.as_ref().map_err(|e| e.as_str()),
                );
                bar.set_message(format!("{} done", entry.shape));
                if let Err(e) = write(m, &mut written) {
                    failure.get_or_insert(e);
                }
                bar.inc(1);
            }
        },
    );
    bar.finish_and_clear();
    if let Some(e) = failure {
        return Err(e);
    }
    if all_finished {
        forget_finished(opts.out, &journal_path)?;
    }
    Ok(RunReport {
        written,
        skipped,
        reused,
        resumed,
        interrupted: !all_finished,
        journal: journal_path,
        journal_skipped: journal.skipped,
        journal_write_s,
    })
}

/// Removes the journal once every shape it holds is in the measurement file.
fn forget_finished(out: &Path, journal_path: &Path) -> anyhow::Result<()> {
    if !journal_path.exists() {
        return Ok(());
    }
    let done: HashSet<String> = record::read(out)?
        .measurements
        .iter()
        .filter(|m| m.status == Status::Ok)
        .map(Measurement::resume_key)
        .collect();
    let journal = crate::journal::read(journal_path)?;
    if journal.checkpoints.keys().all(|k| done.contains(k)) {
        std::fs::remove_file(journal_path).with_context(|| format!("removing {}", journal_path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_check_compares_the_need_with_what_is_free_now() {
        const GIB: u64 = 1 << 30;
        // The case that failed: 0.3 GiB needed, 12.3 GiB free.
        assert!(fits_in_memory(GIB * 3 / 10, GIB * 123 / 10));
        // A tenth of what is free stays free.
        assert!(!fits_in_memory(GIB * 95 / 10, 10 * GIB));
        assert!(fits_in_memory(9 * GIB, 10 * GIB));
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_utc(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(format_utc(951_782_400), "2000-02-29T00:00:00Z");
    }
}
