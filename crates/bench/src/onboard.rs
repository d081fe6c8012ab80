//! Onboarding a machine within a time budget: choose the next shape by
//! information per second (`fit::design`), measure it, learn how long
//! measuring takes, repeat until the budget is spent.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use fit::design::{Candidate, Criterion, Guess, candidate_pool, choose_next, design_rows};
use planner::Shape;

use crate::fingerprint::Fingerprint;
use crate::harness::rounds::Schedule;
use crate::model::Gelu;
use crate::record::{self, Measurement, Status};
use crate::runner::{self, RunOptions};
use crate::sweep::{Sweep, SweepEntry};

/// The sampling schedule for onboarding: fewer, shorter rounds than a full
/// sweep, because many shapes measured a little teach the fit more than a few
/// shapes measured very precisely.
pub fn schedule(budget: Duration) -> Schedule {
    Schedule {
        target_rel_ci: 0.03,
        min_rounds: 3,
        max_rounds: 5,
        round_time: Duration::from_millis(150),
        warmup_time: Duration::from_millis(100),
        job_time_cap: (budget / 10).clamp(Duration::from_secs(3), Duration::from_secs(20)),
        ..Schedule::default()
    }
}

/// Seconds one measurement should take under `schedule`, before calibration:
/// building the weights, the cold call, warm-up, and `min_rounds` rounds.
fn raw_cost_s(shape: &Shape, latency_ms: f64, s: &Schedule) -> f64 {
    let t = latency_ms / 1e3;
    let build = 0.05 + 2e-8 * shape.accounting().params.total as f64;
    let warmup = (s.warmup_runs as f64 * t).max(s.warmup_time.as_secs_f64());
    let round = (s.min_samples_per_round as f64 * t).max(s.round_time.as_secs_f64());
    let rounds = s.min_rounds as f64 * round;
    (build + t + warmup + rounds).min(s.job_time_cap.as_secs_f64() + build + t)
}

/// `count` decode shapes of the built-in decode sweeps (GPT-2- and Llama-style) that cover them: the
/// cheapest, then the most typical shape of each batch size above one
/// (`fit::operators::medoid` of that stratum), then again and again the one
/// farthest from those chosen (`fit::operators::cover`). They anchor the
/// operator model's decode calibration and give the term model its points.
///
/// Why the strata: a farthest-point cover takes corners only — its 14 anchors
/// held batch 4 only at d = 256 and batch 2 nowhere — and a 5-minute
/// onboarding of an Intel Xeon VM (`data/onboarding/xeon-2/`) then predicted
/// every batch 2–4 line at d ≥ 576 2.4–4.8× too fast.
pub fn decode_anchors(count: usize) -> anyhow::Result<Sweep> {
    let sweep = Sweep::built_in(planner::Phase::Decode)?;
    let shapes: Vec<Shape> = sweep.entries.iter().map(|e| e.shape).collect();
    let cheapest = (0..shapes.len()).min_by_key(|&i| planner::Phase::Decode.flops(&shapes[i]));
    let mut batches: Vec<u64> = shapes.iter().map(|s| s.batch()).filter(|&b| b > 1).collect();
    batches.sort_unstable();
    batches.dedup();
    let typical = batches.iter().filter_map(|&b| {
        let stratum: Vec<usize> = (0..shapes.len()).filter(|&i| shapes[i].batch() == b).collect();
        fit::operators::medoid(&shapes, &stratum)
    });
    let seeds: Vec<usize> = cheapest.into_iter().chain(typical).collect();
    let picked = fit::operators::cover(&shapes, &seeds, count);
    Ok(Sweep {
        name: "onboard-decode".into(),
        entries: picked.into_iter().map(|i| sweep.entries[i].clone()).collect(),
    })
}

