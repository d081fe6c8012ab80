//! Chimera's benchmarker: GPT-2-style decoders timed on Burn backends.
//!
//! The binary is a thin shell over these modules; everything that can be
//! tested without a model (statistics, stopping rule, storage) is tested so.

pub mod allocator;
pub mod backend;
pub mod blas;
pub mod calibrating;
pub mod composing;
pub mod fingerprint;
pub mod fitting;
pub mod gpu;
pub mod harness;
pub mod journal;
pub mod memory;
pub mod model;
pub mod onboard;
pub mod ops;
pub mod record;
pub mod runner;
pub mod summary;
pub mod sweep;
