//! Fitting latency models to measurements, and measuring how well they predict.
//!
//! Pure: takes measured points, returns fitted models, metrics and profile
//! entries. Reading files and printing is the benchmarker's job.

pub mod cv;
pub mod design;
pub mod lstsq;
pub mod metrics;
pub mod models;
pub mod profile_fit;
pub mod regimes;
pub mod report;
pub mod scaling;

use planner::Shape;
use thiserror::Error;

/// One measured shape.
#[derive(Debug, Clone)]
pub struct Point {
    /// The shape.
    pub shape: Shape,
    /// Family tag (iso-parameter family, ...).
    pub family: String,
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
}
