//! The two phases of running a decoder: prefill and decode.

use serde::{Deserialize, Serialize};

/// What one timed step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// One forward pass over n prompt tokens per sequence (`seq` = n).
    #[default]
    Prefill,
    /// One generated token per sequence against a KV cache of c tokens
    /// (`seq` = c, the new token included).
    Decode,
}

impl Phase {
    /// Both phases, prefill first.
    pub const ALL: [Phase; 2] = [Phase::Prefill, Phase::Decode];

    /// Name as recorded in measurements (`kind`) and profiles.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Prefill => "prefill",
            Phase::Decode => "decode",
        }
    }

    /// The phase recorded under `name`.
    pub fn from_name(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.name() == name)
    }

    /// FLOPs of one timed step of this phase.
    pub fn flops(self, shape: &crate::Shape) -> u64 {
        let a = shape.accounting();
        match self {
            Phase::Prefill => a.flops.total,
            Phase::Decode => a.decode.flops.total,
        }
    }
}

/// The name, padded as a format width asks (tables align phases).
impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Phase::ALL {
            assert_eq!(Phase::from_name(p.name()), Some(p));
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{}\"", p.name()));
        }
        assert_eq!(Phase::from_name("train"), None);
        assert_eq!(format!("[{:<8}]", Phase::Decode), "[decode  ]");
    }
}
