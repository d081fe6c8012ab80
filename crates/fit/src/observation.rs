//! What the fit takes in: one timed shape, as the benchmarker measured it,
//! reduced to what fitting needs. The benchmarker converts its measurement
//! lines into these (`bench::fitting`); nothing here knows about files or Burn.

use std::collections::BTreeMap;

use planner::{Phase, Shape};

/// Why a measurement is not trusted: the machine was not its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Disturbance {
    /// The hypervisor stole CPU time above the runner's threshold.
    Stolen,
    /// Other processes kept cores busy above the runner's threshold.
    Busy,
}

impl Disturbance {
    /// The reason, as notes and the report print it.
    pub fn reason(self) -> &'static str {
        match self {
            Disturbance::Stolen => "the hypervisor stole CPU time",
            Disturbance::Busy => "other processes kept cores busy",
        }
    }
}

/// The thresholds above which the runner calls a measurement disturbed,
/// quoted in the notes that say what was left out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DisturbanceThresholds {
    /// Share of CPU time the hypervisor took, %.
    pub steal_pct: f64,
    /// Cores other processes kept busy.
    pub busy_cores: f64,
}

/// The family a shape was measured in, as its sweep tags it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// An iso-parameter family: shapes of (about) equal non-embedding
    /// parameters at different depth and width, named e.g. `iso-25M`.
    IsoParameter(String),
    /// Any other tag (`depth`, `width`, `batch`, …); may be empty.
    Other(String),
}

impl Family {
    /// Tag prefix that marks an iso-parameter family in sweep files.
    pub const ISO_PREFIX: &'static str = "iso-";

    /// The family named by a sweep's tag.
    pub fn from_tag(tag: &str) -> Family {
        if tag.starts_with(Self::ISO_PREFIX) {
            Family::IsoParameter(tag.to_string())
        } else {
            Family::Other(tag.to_string())
        }
    }

    /// The tag, as written in sweep and measurement files.
    pub fn tag(&self) -> &str {
        match self {
            Family::IsoParameter(t) | Family::Other(t) => t,
        }
    }

    /// Whether this is an iso-parameter family.
    pub fn is_iso_parameter(&self) -> bool {
        matches!(self, Family::IsoParameter(_))
    }
}

/// One successful timing of one shape in one session.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Backend name.
    pub backend: String,
    /// Prefill or decode.
    pub phase: Phase,
    /// The shape (for decode `seq` is the context).
    pub shape: Shape,
    /// What else defines the workload (the benchmarker's GELU variant):
    /// observations pool only with equal shape and configuration.
    pub configuration: String,
    /// The family its sweep tagged it with.
    pub family: Family,
    /// Median latency, ms.
    pub median_ms: f64,
    /// 95% confidence interval of the median, ms.
    pub ci95_ms: [f64; 2],
    /// The invocation that measured it (two sessions' runs are compared for the noise floor).
    pub run_id: String,
    /// The machine and build that decide speed; observations of different
    /// machines are never pooled.
    pub machine: String,
    /// The full fingerprint, copied into the profile.
    pub fingerprint: BTreeMap<String, String>,
    /// Set when the machine was not its own while measuring.
    pub disturbed: Option<Disturbance>,
    /// When it was measured (UTC, RFC 3339).
    pub timestamp_utc: String,
}

impl Observation {
    /// Identifies shape and configuration: the unit of pooling and of session scaling.
    pub fn key(&self) -> String {
        format!("{}|{}", self.shape.key(), self.configuration)
    }

    /// Half-width of the CI relative to the median.
    pub fn rel_ci_half_width(&self) -> f64 {
        (self.ci95_ms[1] - self.ci95_ms[0]) / 2.0 / self.median_ms
    }

    /// Divides the timing by `factor` (a session's speed relative to the reference).
    pub fn scale_by(&mut self, factor: f64) {
        self.median_ms /= factor;
        self.ci95_ms = [self.ci95_ms[0] / factor, self.ci95_ms[1] / factor];
    }
}

/// One measuring session: the observations of one file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Session {
    /// Its name (the file name).
    pub name: String,
    /// Its observations, in file order.
    pub observations: Vec<Observation>,
    /// When each of its failed measurements (a shape that could not run) was
    /// taken: they count as measurements of the session but are never fitted.
    pub failed_utc: Vec<String>,
}

impl Session {
    /// Measurements of the session, failed ones included.
    pub fn measurements(&self) -> usize {
        self.observations.len() + self.failed_utc.len()
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Observations for tests: synthetic, so the fit's tests need no files.

    use super::*;

    /// An observation of `backend` at L, d (heads d/64, n 128, b 1).
    pub fn observation(backend: &str, layers: u64, d_model: u64, ms: f64) -> Observation {
        let shape = planner::ShapeSpec::new(layers, d_model)
            .validate()
            .expect("valid test shape");
        Observation {
            backend: backend.to_string(),
            phase: Phase::Prefill,
            shape,
            configuration: "exact".into(),
            family: Family::Other(String::new()),
            median_ms: ms,
            ci95_ms: [0.99 * ms, 1.01 * ms],
            run_id: "run".into(),
            machine: "cpu|2".into(),
            fingerprint: BTreeMap::from([("cpu".to_string(), "test cpu".to_string())]),
            disturbed: None,
            timestamp_utc: "2026-12-01T00:00:00Z".into(),
        }
    }

    /// Ten (L, d_model) shapes over depth and width, enough for a fit.
    pub const SHAPES: [(u64, u64); 10] = [
        (1, 256),
        (2, 256),
        (4, 256),
        (2, 512),
        (4, 512),
        (8, 512),
        (1, 1024),
        (2, 1024),
        (3, 768),
        (6, 384),
    ];

    /// A machine whose latency is 1 ms plus 0.5 ms per GFLOP.
    pub fn flop_law_ms(shape: &planner::Shape) -> f64 {
        1.0 + 0.5 * shape.accounting().flops.total as f64 / 1e9
    }

    /// A session of `n` flex shapes, latency ∝ L·d, scaled by `factor`.
    pub fn session(name: &str, shapes: std::ops::Range<u64>, factor: f64) -> Session {
        Session {
            name: name.to_string(),
            observations: shapes
                .map(|l| {
                    let mut o = observation("flex", l, 256, factor * l as f64);
                    o.run_id = name.to_string();
                    o
                })
                .collect(),
            failed_utc: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_typed_once_from_their_tag() {
        assert!(Family::from_tag("iso-25M").is_iso_parameter());
        assert!(!Family::from_tag("depth").is_iso_parameter());
        assert_eq!(Family::from_tag("iso-3M").tag(), "iso-3M");
        assert_eq!(Family::from_tag("").tag(), "");
    }

    #[test]
    fn scaling_divides_median_and_interval() {
        let mut o = fixtures::observation("flex", 2, 256, 10.0);
        o.scale_by(2.0);
        assert_eq!(o.median_ms, 5.0);
        assert_eq!(o.ci95_ms, [4.95, 5.05]);
        assert!(o.key().ends_with("|exact"));
    }
}
