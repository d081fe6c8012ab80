//! A sweep killed at any moment loses at most the step in flight: `bench` is
//! killed with SIGKILL at several points, then with Ctrl-C, and run again
//! until every shape is done. Checked from the files alone: every line reads,
//! no step is taken twice, every saved sample reaches the final measurement
//! exactly once, and every shape completes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use chimera_tests::binary;

/// Three small shapes of a few milliseconds: a round (a quarter of a second)
/// is bound by time, not by its sample cap, so the kill points fall where meant.
const SWEEP: &str = r#"
name = "kill"
description = "kill-and-resume test"

[[shape]]
family = "k"
layers = 2
d_model = 128
heads = 2
vocab = 256
seq = 64

[[shape]]
family = "k"
layers = 1
d_model = 128
heads = 2
vocab = 256
seq = 128

[[shape]]
family = "k"
layers = 3
d_model = 96
heads = 2
vocab = 256
seq = 64
"#;

struct Sweep {
    _dir: tempfile::TempDir,
    sweep: PathBuf,
    out: PathBuf,
}

impl Sweep {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sweep = dir.path().join("kill.toml");
        std::fs::write(&sweep, SWEEP).unwrap();
        let out = dir.path().join("kill.jsonl");
        Sweep {
            _dir: dir,
            sweep,
            out,
        }
    }

    fn journal(&self) -> PathBuf {
        let mut name = self.out.as_os_str().to_owned();
        name.push(".journal");
        PathBuf::from(name)
    }

    /// Starts `bench` on the sweep; its stderr lines arrive on the receiver.
    fn start(&self) -> (Child, Receiver<String>) {
        let mut child = Command::new(binary("bench"))
            .args([
                "--sweep",
                self.sweep.to_str().unwrap(),
                "--out",
                self.out.to_str().unwrap(),
            ])
            .args([
                "--backend",
                "flex",
                "--mode",
                "prefill",
                "--no-progress",
                "--log-steps",
            ])
            // A target no tiny shape reaches: every shape takes its full rounds.
            .args(["--target-ci", "0.1", "--max-time-per-shape", "60"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (child, rx)
    }
}

/// The stderr lines the reader has not handed over yet, once the process has
/// exited: the reader stops at the pipe's end, so this waits for its last
/// lines rather than taking only those already sent (which raced the exit).
fn rest(rx: &Receiver<String>) -> Vec<String> {
    rx.iter().collect()
}

/// Waits for the next stderr line that says a step was saved; `None` when
/// the process ended first.
fn next_saved(rx: &Receiver<String>, seen: &mut Vec<String>) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                seen.push(line.clone());
                if line.starts_with("saved ") {
                    return Some(line);
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
        }
    }
    panic!("no step saved within a minute:\n{}", seen.join("\n"));
}

/// Every line of a JSON Lines file, parsed; panics on one that does not parse.
fn lines(path: &Path) -> Vec<serde_json::Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return vec![];
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: unreadable line {l:?}: {e}", path.display()))
        })
        .collect()
}

