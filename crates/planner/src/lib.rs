//! Chimera's pure core: shape accounting, latency profiles, prediction and
//! wide-vs-deep recommendations.
//!
//! No I/O, no clock, no randomness: the benchmarker, the fitting code, the CLI
//! and the WebAssembly page all call the same functions and get the same numbers.

pub mod accounting;
pub mod error;
pub mod features;
pub mod model;
pub mod profile;
pub mod shape;

pub use accounting::Accounting;
pub use error::{ProfileError, ShapeError};
pub use features::{Component, Term};
pub use model::LatencyModel;
pub use profile::Profile;
pub use shape::{Shape, ShapeSpec};
