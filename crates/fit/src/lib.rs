//! Fitting latency models to measurements, and measuring how well they predict.
//!
//! Pure: takes observations, returns fitted models, metrics, profiles and the
//! report. Reading files and printing is the benchmarker's job. The flow, one
//! module per step: [`observation`] (what comes in) → [`sessions`] (leave out
//! the disturbed, scale sessions to one reference) → [`pooling`] (one point
//! per shape, the noise floor) → [`profile_fit`] (models, cross-validation,
//! term selection) and [`memory`] (overheads) → [`pipeline`] (all of it in one
//! call, and the check on independent sessions) → [`report`]. [`stats`] is the
//! one statistics module.

pub mod cv;
pub mod design;
pub mod lstsq;
pub mod memory;
pub mod metrics;
pub mod models;
pub mod observation;
pub mod operators;
pub mod pipeline;
pub mod pooling;
pub mod profile_fit;
pub mod regimes;
pub mod report;
pub mod scaling;
pub mod session_level;
pub mod sessions;
pub mod stats;

pub use observation::{Family, Observation, Session};
use planner::Shape;
use thiserror::Error;

/// One measured shape.
#[derive(Debug, Clone)]
pub struct Point {
    /// The shape.
    pub shape: Shape,
    /// The family its sweep tagged it with.
    pub family: Family,
    /// Median latency, ms.
    pub median_ms: f64,
    /// Relative uncertainty of `median_ms`: the larger of the runs' own 95% CI
    /// half-widths (over √runs) and the standard error between the sessions
    /// that measured the shape.
    pub rel_uncertainty: f64,
}

/// Why a fit failed.
#[derive(Debug, Error)]
pub enum FitError {
    /// Not enough points for the parameters.
    #[error("too few measurements: need at least {need}, have {have}")]
    TooFewPoints {
        /// Needed.
        need: usize,
        /// Present.
        have: usize,
    },
    /// The regression failed.
    #[error("regression failed: {0}")]
    Regression(String),
    /// The data cannot identify the model.
    #[error("degenerate data: {0}")]
    Degenerate(String),
    /// One backend's fit failed.
    #[error("fitting {} of backend `{backend}`", phase.name())]
    Backend {
        /// The backend.
        backend: String,
        /// The phase.
        phase: planner::Phase,
        /// Why.
        source: Box<FitError>,
    },
    /// Nothing to fit a profile from.
    #[error("no successful prefill measurements to fit")]
    NoPrefill,
    /// `--machine` matched no machine of the measurements.
    #[error("no measurements of a machine matching `{wanted}`; the machines measured: {}", available.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "))]
    NoSuchMachine {
        /// What was asked for.
        wanted: String,
        /// The machine keys present.
        available: Vec<String>,
    },
    /// A profile entry needs a prefill model; decode alone cannot make one.
    #[error("backend `{0}` has decode measurements but no prefill ones: a profile entry needs both")]
    DecodeWithoutPrefill(String),
}
