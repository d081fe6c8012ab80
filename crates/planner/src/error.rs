//! Errors of the planner core.

use thiserror::Error;

/// Why a shape is not a valid decoder.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShapeError {
    /// A dimension that must be at least 1 was 0.
    #[error("{name} must be at least 1 (got 0)")]
    Zero {
        /// Which dimension.
        name: &'static str,
    },
    /// d_model is not a multiple of the head count.
    #[error("d_model ({d_model}) must be divisible by heads ({heads}); valid head counts divide d_model")]
    HeadsDoNotDivide {
        /// Width.
        d_model: u64,
        /// Heads.
        heads: u64,
    },
    /// The key/value heads do not divide the query heads.
    #[error("kv_heads ({kv_heads}) must divide heads ({heads}); valid kv_heads: {valid}")]
    KvHeadsDoNotDivide {
        /// Query heads.
        heads: u64,
        /// Key/value heads given.
        kv_heads: u64,
        /// The divisors of heads.
        valid: String,
    },
    /// Rotary embeddings rotate pairs of features.
    #[error("head_dim ({head_dim}) must be even with rope positions (rotary embeddings rotate pairs)")]
    OddRopeHeadDim {
        /// Head size.
        head_dim: u64,
    },
    /// The sequence is longer than the learned position table.
    #[error("seq ({seq}) must not exceed positions ({positions})")]
    SeqAbovePositions {
        /// Sequence length.
        seq: u64,
        /// Context (positions) of the model.
        positions: u64,
    },
    /// A dimension is above what the planner accepts.
    #[error("{name} = {value} is above the limit of {max}")]
    TooLarge {
        /// Which dimension.
        name: &'static str,
        /// The value given.
        value: u64,
        /// The largest accepted value.
        max: u64,
    },
    /// Counting parameters or FLOPs for this shape would overflow 64 bits.
    #[error("the shape is too large: counting its {what} overflows")]
    Overflow {
        /// Which count overflowed.
        what: &'static str,
    },
}

/// Why a profile cannot be used.
#[derive(Debug, Error)]
pub enum ProfileError {
    /// The text is not valid JSON for a profile.
    #[error("profile is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The profile has another schema version.
    #[error(
        "profile schema version {found} is not supported (this build reads version {expected}); refit it with `bench fit`"
    )]
    Version {
        /// Version found in the file.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// The profile is well-formed JSON but its content is unusable.
    #[error("profile is invalid: {0}")]
    Invalid(String),
    /// The backend is not in the profile.
    #[error("backend `{name}` is not in the profile (it has: {available})")]
    UnknownBackend {
        /// Name asked for.
        name: String,
        /// Names present, comma separated.
        available: String,
    },
}

/// Why a planning request cannot be answered.
#[derive(Debug, Error)]
pub enum PlanError {
    /// The proposed or base shape is invalid.
    #[error(transparent)]
    Shape(#[from] ShapeError),
    /// The profile cannot serve the request.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A request field is out of range.
    #[error("{0}")]
    Invalid(String),
}
