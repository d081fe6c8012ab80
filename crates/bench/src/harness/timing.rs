//! Clocks and workloads, abstract so the harness can be tested without Burn.

use std::time::{Duration, Instant};

/// A monotonic clock.
pub trait Clock {
    /// Time since an arbitrary fixed origin.
    fn now(&self) -> Duration;
}

/// The wall clock.
pub struct WallClock(Instant);

impl Default for WallClock {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl Clock for WallClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}

/// Something to time: one forward pass of one model on one device.
pub trait Workload {
    /// Waits until the device has finished all queued work.
    fn sync(&mut self) -> Result<(), String>;
    /// Runs once (may return before an asynchronous device finishes).
    fn execute(&mut self) -> Result<(), String>;
    /// Releases what `execute` produced; called after the clock stops.
    fn finish(&mut self) {}
    /// Builds its state anew in fresh memory (a new model instance), so the
    /// next samples time another placement; untimed. Default: nothing to renew.
    fn renew(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// Times one run: sync → start → execute → sync → stop. Milliseconds.
pub fn time_once(workload: &mut dyn Workload, clock: &dyn Clock) -> Result<f64, String> {
    workload.sync()?;
    let start = clock.now();
    workload.execute()?;
    workload.sync()?;
    let elapsed = clock.now() - start;
    workload.finish();
    Ok(elapsed.as_secs_f64() * 1e3)
}

/// The bare loop of the examples, without the harness: one untimed call, then
/// the median of `runs` calls each timed between two `sync`s, ms (the upper
/// middle one for an even count).
pub fn bare_median_ms(mut run: impl FnMut(), sync: impl Fn(), runs: usize) -> f64 {
    run();
    let mut t: Vec<f64> = (0..runs.max(1))
        .map(|_| {
            sync();
            let s = Instant::now();
            run();
            sync();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

#[cfg(test)]
pub mod fake {
    //! A fake workload on a fake clock: each run takes the next scripted duration.

    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    /// A clock that only moves when the fake workload runs.
    #[derive(Clone, Default)]
    pub struct FakeClock(pub Rc<Cell<Duration>>);

    impl Clock for FakeClock {
        fn now(&self) -> Duration {
            self.0.get()
        }
    }

    /// Runs take the scripted durations in turn, cycling; counts calls.
    pub struct FakeWorkload {
        /// The clock it advances.
        pub clock: FakeClock,
        /// Durations of successive runs, cycled.
        pub script_ms: Vec<f64>,
        /// Runs executed so far.
        pub executed: usize,
        /// Syncs so far.
        pub synced: usize,
        /// Fail on this run (0-based), if set.
        pub fail_at: Option<usize>,
        /// Times [`Workload::renew`] was called.
        pub renewed: usize,
    }

    impl FakeWorkload {
        /// A workload following `script_ms` on `clock`.
        pub fn new(clock: &FakeClock, script_ms: Vec<f64>) -> Self {
            Self {
                clock: clock.clone(),
                script_ms,
                executed: 0,
                synced: 0,
                fail_at: None,
                renewed: 0,
            }
        }
    }

    impl Workload for FakeWorkload {
        fn sync(&mut self) -> Result<(), String> {
            self.synced += 1;
            Ok(())
        }
        fn renew(&mut self) -> Result<(), String> {
            self.renewed += 1;
            Ok(())
        }
        fn execute(&mut self) -> Result<(), String> {
            if self.fail_at == Some(self.executed) {
                return Err("out of memory (fake)".into());
            }
            let ms = self.script_ms[self.executed % self.script_ms.len()];
            self.executed += 1;
            let now = self.clock.0.get();
            self.clock.0.set(now + Duration::from_secs_f64(ms / 1e3));
            Ok(())
        }
    }

    #[test]
    fn time_once_syncs_before_and_after() {
        let clock = FakeClock::default();
        let mut w = FakeWorkload::new(&clock, vec![12.5]);
        let ms = time_once(&mut w, &clock).unwrap();
        assert!((ms - 12.5).abs() < 1e-9);
        assert_eq!((w.executed, w.synced), (1, 2));
    }
}