/// `count` prefill shapes of the onboarding pool, measured at the start of
/// onboarding and again at its end: how much the two runs differ is the
/// machine's run-to-run variability (the fit's noise floor, which widens
/// prediction intervals). Taken from the second quarter of the pool by FLOPs
/// (neither the sub-millisecond toys, whose rounds disagree by tens of
/// percent, nor the costly shapes), spread by `fit::operators::cover` from
/// its middle shape, so the repeats cost seconds and look like what users ask.
pub fn repeat_shapes(count: usize) -> Sweep {
    let mut pool = candidate_pool();
    pool.sort_by_key(|c| c.shape.accounting().flops.total);
    let quarter: Vec<Candidate> = pool[pool.len() / 4..pool.len() / 2].to_vec();
    let shapes: Vec<Shape> = quarter.iter().map(|c| c.shape).collect();
    let picked = fit::operators::cover(&shapes, &[shapes.len() / 2], count.min(shapes.len()));
    Sweep {
        name: "onboard-repeat".into(),
        entries: picked
            .into_iter()
            .map(|i| SweepEntry {
                family: quarter[i].family.tag().to_string(),
                shape: quarter[i].shape,
            })
            .collect(),
    }
}

/// Largest estimated peak of a shape whose memory onboarding probes (the
/// probe builds the model: larger ones cost seconds each).
const MEMORY_PROBE_MAX_BYTES: u64 = 512 << 20;

/// `count` shapes of `sweep` (in `phase`) whose memory onboarding probes:
/// estimated peaks from [`fit::memory::SMALL_PEAK_BYTES`] (below it a
/// backend's fixed few MiB dominate, so they calibrate nothing) to 512 MiB,
/// spread by `fit::operators::cover` from the cheapest.
pub fn memory_shapes(sweep: &Sweep, phase: planner::Phase, count: usize, name: &str) -> Sweep {
    let eligible: Vec<&SweepEntry> = sweep
        .entries
        .iter()
        .filter(|e| {
            let peak = planner::memory::estimate(&e.shape, phase).total_bytes;
            (fit::memory::SMALL_PEAK_BYTES..=MEMORY_PROBE_MAX_BYTES).contains(&peak)
        })
        .collect();
    let shapes: Vec<Shape> = eligible.iter().map(|e| e.shape).collect();
    let cheapest = (0..shapes.len()).min_by_key(|&i| phase.flops(&shapes[i]));
    let picked = fit::operators::cover(&shapes, &cheapest.into_iter().collect::<Vec<_>>(), count);
    Sweep {
        name: name.into(),
        entries: picked.into_iter().map(|i| eligible[i].clone()).collect(),
    }
}

/// The onboarding pool as a sweep (for [`memory_shapes`]).
pub fn pool_sweep() -> Sweep {
    Sweep {
        name: "onboard-pool".into(),
        entries: candidate_pool()
            .into_iter()
            .map(|c| SweepEntry {
                family: c.family.tag().to_string(),
                shape: c.shape,
            })
            .collect(),
    }
}

/// The entries of `sweep` whose newest measurement among `measured` the fit
/// would leave out as disturbed (hypervisor steal or other load above the
/// runner's warning thresholds), under another name.
pub fn disturbed<'a>(sweep: &Sweep, measured: impl Iterator<Item = &'a Measurement>, name: &str) -> Sweep {
    let mut newest: std::collections::HashMap<String, &Measurement> = Default::default();
    for m in measured {
        let Ok(shape) = m.shape() else { continue };
        let key = record::shape_key(&shape);
        if newest
            .get(&key)
            .is_none_or(|old| old.timestamp_utc <= m.timestamp_utc)
        {
            newest.insert(key, m);
        }
    }
    let is_disturbed = |e: &SweepEntry| {
        newest
            .get(&record::shape_key(&e.shape))
            .and_then(|m| m.timing.as_ref())
            .is_some_and(|t| t.load.disturbed())
    };
    Sweep {
        name: name.into(),
        entries: sweep
            .entries
            .iter()
            .filter(|e| is_disturbed(e))
            .cloned()
            .collect(),
    }
}

