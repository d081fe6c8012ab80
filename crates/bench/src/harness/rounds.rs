//! Interleaved rounds: the sampling schedule and stopping rule.
//!
//! A machine's speed drifts by several percent over minutes. Timing one shape
//! to the end before the next turns that drift into false structure between
//! shapes. Instead each round visits every unfinished job for a short budget;
//! the statistics pool all rounds, and the spread of the per-round medians is
//! recorded per job. A job stops once it has `min_rounds` rounds and the 95%
//! CI of its median is within `target_rel_ci`, or when it has used its time cap
//! or `max_rounds`. Samples are never dropped.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::load::{LoadMeter, LoadReading, LoadTotals};
use super::timing::{Clock, Workload, time_once};
use fit::stats::{Summary, median, summarize};

/// Sampling settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schedule {
    /// Stop when the 95% CI half-width of the median is within this fraction.
    pub target_rel_ci: f64,
    /// Rounds every job takes at least.
    pub min_rounds: usize,
    /// Rounds after which a job stops regardless.
    pub max_rounds: usize,
    /// Warm-up: at least this many untimed runs after the cold run...
    pub warmup_runs: usize,
    /// ...and at least this long.
    pub warmup_time: Duration,
    /// Per round and job: at least this many samples...
    pub min_samples_per_round: usize,
    /// ...and more while the round has run shorter than this...
    pub round_time: Duration,
    /// ...up to this many.
    pub max_samples_per_round: usize,
    /// Time a job may use in all (cold, warm-up and rounds).
    pub job_time_cap: Duration,
    /// Build each job's workload anew before each of its rounds, so its
    /// rounds time different instances: on flex decode one instance's time
    /// depends on where it was built (up to ×1.4, data/probes/position/), and
    /// samples of one instance cannot average that out.
    pub renew_each_round: bool,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            target_rel_ci: 0.02,
            min_rounds: 3,
            max_rounds: 8,
            warmup_runs: 2,
            warmup_time: Duration::from_millis(150),
            min_samples_per_round: 3,
            round_time: Duration::from_millis(250),
            max_samples_per_round: 500,
            job_time_cap: Duration::from_secs(25),
            renew_each_round: false,
        }
    }
}

/// Timings of a finished job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// First call, timed alone (compilation and autotune included), ms.
    pub cold_ms: f64,
    /// Untimed warm-up runs.
    pub warmup_runs: usize,
    /// Every timed sample, ms, in the order taken.
    pub samples_ms: Vec<f64>,
    /// Median of each round, ms.
    pub round_medians_ms: Vec<f64>,
    /// (max − min) / median of the round medians, %.
    pub between_round_spread_pct: f64,
    /// Statistics of all samples pooled.
    pub summary: Summary,
    /// Whether the precision target was reached.
    pub converged: bool,
    /// Other load while it ran.
    pub load: LoadReading,
}

/// Where a job stands after a step: enough to continue it in another
/// process. `rounds[k]` are the samples of round k + 1; the rest is cumulative.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    /// The first call, ms (`None` before it ran).
    pub cold_ms: Option<f64>,
    /// Untimed runs so far.
    pub warmup_runs: usize,
    /// Samples per round.
    pub rounds: Vec<Vec<f64>>,
    /// Time used so far (against the job's time cap).
    pub spent: Duration,
    /// Other load counted so far.
    pub load: LoadTotals,
}

/// The state of one job.
pub struct Job<W> {
    /// The thing timed.
    pub workload: W,
    cold_ms: Option<f64>,
    warmup_runs: usize,
    samples: Vec<f64>,
    round_medians: Vec<f64>,
    /// Samples taken in the last round (the tail of `samples`).
    last_round: usize,
    /// Rounds restored from a checkpoint: the cold call and warm-up of this
    /// process are not the job's first.
    restored: bool,
    spent: Duration,
    load: LoadMeter,
    outcome: Option<Result<Timings, String>>,
}

impl<W: Workload> Job<W> {
    /// A job that has not run yet.
    pub fn new(workload: W) -> Self {
        Self {
            workload,
            cold_ms: None,
            warmup_runs: 0,
            samples: Vec::new(),
            round_medians: Vec::new(),
            last_round: 0,
            restored: false,
            spent: Duration::ZERO,
            load: LoadMeter::default(),
            outcome: None,
        }
    }

