//! Other load on the machine during a measurement, read from `/proc`.
//!
//! The CPU time of every other process (utime+stime from `/proc/<pid>/stat`)
//! divided by wall time gives the number of cores others kept busy; the steal
//! column of `/proc/stat` gives time the hypervisor took away. The CPU time
//! of this process's own threads (its CPU clock, in ns) divided by wall time
//! gives the cores the measured kernel kept busy: about one for a kernel that
//! runs on one thread, more for one split across threads (or for a pool that
//! spins between operations).
//! Where `/proc` is missing (not Linux) the readings are `None`.

use serde::{Deserialize, Serialize};

/// Averages over the time a measurement ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReading {
    /// Cores kept busy by other processes on average.
    pub other_cores: Option<f64>,
    /// Percentage of CPU time stolen by the hypervisor.
    pub steal_pct: Option<f64>,
    /// Cores this process kept busy on average (CPU time of all its threads /
    /// wall time): which kernels a backend splits across threads. Absent in
    /// measurements taken before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_cores: Option<f64>,
}

/// Above this many busy cores of others, a measurement is flagged.
pub const OTHER_LOAD_WARNING_CORES: f64 = 0.25;

/// Above this share of CPU time taken by the hypervisor, a measurement is flagged.
pub const STEAL_WARNING_PCT: f64 = 2.0;

impl LoadReading {
    /// What disturbed the measurement, if the machine was not its own while
    /// it ran (empty if it was): the readings behind the runner's load
    /// warnings. Such a timing describes the neighbours as much as the shape,
    /// so fitting leaves it out.
    pub fn disturbances(&self) -> Vec<String> {
        let mut why = vec![];
        if let (true, Some(other)) = (self.busy(), self.other_cores) {
            why.push(format!(
                "other processes kept {other:.2} cores busy while measuring"
            ));
        }
        if let (true, Some(steal)) = (self.stolen(), self.steal_pct) {
            why.push(format!("the hypervisor stole {steal:.1}% of CPU time"));
        }
        why
    }

    /// Other processes kept more than [`OTHER_LOAD_WARNING_CORES`] busy.
    pub fn busy(&self) -> bool {
        self.other_cores.is_some_and(|c| c > OTHER_LOAD_WARNING_CORES)
    }

    /// The hypervisor took more than [`STEAL_WARNING_PCT`] of CPU time.
    pub fn stolen(&self) -> bool {
        self.steal_pct.is_some_and(|s| s > STEAL_WARNING_PCT)
    }

    /// Stolen or busy: the fit leaves such a measurement out.
    pub fn disturbed(&self) -> bool {
        self.stolen() || self.busy()
    }
}

#[derive(Debug, Clone, Default)]
struct Snapshot {
    /// utime+stime of every other process, by pid.
    others: std::collections::HashMap<u32, u64>,
    steal: u64,
    all: u64,
    cores: u64,
}

/// utime + stime (jiffies) from a `/proc/<pid>/stat` line.
fn cpu_jiffies(stat: &str) -> Option<u64> {
    // Fields after the command name (which may hold spaces) start at ") ".
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn snapshot() -> Option<Snapshot> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice
    if cpu.len() < 8 {
        return None;
    }
    let cores = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count() as u64;
    // Per-process accounting, not the system-wide busy time minus ours: the two
    // are sampled differently and disagree by up to a core over short rounds.
    let me = std::process::id();
    let others = std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            Some((pid, cpu_jiffies(&text)?))
        })
        .collect();
    Some(Snapshot {
        others,
        steal: cpu[7],
        all: cpu[..8].iter().sum(),
        cores,
    })
}
/// What a [`LoadMeter`] has counted so far (jiffies): saved with a job's
/// checkpoint, so a resumed job's reading covers its earlier rounds too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadTotals {
    /// CPU time of other processes.
    pub other_busy: u64,
    /// Time the hypervisor stole.
    pub steal: u64,
    /// CPU time of all cores.
    pub all: u64,
    /// Cores.
    pub cores: u64,
    /// CPU time of this process's threads, ns.
    #[serde(default)]
    pub own_cpu_ns: u64,
    /// Wall time of the intervals `own_cpu_ns` was counted over, ns.
    #[serde(default)]
    pub own_wall_ns: u64,
}

