//! Chimera's pure core: shape accounting, latency profiles, prediction and
//! wide-vs-deep recommendations.
//!
//! No I/O, no clock, no randomness: the benchmarker, the fitting code, the CLI
//! and the WebAssembly page all call the same functions and get the same numbers.

pub mod accounting;
pub mod architecture;
pub mod chart;
pub mod compose;
pub mod confidence;
pub mod costlaw;
pub mod crossover;
pub mod error;
pub mod features;
pub mod format;
pub mod hf_config;
pub mod machine;
pub mod memory;
pub mod model;
pub mod objective;
pub mod operators;
pub mod parallelism;
pub mod phase;
pub mod plan;
pub mod predict;
pub mod presets;
pub mod profile;
pub mod recommend;
pub mod session;
pub mod shape;

pub use accounting::Accounting;
pub use architecture::{Mlp, Norm, PositionEncoding};
pub use error::{PlanError, ProfileError, ShapeError};
pub use features::{Component, Term};
pub use model::LatencyModel;
pub use objective::Objective;
pub use phase::Phase;
pub use profile::Profile;
pub use shape::{Shape, ShapeSpec};

/// The default profile, fitted from the committed CPU measurements
/// (`data/profiles/default.json`).
pub const DEFAULT_PROFILE_JSON: &str = include_str!("../../../data/profiles/default.json");

/// Parses the embedded default profile.
pub fn default_profile() -> Profile {
    Profile::from_json(DEFAULT_PROFILE_JSON).expect("the embedded profile is valid (a test checks it)")
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_profile_loads() {
        let p = super::default_profile();
        assert!(!p.backends.is_empty());
    }
}
