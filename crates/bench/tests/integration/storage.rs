//! Storage and resume: nothing measured is lost, a torn line breaks nothing,
//! and a re-run skips what the file already holds.

use std::io::Write;
use std::time::Duration;

use bench::harness::rounds::Schedule;
use bench::model::Gelu;
use bench::record::{self, Status};
use bench::runner::{RunOptions, run};
use bench::sweep::{QUICK_SWEEP, Sweep};

fn fast_schedule() -> Schedule {
    Schedule {
        min_rounds: 2,
        max_rounds: 2,
        round_time: Duration::from_millis(20),
        warmup_time: Duration::from_millis(10),
        ..Schedule::default()
    }
}

fn flex_options(out: &std::path::Path) -> RunOptions<'_> {
    RunOptions {
        backend: "flex",
        gelu: Gelu::Exact,
        phase: planner::Phase::Prefill,
        schedule: fast_schedule(),
        out,
        fresh: false,
        progress: false,
        stop: &bench::runner::never_stop,
        on_saved: &bench::runner::ignore_saved,
    }
}

#[test]
fn a_renewed_run_neither_skips_nor_continues_a_kept_models_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.jsonl");
    let sweep = Sweep::parse(QUICK_SWEEP).unwrap();
    let kept = flex_options(&out);
    let renewed = RunOptions {
        schedule: Schedule {
            renew_each_round: true,
            ..fast_schedule()
        },
        ..flex_options(&out)
    };
    // Stopped after its first saved step, a run leaves its steps in the journal.
    let saved = std::cell::Cell::new(0);
    let interrupted = run(
        &sweep,
        &RunOptions {
            stop: &|| saved.get() > 0,
            on_saved: &|_| saved.set(saved.get() + 1),
            ..flex_options(&out)
        },
    )
    .unwrap();
    assert!(interrupted.interrupted && saved.get() > 0);
    // Another way of timing is another measurement: nothing continued or skipped.
    let other = run(&sweep, &renewed).unwrap();
    assert_eq!((other.resumed, other.skipped), (0, 0));
    assert_eq!(other.written.len(), sweep.entries.len());
    assert!(
        other
            .written
            .iter()
            .all(|m| m.timing.as_ref().is_some_and(|t| t.renewed_each_round))
    );
    // The kept way continues its own journal, then each way finds its own lines.
    let continued = run(&sweep, &kept).unwrap();
    assert!(
        continued.resumed > 0 && continued.skipped == 0,
        "{:?}",
        (continued.resumed, continued.skipped)
    );
    assert_eq!(run(&sweep, &renewed).unwrap().skipped, sweep.entries.len());
    assert_eq!(run(&sweep, &kept).unwrap().skipped, sweep.entries.len());
    let read = record::read(&out).unwrap();
    assert_eq!(
        read.measurements.len(),
        2 * sweep.entries.len(),
        "nothing measured is lost"
    );
}

#[test]
fn sweep_writes_resumes_and_survives_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.jsonl");
    let sweep = Sweep::parse(QUICK_SWEEP).unwrap();
    let opts = flex_options(&out);

    let first = run(&sweep, &opts).unwrap();
    assert_eq!(first.written.len(), sweep.entries.len());
    assert!(first.written.iter().all(|m| m.status == Status::Ok));

    // A writer killed mid-line leaves a fragment without a newline.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&out)
        .unwrap()
        .write_all(b"{\"schema_version\":1,\"kin")
        .unwrap();

    let second = run(&sweep, &opts).unwrap();
    assert_eq!(second.written.len(), 0, "everything was already measured");
    assert_eq!(second.skipped, sweep.entries.len());

    // A new shape after the torn line is appended intact on its own line.
    let extra = Sweep::single(
        planner::ShapeSpec {
            vocab: Some(256),
            seq: Some(8),
            ..planner::ShapeSpec::new(1, 16)
        }
        .validate()
        .unwrap(),
    );
    run(&extra, &opts).unwrap();
    let read = record::read(&out).unwrap();
    assert_eq!(read.measurements.len(), sweep.entries.len() + 1);
    assert_eq!(read.skipped.len(), 1, "only the torn fragment is skipped");

    // The schema: required fields of an ad-hoc measurement.
    let text = std::fs::read_to_string(&out).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    for key in [
        "backend",
        "layers",
        "d_model",
        "heads",
        "seq",
        "batch",
        "vocab",
        "params_total",
        "median_ms",
        "ci95_ms",
        "cold_ms",
        "samples",
        "samples_ms",
        "fingerprint",
        "fingerprint_id",
        "family",
    ] {
        assert!(!last[key].is_null(), "missing {key}");
    }
}

#[test]
fn a_shape_that_cannot_fit_in_memory_is_recorded_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.jsonl");
    // ~1 TB of weights: refused before allocation, recorded with its reason.
    let huge = planner::ShapeSpec {
        vocab: Some(256),
        seq: Some(8),
        ..planner::ShapeSpec::new(1000, 8192)
    }
    .validate()
    .unwrap();
    let sweep = Sweep::single(huge);
    let opts = flex_options(&out);
    let report = run(&sweep, &opts).unwrap();
    assert_eq!(report.written.len(), 1);
    assert_eq!(report.written[0].status, Status::Failed);
    assert!(
        report.written[0].error.as_deref().unwrap().contains("GiB"),
        "{:?}",
        report.written[0].error
    );
}