/// Journal steps per shape key: (step, samples) in file order.
fn steps_of(lines: impl Iterator<Item = serde_json::Value>) -> BTreeMap<String, Vec<(u64, Vec<f64>)>> {
    let mut by_key: BTreeMap<String, Vec<(u64, Vec<f64>)>> = BTreeMap::new();
    for l in lines {
        let samples = l["samples_ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        by_key
            .entry(l["key"].as_str().unwrap().to_string())
            .or_default()
            .push((l["step"].as_u64().unwrap(), samples));
    }
    by_key
}

/// The journal's steps; every line must read.
fn journal_steps(path: &Path) -> BTreeMap<String, Vec<(u64, Vec<f64>)>> {
    steps_of(lines(path).into_iter())
}

fn assert_no_step_twice(path: &Path) {
    for (key, steps) in journal_steps(path) {
        let numbers: Vec<u64> = steps.iter().map(|s| s.0).collect();
        let expected: Vec<u64> = (0..numbers.len() as u64).collect();
        assert_eq!(
            numbers, expected,
            "{key}: steps must be taken once each, in order"
        );
    }
}

/// Kills at the moments `kill_after` chooses (by the saved lines seen so
/// far), checking after each kill that every step reported saved is on disk.
fn kill_when(sweep: &Sweep, kill_after: impl Fn(&str, usize) -> Option<Duration>) {
    let (mut child, rx) = sweep.start();
    let before = lines(&sweep.journal()).len();
    let mut seen = vec![];
    let mut saved = 0;
    loop {
        let Some(line) = next_saved(&rx, &mut seen) else {
            panic!("the run ended before it was killed:\n{}", seen.join("\n"));
        };
        saved += 1;
        if let Some(wait) = kill_after(&line, saved) {
            std::thread::sleep(wait);
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Lines saved after the one we acted on (during `wait`) are fine too.
    for line in rest(&rx) {
        saved += usize::from(line.starts_with("saved "));
    }
    let after = lines(&sweep.journal()).len();
    // A kill between a line's write and its report leaves one line unreported.
    assert!(
        (saved..=saved + 1).contains(&(after - before)),
        "every step reported saved is in the journal: {saved} reported, {} written",
        after - before
    );
    assert_no_step_twice(&sweep.journal());
}

#[test]
fn a_sweep_killed_anywhere_resumes_and_loses_at_most_the_step_in_flight() {
    let sweep = Sweep::new();
    // During warm-up: the first shape warmed up, the second warming up.
    kill_when(&sweep, |_, saved| (saved == 1).then_some(Duration::ZERO));
    // Mid-round: a tenth of a second into a round.
    kill_when(&sweep, |line, _| {
        line.contains("step=1 ").then_some(Duration::from_millis(100))
    });
    // Between rounds: at once after a round was saved.
    kill_when(&sweep, |line, _| {
        line.contains("step=2 ").then_some(Duration::ZERO)
    });
    // While writing: a line cut off mid-write stays harmless.
    std::fs::OpenOptions::new()
        .append(true)
        .open(sweep.journal())
        .unwrap()
        .write_all(b"{\"schema_version\":1,\"key\":\"x\",\"ru")
        .unwrap();
    let torn = std::fs::read_to_string(sweep.journal()).unwrap();
    let saved_before: BTreeMap<String, Vec<f64>> = journal_steps_lenient(&torn);
    // To the end.
    let (mut child, rx) = sweep.start();
    let status = child.wait().unwrap();
    let log: Vec<String> = rest(&rx);
    assert!(status.success(), "{}", log.join("\n"));
    assert!(
        log.iter().any(|l| l.contains("continued from saved rounds")),
        "{}",
        log.join("\n")
    );
    let measurements = lines(&sweep.out);
    assert_eq!(measurements.len(), 3, "every shape written once");
    let mut resumed_samples = 0;
    for m in &measurements {
        assert_eq!(m["status"], "ok");
        let rounds = m["round_medians_ms"].as_array().unwrap().len();
        assert!((3..=8).contains(&rounds), "{rounds} rounds");
        let samples: Vec<f64> = m["samples_ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let key = format!(
            "{}|prefill|exact|{}/{}/{}/{}/{}/{}/{}/{}",
            m["fingerprint_id"].as_str().unwrap(),
            m["layers"],
            m["d_model"],
            m["heads"],
            m["d_ff"],
            m["seq"],
            m["batch"],
            m["vocab"],
            m["positions"]
        );
        let saved = saved_before.get(&key).cloned().unwrap_or_default();
        resumed_samples += saved.len();
        assert_eq!(
            &samples[..saved.len()],
            &saved[..],
            "{key}: saved samples come first, once"
        );
        assert_eq!(m["samples"].as_u64().unwrap() as usize, samples.len());
    }
    assert!(resumed_samples > 0, "the killed runs had saved rounds");
    assert!(
        !sweep.journal().exists(),
        "the journal goes once every shape is written"
    );
}

/// Journal samples per key, in step order, skipping unreadable lines (the torn one).
fn journal_steps_lenient(text: &str) -> BTreeMap<String, Vec<f64>> {
    let readable = text.lines().filter_map(|l| serde_json::from_str(l).ok());
    steps_of(readable)
        .into_iter()
        .map(|(k, mut steps)| {
            steps.sort_by_key(|s| s.0);
            (k, steps.into_iter().flat_map(|s| s.1).collect())
        })
        .collect()
}

#[test]
fn ctrl_c_finishes_the_step_in_flight_and_exits_with_a_message() {
    let sweep = Sweep::new();
    let (mut child, rx) = sweep.start();
    let mut seen = vec![];
    while !next_saved(&rx, &mut seen).expect("runs").contains("step=1 ") {}
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let interrupted_at = Instant::now();
    let status = child.wait().unwrap();
    let waited = interrupted_at.elapsed();
    seen.extend(rest(&rx));
    let log = seen.join("\n");
    assert_eq!(status.code(), Some(130), "{log}");
    assert!(
        waited < Duration::from_secs(5),
        "it stopped after the step in flight, not the sweep: {waited:?}"
    );
    assert!(
        log.contains("interrupted: finishing the round in flight"),
        "{log}"
    );
    assert!(log.contains("run the same command again to continue"), "{log}");
    let after_interrupt = seen
        .iter()
        .skip_while(|l| !l.contains("interrupted: finishing"))
        .filter(|l| l.starts_with("saved "))
        .count();
    assert!(
        after_interrupt <= 1,
        "only the step in flight is saved after Ctrl-C:\n{log}"
    );
    assert_no_step_twice(&sweep.journal());
    // And it continues to the end.
    let (mut child, rx) = sweep.start();
    assert!(child.wait().unwrap().success(), "{}", rest(&rx).join("\n"));
    assert_eq!(lines(&sweep.out).len(), 3);
}