/// Accumulates readings over several intervals (one per round).
#[derive(Debug, Default)]
pub struct LoadMeter {
    start: Option<Snapshot>,
    own_start: Option<(u64, std::time::Instant)>,
    totals: LoadTotals,
}

/// CPU time of every thread of this process so far, ns (`None` off Linux).
/// The process CPU clock counts the running threads' current slices too;
/// `/proc/self/task/*/schedstat` lags by up to a scheduler tick and read 0
/// over whole 20 ms rounds of a busy thread.
#[cfg(target_os = "linux")]
fn own_cpu_ns() -> Option<u64> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Some(u64::try_from(t.tv_sec).ok()? * 1_000_000_000 + u64::try_from(t.tv_nsec).ok()?)
}

#[cfg(not(target_os = "linux"))]
fn own_cpu_ns() -> Option<u64> {
    None
}

impl LoadMeter {
    /// Starts an interval.
    pub fn begin(&mut self) {
        self.start = snapshot();
        self.own_start = own_cpu_ns().map(|ns| (ns, std::time::Instant::now()));
    }

    /// Ends the interval started by [`LoadMeter::begin`].
    pub fn end(&mut self) {
        if let (Some((before, since)), Some(after)) = (self.own_start.take(), own_cpu_ns()) {
            self.totals.own_cpu_ns += after.saturating_sub(before);
            self.totals.own_wall_ns += since.elapsed().as_nanos() as u64;
        }
        if let (Some(a), Some(b)) = (self.start.take(), snapshot()) {
            // Processes born during the interval count from zero.
            let busy: u64 = b
                .others
                .iter()
                .map(|(pid, &t)| t.saturating_sub(a.others.get(pid).copied().unwrap_or(0)))
                .sum();
            let t = &mut self.totals;
            t.other_busy += busy;
            t.steal += b.steal.saturating_sub(a.steal);
            t.all += b.all.saturating_sub(a.all);
            t.cores = b.cores.max(1);
        }
    }

    /// What it has counted so far.
    pub fn totals(&self) -> LoadTotals {
        self.totals
    }

    /// A meter that continues from earlier totals.
    pub fn resumed(totals: LoadTotals) -> Self {
        Self {
            start: None,
            own_start: None,
            totals,
        }
    }

    /// The averages so far.
    pub fn reading(&self) -> LoadReading {
        let t = &self.totals;
        let own_cores = (t.own_wall_ns > 0).then(|| t.own_cpu_ns as f64 / t.own_wall_ns as f64);
        if t.all == 0 {
            return LoadReading {
                own_cores,
                ..LoadReading::default()
            };
        }
        // `all` counts jiffies of every core: wall jiffies = all / cores.
        let wall = t.all as f64 / t.cores as f64;
        LoadReading {
            other_cores: Some(t.other_busy as f64 / wall),
            steal_pct: Some(100.0 * t.steal as f64 / t.all as f64),
            own_cores,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_work_is_not_other_load_but_another_process_is() {
        // One test, not two: tests run concurrently and would see each other.
        let mut meter = LoadMeter::default();
        meter.begin();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 300 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        meter.end();
        let r = meter.reading();
        if let Some(other) = r.other_cores {
            // Our own spinning must not show up as someone else's load.
            assert!(other < 0.9, "other load {other}");
        }
        if let Some(own) = r.own_cores {
            // One thread spun the whole interval (other tests' threads may add some).
            assert!(own > 0.8, "own cores {own}");
        }
        // Now a spinning child process must show.

        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        let mut meter = LoadMeter::default();
        meter.begin();
        std::thread::sleep(std::time::Duration::from_millis(600));
        meter.end();
        child.kill().unwrap();
        child.wait().unwrap();
        if let Some(other) = meter.reading().other_cores {
            assert!(
                other > 0.5,
                "a spinning shell should show as other load, got {other}"
            );
        }
    }
}
