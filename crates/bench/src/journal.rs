//! The round journal: every step of every shape in flight, saved as it is
//! taken, so a sweep killed at any moment loses at most the step in flight.
//!
//! With interleaved rounds a shape completes only in the last rounds of a
//! sweep; until then its samples live in the journal beside the measurement
//! file, `<file>.journal` (JSON Lines, schema version 1, appended and synced
//! after every step):
//!
//! ```text
//! {"schema_version":1, "key":"<fingerprint id>|prefill|exact|L/d/h/d_ff/n/b/V/P",
//!  "run_id":"…", "step":2, "cold_ms":412.5, "warmup_runs":3,
//!  "samples_ms":[…], "spent_ms":5210.0,
//!  "load":{"other_busy":3,"steal":0,"all":1042,"cores":2,
//!          "own_cpu_ns":20851234,"own_wall_ns":10480112}}
//! ```
//!
//! `key` is the measurement's resume key (same fingerprint, phase, GELU and
//! shape). `step` 0 is the cold call and warm-up (no samples); step k ≥ 1
//! holds the samples of round k. `cold_ms`, `warmup_runs`, `spent_ms` and
//! `load` are cumulative up to that step. Reading keeps, per key, the first
//! line of each step and only an unbroken run of well-formed steps from 0
//! (samples finite and positive; none in step 0, some in every round), so a sample is
//! never counted twice and a torn last line (a write cut off by SIGKILL) is
//! skipped like any unreadable line. A rerun continues each unfinished shape
//! from its saved steps; a finished shape is written once to the measurement
//! file as before, and the journal is removed once every shape in it is.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::harness::load::LoadTotals;
use crate::harness::rounds::Checkpoint;

/// Version of the journal line format.
pub const JOURNAL_SCHEMA_VERSION: u32 = 1;

/// One saved step of one shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalLine {
    /// [`JOURNAL_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The measurement's resume key.
    pub key: String,
    /// The invocation that took the step.
    pub run_id: String,
    /// 0: cold call and warm-up; k ≥ 1: round k.
    pub step: usize,
    /// The job's first call, ms.
    pub cold_ms: Option<f64>,
    /// Untimed runs so far.
    pub warmup_runs: usize,
    /// The samples of this round (empty for step 0), ms.
    pub samples_ms: Vec<f64>,
    /// Time the job has used so far, ms.
    pub spent_ms: f64,
    /// Other load counted so far.
    pub load: LoadTotals,
}

impl JournalLine {
    /// The line for a job's latest step.
    pub fn of(key: &str, run_id: &str, step: usize, state: &Checkpoint, samples: &[f64]) -> Self {
        JournalLine {
            schema_version: JOURNAL_SCHEMA_VERSION,
            key: key.to_string(),
            run_id: run_id.to_string(),
            step,
            cold_ms: state.cold_ms,
            warmup_runs: state.warmup_runs,
            samples_ms: samples.to_vec(),
            spent_ms: state.spent.as_secs_f64() * 1e3,
            load: state.load,
        }
    }
}