    /// A job that continues from a checkpoint taken in another process: its
    /// rounds are pooled as if taken here, and if they already meet the
    /// stopping rule it is finished at once.
    pub fn resume(workload: W, checkpoint: &Checkpoint, schedule: &Schedule) -> Self {
        let mut job = Self::new(workload);
        job.cold_ms = checkpoint.cold_ms;
        job.warmup_runs = checkpoint.warmup_runs;
        for round in &checkpoint.rounds {
            job.round_medians.push(median(round));
            job.samples.extend(round);
            job.last_round = round.len();
        }
        job.restored = job.cold_ms.is_some();
        job.spent = checkpoint.spent;
        job.load = LoadMeter::resumed(checkpoint.load);
        if !job.round_medians.is_empty() {
            job.maybe_finish(schedule);
        }
        job
    }

    /// Rounds taken so far.
    pub fn rounds_done(&self) -> usize {
        self.round_medians.len()
    }

    /// The samples of the last round, and everything cumulative: what a
    /// journal line saves after each step.
    pub fn last_step(&self) -> (Checkpoint, &[f64]) {
        let last = &self.samples[self.samples.len() - self.last_round..];
        (
            Checkpoint {
                cold_ms: self.cold_ms,
                warmup_runs: self.warmup_runs,
                rounds: vec![],
                spent: self.spent,
                load: self.load.totals(),
            },
            last,
        )
    }

    /// `Some` once finished: the timings, or why it failed.
    pub fn outcome(&self) -> Option<&Result<Timings, String>> {
        self.outcome.as_ref()
    }

    /// Runs the cold call and the warm-up. A failure finishes the job.
    pub fn prepare(&mut self, schedule: &Schedule, clock: &dyn Clock) {
        let begin = clock.now();
        self.load.begin();
        let result = (|| {
            let first = time_once(&mut self.workload, clock)?;
            if self.restored {
                // This process's first call re-warms a job begun elsewhere:
                // the job's cold latency is the one measured then.
                self.warmup_runs += 1;
            } else {
                self.cold_ms = Some(first);
            }
            let warm_start = clock.now();
            let warmed_before = self.warmup_runs;
            while self.warmup_runs - warmed_before < schedule.warmup_runs
                || (clock.now() - warm_start < schedule.warmup_time && self.warmup_runs - warmed_before < 50)
            {
                time_once(&mut self.workload, clock)?;
                self.warmup_runs += 1;
            }
            Ok(())
        })();
        self.load.end();
        self.spent += clock.now() - begin;
        if let Err(e) = result {
            self.outcome = Some(Err(e));
        }
    }

    /// Takes one round of samples; finishes the job when the stopping rule says so.
    pub fn round(&mut self, schedule: &Schedule, clock: &dyn Clock) {
        if self.outcome.is_some() {
            return;
        }
        let begin = clock.now();
        self.load.begin();
        let result = (|| {
            if schedule.renew_each_round {
                self.workload.renew()?;
            }
            // One untimed run re-warms caches after other jobs ran.
            time_once(&mut self.workload, clock)?;
            let round_start = clock.now();
            let mut taken = Vec::new();
            while taken.len() < schedule.min_samples_per_round
                || (clock.now() - round_start < schedule.round_time
                    && taken.len() < schedule.max_samples_per_round)
            {
                taken.push(time_once(&mut self.workload, clock)?);
            }
            Ok::<_, String>(taken)
        })();
        self.load.end();
        self.spent += clock.now() - begin;
        match result {
            Err(e) => self.outcome = Some(Err(e)),
            Ok(taken) => {
                self.round_medians.push(median(&taken));
                self.last_round = taken.len();
                self.samples.extend(taken);
                self.maybe_finish(schedule);
            }
        }
    }

    fn maybe_finish(&mut self, schedule: &Schedule) {
        let Some(summary) = summarize(&self.samples) else {
            self.outcome = Some(Err("a timing was not finite".into()));
            return;
        };
        let rounds = self.round_medians.len();
        let converged = summary.relative_ci_half_width() <= schedule.target_rel_ci;
        let out_of_time = self.spent >= schedule.job_time_cap;
        if (rounds >= schedule.min_rounds && (converged || out_of_time)) || rounds >= schedule.max_rounds {
            let (lo, hi) = self
                .round_medians
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &m| {
                    (lo.min(m), hi.max(m))
                });
            self.outcome = Some(Ok(Timings {
                cold_ms: self.cold_ms.unwrap_or(f64::NAN),
                warmup_runs: self.warmup_runs,
                samples_ms: self.samples.clone(),
                round_medians_ms: self.round_medians.clone(),
                between_round_spread_pct: 100.0 * (hi - lo) / summary.median,
                converged,
                summary,
                load: self.load.reading(),
            }));
        }
    }
}