/// The first `count` entries of a sweep, under another name.
pub fn first_entries(sweep: &Sweep, count: usize, name: &str) -> Sweep {
    Sweep {
        name: name.into(),
        entries: sweep.entries.iter().take(count).cloned().collect(),
    }
}

/// What an onboarding run did on one backend.
pub struct OnboardReport {
    /// Every measurement of this backend and machine in the file (earlier runs included).
    pub measurements: Vec<Measurement>,
    /// Shapes measured by this run.
    pub measured_now: usize,
    /// Seconds spent measuring in this run.
    pub spent_s: f64,
}

/// Measures shapes on `backend`, appending to `out`, until `budget` is spent.
/// Shapes already in `out` for this machine count as measured and cost nothing.
pub fn onboard(
    backend: &str,
    gelu: Gelu,
    budget: Duration,
    criterion: Criterion,
    out: &Path,
    mut on_measured: impl FnMut(&Measurement, f64),
) -> anyhow::Result<OnboardReport> {
    let schedule = schedule(budget);
    let fp_id = Fingerprint::current(backend).id();
    let mine = |m: &Measurement| {
        m.fingerprint_id == fp_id
            && m.backend == backend
            && m.kind == planner::Phase::Prefill
            && m.gelu == gelu
    };
    let existing: Vec<Measurement> = record::read(out)
        .with_context(|| format!("reading {}", out.display()))?
        .measurements
        .into_iter()
        .filter(|m| mine(m))
        .collect();

    let pool: Vec<Candidate> = candidate_pool();
    let done_keys: HashSet<String> = existing
        .iter()
        .filter_map(|m| m.shape().ok())
        .map(|s| record::shape_key(&s))
        .collect();
    let mut chosen: Vec<bool> = pool
        .iter()
        .map(|c| done_keys.contains(&record::shape_key(&c.shape)))
        .collect();
    let mut measured: Vec<(Shape, f64)> = existing
        .iter()
        .filter(|m| m.status == Status::Ok)
        .filter_map(|m| Some((m.shape().ok()?, m.timing.as_ref()?.median_ms)))
        .collect();
    let mut all = existing;
    // Measured seconds / raw estimate, per shape: the estimate's calibration.
    let mut cost_ratios: Vec<f64> = vec![];
    let started = Instant::now();
    let mut measured_now = 0;

    loop {
        let remaining = budget.as_secs_f64() - started.elapsed().as_secs_f64();
        if remaining <= 0.0 {
            break;
        }
        let guess = Guess::from_measured(&measured);
        let calibration = if cost_ratios.is_empty() {
            1.0
        } else {
            let mut r = cost_ratios.clone();
            r.sort_by(f64::total_cmp);
            fit::stats::median_sorted(&r)
        };
        let shapes: Vec<&Shape> = pool.iter().map(|c| &c.shape).collect();
        let rows = design_rows(&shapes, &guess);
        let costs: Vec<f64> = pool
            .iter()
            .map(|c| calibration * raw_cost_s(&c.shape, guess.latency_ms(&c.shape), &schedule))
            .collect();
        let Some(next) = choose_next(criterion, &rows, &costs, &chosen, remaining) else {
            break;
        };
        chosen[next] = true;
        let candidate = pool[next].clone();
        let t0 = Instant::now();
        let report = runner::run(
            &Sweep {
                name: "onboard".into(),
                entries: vec![SweepEntry {
                    family: candidate.family.tag().to_string(),
                    shape: candidate.shape,
                }],
            },
            &RunOptions {
                backend,
                gelu,
                phase: planner::Phase::Prefill,
                schedule: schedule.clone(),
                out,
                fresh: false,
                progress: false,
                stop: &runner::never_stop,
                on_saved: &runner::ignore_saved,
            },
        )?;
        let spent = t0.elapsed().as_secs_f64();
        cost_ratios.push(spent / raw_cost_s(&candidate.shape, guess.latency_ms(&candidate.shape), &schedule));
        for m in report.written {
            if let (Status::Ok, Some(t)) = (m.status, m.timing.as_ref()) {
                measured.push((candidate.shape, t.median_ms));
            }
            on_measured(&m, spent);
            measured_now += 1;
            all.push(m);
        }
    }
    Ok(OnboardReport {
        measurements: all,
        measured_now,
        spent_s: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_grows_with_latency_and_is_capped() {
        let s = planner::ShapeSpec::new(2, 128).validate().unwrap();
        let sched = schedule(Duration::from_secs(300));
        let small = raw_cost_s(&s, 0.1, &sched);
        let big = raw_cost_s(&s, 500.0, &sched);
        assert!(small > 0.5 && small < 1.5, "{small}");
        assert!(big > small);
        assert!(big <= sched.job_time_cap.as_secs_f64() + 1.0);
    }

    #[test]
    fn decode_anchors_are_distinct_shapes_of_the_decode_sweep() {
        let anchors = decode_anchors(10).unwrap();
        assert_eq!(anchors.entries.len(), 10);
        let keys: HashSet<String> = anchors.entries.iter().map(|e| e.shape.key()).collect();
        assert_eq!(keys.len(), 10);
        let batches: HashSet<u64> = anchors.entries.iter().map(|e| e.shape.batch()).collect();
        assert!(batches.len() > 1, "the anchors span batch sizes: {batches:?}");
    }

    #[test]
    fn decode_anchors_hold_every_batch_size_of_the_sweep_at_a_mid_size_width() {
        let sweep = Sweep::built_in(planner::Phase::Decode).unwrap();
        let widths: Vec<u64> = sweep.entries.iter().map(|e| e.shape.d_model()).collect();
        let (narrowest, widest) = (*widths.iter().min().unwrap(), *widths.iter().max().unwrap());
        let anchors = decode_anchors(5).unwrap();
        let sweep_batches: HashSet<u64> = sweep.entries.iter().map(|e| e.shape.batch()).collect();
        for b in sweep_batches.into_iter().filter(|&b| b > 1) {
            assert!(
                anchors.entries.iter().any(|e| e.shape.batch() == b
                    && e.shape.d_model() > narrowest
                    && e.shape.d_model() < widest),
                "no mid-size anchor at batch {b}: {:?}",
                anchors.entries.iter().map(|e| e.shape.key()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn repeat_shapes_are_distinct_and_from_the_second_quarter() {
        let repeats = repeat_shapes(3);
        assert_eq!(repeats.entries.len(), 3);
        let keys: HashSet<String> = repeats.entries.iter().map(|e| e.shape.key()).collect();
        assert_eq!(keys.len(), 3);
        let mut flops: Vec<u64> = candidate_pool()
            .iter()
            .map(|c| c.shape.accounting().flops.total)
            .collect();
        flops.sort_unstable();
        let (q1, median) = (flops[flops.len() / 4], flops[flops.len() / 2]);
        let inside = |e: &SweepEntry| (q1..=median).contains(&e.shape.accounting().flops.total);
        assert!(repeats.entries.iter().all(inside));
    }

    #[test]
    fn memory_shapes_have_peaks_that_calibrate() {
        let anchors = decode_anchors(10).unwrap();
        for (sweep, phase) in [
            (pool_sweep(), planner::Phase::Prefill),
            (anchors, planner::Phase::Decode),
        ] {
            let picked = memory_shapes(&sweep, phase, 3, "memory");
            assert_eq!(picked.entries.len(), 3, "{phase}");
            for e in &picked.entries {
                let peak = planner::memory::estimate(&e.shape, phase).total_bytes;
                assert!(
                    (fit::memory::SMALL_PEAK_BYTES..=MEMORY_PROBE_MAX_BYTES).contains(&peak),
                    "{peak}"
                );
            }
        }
    }

    #[test]
    fn short_budgets_cap_each_shape_shorter() {
        assert_eq!(
            schedule(Duration::from_secs(60)).job_time_cap,
            Duration::from_secs(6)
        );
        assert_eq!(
            schedule(Duration::from_secs(3600)).job_time_cap,
            Duration::from_secs(20)
        );
    }
}