/// The journal beside a measurement file.
pub fn path_for(measurements: &Path) -> PathBuf {
    let mut name = measurements.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

/// Appends one line and syncs it to disk.
pub fn append(path: &Path, line: &JournalLine) -> std::io::Result<()> {
    crate::record::append_line(path, &serde_json::to_string(line).map_err(std::io::Error::other)?)
}

/// What reading a journal found.
#[derive(Debug, Default)]
pub struct Journal {
    /// Per key, where the job stood after its last unbroken step.
    pub checkpoints: BTreeMap<String, Checkpoint>,
    /// `(line number, reason)` of lines skipped.
    pub skipped: Vec<(usize, String)>,
}

/// Reads a journal; a missing file is an empty one.
pub fn read(path: &Path) -> std::io::Result<Journal> {
    let mut journal = Journal::default();
    if !path.exists() {
        return Ok(journal);
    }
    let mut steps: BTreeMap<String, BTreeMap<usize, JournalLine>> = BTreeMap::new();
    for (i, line) in BufReader::new(std::fs::File::open(path)?).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<JournalLine>(&line) {
            Ok(l) if l.schema_version == JOURNAL_SCHEMA_VERSION => {
                // The first line of a step wins: a step is never counted twice.
                steps.entry(l.key.clone()).or_default().entry(l.step).or_insert(l);
            }
            Ok(l) => journal
                .skipped
                .push((i + 1, format!("schema version {}", l.schema_version))),
            Err(e) => journal.skipped.push((i + 1, e.to_string())),
        }
    }
    for (key, by_step) in steps {
        let mut checkpoint = Checkpoint::default();
        for (expected, (step, line)) in by_step.iter().enumerate() {
            let usable = line.samples_ms.iter().all(|x| x.is_finite() && *x > 0.0)
                && (*step == 0) == line.samples_ms.is_empty();
            if *step != expected || !usable {
                break; // a gap or a broken step: what follows cannot be trusted to continue this job
            }
            if *step > 0 {
                checkpoint.rounds.push(line.samples_ms.clone());
            }
            checkpoint.cold_ms = line.cold_ms;
            checkpoint.warmup_runs = line.warmup_runs;
            checkpoint.spent = Duration::from_secs_f64(line.spent_ms.max(0.0) / 1e3);
            checkpoint.load = line.load;
        }
        if by_step.contains_key(&0) {
            journal.checkpoints.insert(key, checkpoint);
        }
    }
    Ok(journal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(key: &str, step: usize, samples: &[f64]) -> JournalLine {
        JournalLine::of(
            key,
            "run",
            step,
            &Checkpoint {
                cold_ms: Some(100.0),
                warmup_runs: 2 + step,
                rounds: vec![],
                spent: Duration::from_millis(250 * step as u64),
                load: LoadTotals::default(),
            },
            samples,
        )
    }

    #[test]
    fn steps_pool_into_one_checkpoint_once_each_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("m.jsonl"));
        assert!(path.ends_with("m.jsonl.journal"));
        for l in [
            line("a", 0, &[]),
            line("a", 1, &[1.0, 2.0]),
            line("b", 0, &[]),
            line("a", 2, &[3.0]),
            line("a", 2, &[9.0]), // a step written twice counts once
            line("b", 2, &[7.0]), // after a gap (no step 1): ignored
            line("d", 0, &[]),
            line("d", 1, &[]), // a round without samples: broken, ignored
            line("d", 2, &[5.0]),
        ] {
            append(&path, &l).unwrap();
        }
        // A write cut off mid-line, then a later run appends after it.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"schema_version\":1,\"key\":\"a\",\"ru")
            .unwrap();
        append(&path, &line("c", 0, &[])).unwrap();
        let j = read(&path).unwrap();
        assert_eq!(j.skipped.len(), 1, "{:?}", j.skipped);
        let a = &j.checkpoints["a"];
        assert_eq!(a.rounds, vec![vec![1.0, 2.0], vec![3.0]]);
        assert_eq!((a.cold_ms, a.warmup_runs), (Some(100.0), 4));
        assert_eq!(a.spent, Duration::from_millis(500));
        assert!(j.checkpoints["b"].rounds.is_empty());
        assert!(j.checkpoints.contains_key("c"));
        assert!(j.checkpoints["d"].rounds.is_empty());
        assert!(read(&dir.path().join("none")).unwrap().checkpoints.is_empty());
    }

    #[test]
    fn the_line_format_is_locked() {
        let text = serde_json::to_string(&line("k", 1, &[1.5])).unwrap();
        assert_eq!(
            text,
            r#"{"schema_version":1,"key":"k","run_id":"run","step":1,"cold_ms":100.0,"warmup_runs":3,"samples_ms":[1.5],"spent_ms":250.0,"load":{"other_busy":0,"steal":0,"all":0,"cores":0,"own_cpu_ns":0,"own_wall_ns":0}}"#
        );
        // A line written before the own-CPU counters reads with them at 0.
        let old = r#"{"schema_version":1,"key":"k","run_id":"run","step":1,"cold_ms":100.0,"warmup_runs":3,"samples_ms":[1.5],"spent_ms":250.0,"load":{"other_busy":0,"steal":0,"all":0,"cores":0}}"#;
        assert_eq!(
            serde_json::from_str::<JournalLine>(old).unwrap(),
            line("k", 1, &[1.5])
        );
    }
}