/// What happened to a job, reported as it happens.
pub enum Event<'a, W> {
    /// Cold run and warm-up done (checkpoint it now).
    Prepared(usize, &'a Job<W>),
    /// A round done; the job goes on (checkpoint it now).
    Round(usize, &'a Job<W>),
    /// The job finished (persist it now).
    Finished(usize, &'a Job<W>),
}

/// Runs jobs in interleaved rounds, reporting each step to `observe` as it
/// happens (so a caller can persist every step at once). `stop` is asked
/// after every step: once it says yes, the step in flight has been reported
/// and the run returns `false` (interrupted) with the unfinished jobs as they
/// stand; `true` when every job finished.
pub fn run_interleaved<W: Workload>(
    jobs: &mut [Job<W>],
    schedule: &Schedule,
    clock: &dyn Clock,
    stop: &dyn Fn() -> bool,
    mut observe: impl FnMut(Event<'_, W>),
) -> bool {
    for (i, job) in jobs.iter_mut().enumerate() {
        if job.outcome.is_none() {
            job.prepare(schedule, clock);
        }
        if job.outcome.is_some() {
            observe(Event::Finished(i, job));
        } else {
            observe(Event::Prepared(i, job));
        }
        if stop() {
            return jobs.iter().all(|j| j.outcome.is_some());
        }
    }
    for _ in 0..schedule.max_rounds {
        for (i, job) in jobs.iter_mut().enumerate() {
            if job.outcome.is_none() {
                job.round(schedule, clock);
                if job.outcome.is_some() {
                    observe(Event::Finished(i, job));
                } else {
                    observe(Event::Round(i, job));
                }
                if stop() {
                    return jobs.iter().all(|j| j.outcome.is_some());
                }
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::timing::fake::{FakeClock, FakeWorkload};
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            round_time: Duration::from_millis(50),
            warmup_time: Duration::from_millis(30),
            ..Schedule::default()
        }
    }

    #[test]
    fn each_round_renews_the_workload_only_when_asked() {
        for renew in [false, true] {
            let clock = FakeClock::default();
            let mut jobs = vec![Job::new(FakeWorkload::new(&clock, vec![10.0]))];
            let s = Schedule {
                renew_each_round: renew,
                ..schedule()
            };
            run_interleaved(&mut jobs, &s, &clock, &|| false, |_| {});
            let rounds = jobs[0].rounds_done();
            assert!(rounds >= s.min_rounds);
            assert_eq!(jobs[0].workload.renewed, if renew { rounds } else { 0 });
        }
    }

    #[test]
    fn steady_workload_stops_after_min_rounds() {
        let clock = FakeClock::default();
        let script = std::iter::once(500.0)
            .chain((0..400).map(|i| [10.0, 10.0, 10.2, 9.8][i % 4]))
            .collect();
        let mut jobs = vec![Job::new(FakeWorkload::new(&clock, script))];
        let mut finished = vec![];
        run_interleaved(&mut jobs, &schedule(), &clock, &|| false, |e| {
            if let Event::Finished(i, _) = e {
                finished.push(i)
            }
        });
        assert_eq!(finished, vec![0]);
        let t = jobs[0].outcome().unwrap().as_ref().unwrap();
        assert_eq!(t.cold_ms, 500.0, "the first call is the cold latency");
        assert_eq!(t.round_medians_ms.len(), 3);
        assert!(t.converged);
        assert!((t.summary.median - 10.0).abs() < 0.21);
        // 3 rounds × (1 re-warm + samples) + cold + warm-up: every run accounted for.
        let w = &jobs[0].workload;
        assert_eq!(w.executed, 1 + t.warmup_runs + 3 + t.samples_ms.len());
    }

    #[test]
    fn noisy_workload_takes_more_rounds_and_keeps_outliers() {
        let clock = FakeClock::default();
        let script = vec![100.0, 60.0, 140.0, 90.0, 300.0, 110.0, 70.0, 130.0];
        let mut jobs = vec![Job::new(FakeWorkload::new(&clock, script))];
        run_interleaved(&mut jobs, &schedule(), &clock, &|| false, |_| {});
        let t = jobs[0].outcome().unwrap().as_ref().unwrap();
        assert!(t.round_medians_ms.len() > 3);
        assert!(t.samples_ms.contains(&300.0), "outliers are kept");
    }

    #[test]
    fn time_cap_ends_a_job_that_never_converges() {
        let clock = FakeClock::default();
        let mut s = schedule();
        s.job_time_cap = Duration::from_secs(2);
        s.max_rounds = 100;
        let mut jobs = vec![Job::new(FakeWorkload::new(
            &clock,
            vec![100.0, 50.0, 200.0, 25.0],
        ))];
        run_interleaved(&mut jobs, &s, &clock, &|| false, |_| {});
        let t = jobs[0].outcome().unwrap().as_ref().unwrap();
        assert!(!t.converged);
        assert!(clock.0.get() < Duration::from_secs(4));
    }

    #[test]
    fn rounds_interleave_jobs() {
        let clock = FakeClock::default();
        let mut jobs = vec![
            Job::new(FakeWorkload::new(&clock, vec![10.0])),
            Job::new(FakeWorkload::new(&clock, vec![20.0])),
        ];
        let mut order = vec![];
        run_interleaved(&mut jobs, &schedule(), &clock, &|| false, |e| {
            if let Event::Finished(i, _) = e {
                order.push(i)
            }
        });
        // Both finish in the same (third) round: A before B, not A's rounds first.
        assert_eq!(order, vec![0, 1]);
        for job in &jobs {
            assert_eq!(job.outcome().unwrap().as_ref().unwrap().round_medians_ms.len(), 3);
        }
    }

    #[test]
    fn a_failing_job_is_reported_and_others_go_on() {
        let clock = FakeClock::default();
        let mut failing = FakeWorkload::new(&clock, vec![10.0]);
        failing.fail_at = Some(5);
        let mut jobs = vec![Job::new(failing), Job::new(FakeWorkload::new(&clock, vec![10.0]))];
        run_interleaved(&mut jobs, &schedule(), &clock, &|| false, |_| {});
        assert_eq!(
            jobs[0].outcome().unwrap().as_ref().unwrap_err(),
            "out of memory (fake)"
        );
        assert!(jobs[1].outcome().unwrap().is_ok());
    }

    #[test]
    fn a_resumed_job_pools_its_earlier_rounds_and_stops_by_the_same_rule() {
        let clock = FakeClock::default();
        let steady: Vec<f64> = std::iter::once(500.0)
            .chain((0..400).map(|i| [10.0, 10.0, 10.2, 9.8][i % 4]))
            .collect();
        // First process: stopped after its first round.
        let mut jobs = vec![Job::new(FakeWorkload::new(&clock, steady.clone()))];
        let mut saved = Checkpoint::default();
        let rounds = std::cell::Cell::new(0);
        let all_done = run_interleaved(
            &mut jobs,
            &schedule(),
            &clock,
            &|| rounds.get() >= 1,
            |e| match e {
                Event::Prepared(_, job) | Event::Round(_, job) => {
                    let (state, last) = job.last_step();
                    if job.rounds_done() > saved.rounds.len() {
                        saved.rounds.push(last.to_vec());
                        rounds.set(rounds.get() + 1);
                    }
                    saved = Checkpoint {
                        rounds: std::mem::take(&mut saved.rounds),
                        ..state
                    };
                }
                Event::Finished(..) => panic!("one round cannot finish a job of min_rounds 3"),
            },
        );
        assert!(!all_done, "interrupted");
        assert_eq!(saved.rounds.len(), 1);
        assert_eq!(saved.cold_ms, Some(500.0));
        // Second process: the job continues where it stood.
        let mut again = FakeWorkload::new(&clock, steady[1..].to_vec());
        again.executed = 0;
        let mut jobs = vec![Job::resume(again, &saved, &schedule())];
        assert!(run_interleaved(&mut jobs, &schedule(), &clock, &|| false, |_| {}));
        let t = jobs[0].outcome().unwrap().as_ref().unwrap();
        assert_eq!(t.cold_ms, 500.0, "the cold latency is the first process's");
        assert_eq!(
            t.round_medians_ms.len(),
            3,
            "one saved round and two new: the same rule"
        );
        assert_eq!(&t.samples_ms[..saved.rounds[0].len()], &saved.rounds[0][..]);
        assert!(
            t.warmup_runs > saved.warmup_runs,
            "the new process warmed up again"
        );
    }

    #[test]
    fn a_job_saved_complete_finishes_without_running() {
        let clock = FakeClock::default();
        let saved = Checkpoint {
            cold_ms: Some(50.0),
            warmup_runs: 2,
            rounds: vec![vec![10.0; 40], vec![10.0; 40], vec![10.0; 40]],
            spent: Duration::from_secs(1),
            load: LoadTotals::default(),
        };
        let mut jobs = vec![Job::resume(
            FakeWorkload::new(&clock, vec![10.0]),
            &saved,
            &schedule(),
        )];
        let mut finished = 0;
        run_interleaved(&mut jobs, &schedule(), &clock, &|| false, |e| {
            if let Event::Finished(..) = e {
                finished += 1;
            }
        });
        assert_eq!(finished, 1);
        assert_eq!(jobs[0].workload.executed, 0, "nothing ran again");
        assert_eq!(jobs[0].outcome().unwrap().as_ref().unwrap().samples_ms.len(), 120);
    }
}
