//! The profile file format: fitted latency models of one machine.
//!
//! A profile is JSON written by `bench fit` / `bench profile` and read by the
//! planner (CLI and web). Layout (schema version 4; version 3 is version 4
//! without `held_out_points`, version 2 is version 3 without `operators`
//! models, version 1 is version 2 without `decode`; all are still read):
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "name": "xeon-2core-cpu",            // free text shown to users
//!   "created_utc": "2026-11-26T10:00:00Z",
//!   "source": "data/measurements/...jsonl (412 measurements)",
//!   "backends": [{
//!     "backend": "flex",                  // name as `bench --backend` takes it
//!     "device": "cpu",                    // "cpu" | "gpu"
//!     "fingerprint": {"cpu": "...", ...}, // string map, from the measurements
//!     "measurements": 48,                 // shapes the fit used
//!     "model": {"kind": "physics", "terms": [{"term": "matmul_gflop", "value": 4.1, "std_error": 0.1}, ...]}
//!            | {"kind": "operators", "phase": "prefill", "calibration": {"scale": 1.02, "per_layer_ms": 0.1, "constant_ms": 0.0},
//!               "laws": {"laws": [{"class": "linear", "base": {…}, "smoothing": 0.5, "points": [{"op": {…}, "ms": 0.01}, …]}, …],
//!                        "streams": [{"working_set_bytes": 2097152, "bytes_per_ms": 6.1e7}, …], "cold_working_set_bytes": 268435456}},
//!     "alternatives": [{"name": "tr121_linear", "model": {...}, "r2": .., "adj_r2": .., "held_out": {...}}],
//!     "validity": {"layers": [1, 24], "d_model": [32, 1024], ...},
//!     "residuals": {"quantiles": [[0.05, 0.95], [0.5, 1.0], [0.95, 1.06]]},  // held-out measured/predicted
//!     "held_out": {"mape_pct": 3.1, "within_10pct": 0.97, ...},
//!     "regimes": {"breakpoints_params": [2.1e6], "segments": [{"from_params": .., "to_params": .., "exponent": .., "intercept": ..}]},
//!     "noise_floor_pct": 1.8,              // optional: run-to-run difference
//!     "session_spread_pct": 7.5,           // optional: session-to-session level difference
//!     "held_out_points": [{"layers": 4, "d_model": 256, "seq": 128, "batch": 1, "vocab": 50257, "error_pct": 2.1}, …],
//!                                         // optional: each measured shape's held-out
//!                                         // error, for confidence labels
//!     "decode": {…},                      // optional: the same fields, fitted on
//!                                         // decode steps (`seq` = context c); no
//!                                         // nested `decode`
//!     "memory": {"runtime_bytes": 1.6e6, "matmul_workspace_bytes": 2.9e7, "measurements": 67,
//!                "held_out_mape_pct": 1.9, "held_out_within_10pct": 0.97, "held_out_worst_pct": 12.0},
//!                                         // optional: measured overheads beyond tensors
//!     "session": {"factor": 1.26, "ratio": 1.26, "ratio_ci95": [1.18, 1.39], "applied": true, "anchors": 8,
//!                 "ratio_range": [0.76, 1.2], "measured_utc": "2026-12-01T19:05:00Z", "source": "calibration.jsonl (run …)"}
//!                                         // optional (also in `decode`): `bench calibrate`
//!                                         // scaled `model` to a session's level
//!   }]
//! }
//! ```
//!
//! Every field is required unless marked optional; unknown fields are rejected
//! so that a typo does not pass silently. Loading goes through [`Profile::from_json`],
//! which checks the version and the numbers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ProfileError;
use crate::model::LatencyModel;
use crate::shape::Shape;

/// The schema version this build writes.
pub const PROFILE_SCHEMA_VERSION: u32 = 5;

/// Versions this build reads: 4 is 5 without session spreads, 3 is 4 without
/// held-out points, 2 is 3 without operator models, 1 is 2 without decode
/// models.
pub const READABLE_SCHEMA_VERSIONS: [u32; 5] = [1, 2, 3, 4, 5];

/// Largest profile text accepted (the web page takes user files).
pub const MAX_PROFILE_BYTES: usize = 4 * 1024 * 1024;

/// Fitted models for one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// [`PROFILE_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Name shown to users.
    pub name: String,
    /// When it was fitted (RFC 3339, UTC).
    pub created_utc: String,
    /// Where the measurements came from.
    pub source: String,
    /// One entry per backend.
    pub backends: Vec<BackendProfile>,
}

/// CPU or GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceClass {
    /// A CPU backend.
    Cpu,
    /// A GPU backend.
    Gpu,
}

/// Models and metrics of one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendProfile {
    /// Backend name (`flex`, `ndarray`, `wgpu`, ...).
    pub backend: String,
    /// CPU or GPU.
    pub device: DeviceClass,
    /// Hardware and software the measurements were taken on.
    pub fingerprint: BTreeMap<String, String>,
    /// Number of measured shapes used in the fit.
    pub measurements: usize,
    /// The model used for prediction (chosen by held-out error).
    pub model: LatencyModel,
    /// Other fitted models, for comparison (TR121's among them).
    pub alternatives: Vec<AlternativeModel>,
    /// Ranges of the measured shapes: predictions outside are extrapolations.
    pub validity: Validity,
    /// Distribution of held-out measured/predicted ratios, for prediction intervals.
    pub residuals: Residuals,
    /// Held-out accuracy of `model`.
    pub held_out: Accuracy,
    /// Scaling regimes found in the data.
    pub regimes: Regimes,
    /// Median relative difference between two runs of the same shapes (%),
    /// if known: the machine's run-to-run variability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_floor_pct: Option<f64>,
    /// Median relative difference (%) between two sessions' measurements of
    /// the same shape, over every pair of sessions (measurement files) that
    /// measured one, before the fit scaled them to one level, if any shape
    /// was measured twice: a later session on the same machine lands about
    /// that far from the prediction however well the shape is modelled. On a
    /// cloud machine it is usually well above the noise floor (back-to-back
    /// runs); [`crate::confidence`] takes the larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_spread_pct: Option<f64>,
    /// Each measured shape with its held-out error, for the confidence of
    /// predictions near it ([`crate::confidence`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_out_points: Vec<crate::confidence::HeldOutPoint>,
    /// The decode-step model of this backend (same layout; its `seq` is the
    /// KV-cache context), where decode was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode: Option<Box<BackendProfile>>,
    /// The backend's memory overheads, where `bench memory` measured them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<crate::memory::MemoryCalibration>,
    /// The session level `model` was scaled to, where `bench calibrate`
    /// measured anchors ([`crate::session`]); absent: the fit's own level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<crate::session::SessionLevel>,
}

/// A model kept for comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlternativeModel {
    /// Short name (`tr121_linear`, `power_law_total`, `loglog`, ...).
    pub name: String,
    /// The fitted model.
    pub model: LatencyModel,
    /// In-sample R² (of the fitted quantity: t for linear, ln t for log models).
    pub r2: f64,
    /// In-sample adjusted R².
    pub adj_r2: f64,
    /// Held-out accuracy.
    pub held_out: Accuracy,
}

/// Inclusive ranges of the measured dimensions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validity {
    /// Layers.
    pub layers: [u64; 2],
    /// Width.
    pub d_model: [u64; 2],
    /// Heads.
    pub heads: [u64; 2],
    /// Sequence.
    pub seq: [u64; 2],
    /// Batch.
    pub batch: [u64; 2],
    /// Vocabulary.
    pub vocab: [u64; 2],
    /// Total parameters.
    pub params_total: [u64; 2],
    /// The architectural features measured ([`Shape::architecture_features`]);
    /// absent in profiles fitted before them, whose shapes were all GPT-2-style.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architecture_features: Vec<String>,
}

impl Validity {
    /// Names of the dimensions of `shape` outside the measured ranges
    /// (`architecture` when it has a feature no measured shape had).
    pub fn outside(&self, shape: &Shape) -> Vec<&'static str> {
        let checks = [
            ("layers", shape.layers(), self.layers),
            ("d_model", shape.d_model(), self.d_model),
            ("heads", shape.heads(), self.heads),
            ("seq", shape.seq(), self.seq),
            ("batch", shape.batch(), self.batch),
            ("vocab", shape.vocab(), self.vocab),
            ("params", shape.accounting().params.total, self.params_total),
        ];
        let mut outside: Vec<&'static str> = checks
            .into_iter()
            .filter(|(_, v, [lo, hi])| v < lo || v > hi)
            .map(|(name, _, _)| name)
            .collect();
        if !self.unmeasured_features(shape).is_empty() {
            outside.push("architecture");
        }
        outside
    }

    /// The features of `shape`'s architecture that no measured shape had.
    pub fn unmeasured_features(&self, shape: &Shape) -> Vec<&'static str> {
        shape
            .architecture_features()
            .into_iter()
            .filter(|f| !self.architecture_features.iter().any(|m| m == f))
            .collect()
    }
}

/// Held-out residual distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Residuals {
    /// `[probability, measured/predicted]` pairs, probability ascending.
    pub quantiles: Vec<[f64; 2]>,
}

impl Residuals {
    /// The ratio at probability `p` (linear interpolation between stored quantiles).
    pub fn ratio_at(&self, p: f64) -> f64 {
        let q = &self.quantiles;
        if q.is_empty() {
            return 1.0;
        }
        if p <= q[0][0] {
            return q[0][1];
        }
        for w in q.windows(2) {
            let ([p0, r0], [p1, r1]) = (w[0], w[1]);
            if p <= p1 {
                let t = if p1 > p0 { (p - p0) / (p1 - p0) } else { 0.0 };
                return r0 + t * (r1 - r0);
            }
        }
        q[q.len() - 1][1]
    }
}

/// Held-out accuracy metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accuracy {
    /// How the held-out predictions were made (`10-fold`, `leave-one-family-out`, ...).
    pub method: String,
    /// Number of held-out predictions.
    pub n: usize,
    /// Mean absolute percentage error.
    pub mape_pct: f64,
    /// Fraction of predictions within ±10%.
    pub within_10pct: f64,
    /// Worst absolute percentage error.
    pub worst_pct: f64,
    /// Spearman rank correlation of predicted vs measured.
    pub spearman: f64,
    /// Fraction of held-out pairs whose faster member is named correctly.
    pub pairwise: f64,
}

/// Scaling regimes in log latency vs log params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regimes {
    /// Breakpoints in total params, ascending.
    pub breakpoints_params: Vec<f64>,
    /// One segment more than breakpoints.
    pub segments: Vec<Segment>,
}

/// One regime: latency ∝ params^exponent between two sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Lower bound of params (measured).
    pub from_params: f64,
    /// Upper bound of params (measured).
    pub to_params: f64,
    /// Scaling exponent of latency in params.
    pub exponent: f64,
    /// ln-latency intercept (ln ms at 1 param).
    pub intercept: f64,
}

impl BackendProfile {
    fn check(&self) -> Result<(), ProfileError> {
        let b = self;
        let invalid = |m: String| Err(ProfileError::Invalid(m));
        b.model
            .check()
            .or_else(|m| invalid(format!("backend `{}`: {m}", b.backend)))?;
        let q = &b.residuals.quantiles;
        let sorted = q.windows(2).all(|w| w[0][0] <= w[1][0] && w[0][1] <= w[1][1]);
        let sane = q
            .iter()
            .all(|[p, r]| (0.0..=1.0).contains(p) && r.is_finite() && *r > 0.0);
        if q.is_empty() || !sorted || !sane {
            return invalid(format!(
                "backend `{}`: residual quantiles must be non-empty, in [0,1] with positive ratios, and ascending",
                b.backend
            ));
        }
        let v = &b.validity;
        let ranges = [
            v.layers,
            v.d_model,
            v.heads,
            v.seq,
            v.batch,
            v.vocab,
            v.params_total,
        ];
        if ranges.iter().any(|[lo, hi]| lo > hi) {
            return invalid(format!("backend `{}`: a validity range has min > max", b.backend));
        }
        if let Some(level) = &b.session {
            level
                .check()
                .or_else(|m| invalid(format!("backend `{}`: {m}", b.backend)))?;
        }
        if b.held_out_points
            .iter()
            .any(|p| !(p.error_pct.is_finite() && p.error_pct >= 0.0))
        {
            return invalid(format!(
                "backend `{}`: a held-out point's error_pct is not a finite percentage ≥ 0",
                b.backend
            ));
        }
        for (name, pct) in [
            ("noise_floor_pct", b.noise_floor_pct),
            ("session_spread_pct", b.session_spread_pct),
        ] {
            if pct.is_some_and(|p| !(p.is_finite() && p >= 0.0)) {
                return invalid(format!(
                    "backend `{}`: {name} is not a finite percentage ≥ 0",
                    b.backend
                ));
            }
        }
        Ok(())
    }
}

impl Profile {
    /// Parses and checks a profile.
    pub fn from_json(text: &str) -> Result<Profile, ProfileError> {
        if text.len() > MAX_PROFILE_BYTES {
            return Err(ProfileError::Invalid(format!(
                "file is {} bytes, above the {} byte limit",
                text.len(),
                MAX_PROFILE_BYTES
            )));
        }
        // Read the version first so an old file gets a version error, not a field error.
        #[derive(Deserialize)]
        struct VersionOnly {
            schema_version: Option<u32>,
        }
        let version: VersionOnly = serde_json::from_str(text)?;
        match version.schema_version {
            Some(v) if READABLE_SCHEMA_VERSIONS.contains(&v) => {}
            Some(found) => {
                return Err(ProfileError::Version {
                    found,
                    expected: PROFILE_SCHEMA_VERSION,
                });
            }
            None => return Err(ProfileError::Invalid("missing `schema_version`".into())),
        }
        let profile: Profile = serde_json::from_str(text)?;
        profile.check()?;
        Ok(profile)
    }

    /// Serialises as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("profiles always serialise")
    }

    fn check(&self) -> Result<(), ProfileError> {
        let invalid = |m: String| Err(ProfileError::Invalid(m));
        if self.backends.is_empty() {
            return invalid("it has no backends".into());
        }
        for b in &self.backends {
            if b.backend.trim().is_empty() {
                return invalid("a backend has an empty name".into());
            }
            if self.backends.iter().filter(|o| o.backend == b.backend).count() > 1 {
                return invalid(format!("backend `{}` appears twice", b.backend));
            }
            b.check()?;
            let operators = |p: &BackendProfile| matches!(p.model, LatencyModel::Operators { .. });
            if self.schema_version < 3 && (operators(b) || b.decode.as_deref().is_some_and(operators)) {
                return invalid(format!(
                    "backend `{}` has an operator model, which schema version {} does not allow",
                    b.backend, self.schema_version
                ));
            }
            let points = |p: &BackendProfile| !p.held_out_points.is_empty();
            if self.schema_version < 4 && (points(b) || b.decode.as_deref().is_some_and(points)) {
                return invalid(format!(
                    "backend `{}` has held-out points, which schema version {} does not allow",
                    b.backend, self.schema_version
                ));
            }
            let spread = |p: &BackendProfile| p.session_spread_pct.is_some();
            if self.schema_version < 5 && (spread(b) || b.decode.as_deref().is_some_and(spread)) {
                return invalid(format!(
                    "backend `{}` has a session spread, which schema version {} does not allow",
                    b.backend, self.schema_version
                ));
            }
            if let Some(decode) = &b.decode {
                if self.schema_version < 2 {
                    return invalid(format!(
                        "backend `{}` has a decode model, which schema version 1 does not allow",
                        b.backend
                    ));
                }
                if decode.decode.is_some() {
                    return invalid(format!(
                        "backend `{}`: a decode model cannot hold another",
                        b.backend
                    ));
                }
                decode.check().map_err(|e| match e {
                    ProfileError::Invalid(m) => ProfileError::Invalid(format!("decode model: {m}")),
                    other => other,
                })?;
            }
        }
        Ok(())
    }

    /// The backend entry with this name.
    pub fn backend(&self, name: &str) -> Result<&BackendProfile, ProfileError> {
        self.backends
            .iter()
            .find(|b| b.backend == name)
            .ok_or_else(|| ProfileError::UnknownBackend {
                name: name.to_string(),
                available: self.backend_names().join(", "),
            })
    }

    /// Names of all backends.
    pub fn backend_names(&self) -> Vec<String> {
        self.backends.iter().map(|b| b.backend.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_value() -> serde_json::Value {
        serde_json::from_str(crate::DEFAULT_PROFILE_JSON).unwrap()
    }

    #[test]
    fn the_layout_is_locked() {
        // Renaming or adding a field changes this list: bump the version (and
        // keep reading the old one) instead of silently changing the format.
        let p = crate::default_profile();
        let v = serde_json::to_value(&p).unwrap();
        let keys =
            |v: &serde_json::Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        assert_eq!(
            keys(&v),
            ["backends", "created_utc", "name", "schema_version", "source"]
        );
        let backend = &v["backends"][0];
        assert_eq!(
            keys(backend),
            [
                "alternatives",
                "backend",
                "decode",
                "device",
                "fingerprint",
                "held_out",
                "held_out_points",
                "measurements",
                "memory",
                "model",
                "noise_floor_pct",
                "regimes",
                "residuals",
                "session_spread_pct",
                "validity"
            ]
        );
        assert!(backend["decode"].get("decode").is_none());
        assert_eq!(v["schema_version"], PROFILE_SCHEMA_VERSION);
        assert_eq!(Profile::from_json(&p.to_json()).unwrap(), p);
    }

    #[test]
    fn operator_models_round_trip_and_need_version_three() {
        use crate::compose::Calibration;
        use crate::costlaw::{BaseLaw, OperatorLaws};
        use crate::operators::OpClass;
        let mut p = crate::default_profile();
        for b in &mut p.backends {
            b.held_out_points.clear();
            b.session_spread_pct = None;
            if let Some(d) = b.decode.as_mut() {
                d.held_out_points.clear();
                d.session_spread_pct = None;
            }
        }
        p.backends[0].model = LatencyModel::Operators {
            phase: crate::Phase::Prefill,
            calibration: Calibration::IDENTITY,
            laws: Box::new(OperatorLaws::uniform(BaseLaw {
                overhead_ms: 0.01,
                ..BaseLaw::default()
            })),
        };
        p.schema_version = 3;
        let back = Profile::from_json(&p.to_json()).unwrap();
        assert_eq!(back, p);
        let shape = crate::ShapeSpec::new(2, 128).validate().unwrap();
        let ms = back.backends[0].model.predict_ms(&shape);
        let runs: u64 = crate::operators::graph(&shape, crate::Phase::Prefill)
            .iter()
            .map(|o| o.count)
            .sum();
        assert!((ms - 0.01 * runs as f64).abs() < 1e-9, "{ms}");
        p.schema_version = 2;
        let e = Profile::from_json(&p.to_json()).unwrap_err().to_string();
        assert!(
            e.contains("operator model") && e.contains("schema version 2"),
            "{e}"
        );
        // A law missing for a class of the graph is refused on load, not at prediction.
        p.schema_version = 3;
        if let LatencyModel::Operators { laws, .. } = &mut p.backends[0].model {
            laws.laws.retain(|l| l.class != OpClass::Gelu);
        }
        let e = Profile::from_json(&p.to_json()).unwrap_err().to_string();
        assert!(e.contains("gelu"), "{e}");
    }

    #[test]
    fn held_out_points_need_version_four_and_sane_errors() {
        let mut p = crate::default_profile();
        let shape = crate::ShapeSpec::new(2, 128).validate().unwrap();
        p.backends[0].held_out_points = vec![crate::confidence::HeldOutPoint::of(&shape, 2.5)];
        assert_eq!(Profile::from_json(&p.to_json()).unwrap(), p);
        p.schema_version = 3;
        let e = Profile::from_json(&p.to_json()).unwrap_err().to_string();
        assert!(
            e.contains("held-out points") && e.contains("schema version 3"),
            "{e}"
        );
        p.schema_version = PROFILE_SCHEMA_VERSION;
        p.backends[0].held_out_points[0].error_pct = -1.0;
        let e = Profile::from_json(&p.to_json()).unwrap_err().to_string();
        assert!(e.contains("error_pct"), "{e}");
    }

    #[test]
    fn session_spreads_need_version_five_and_sane_values() {
        let mut p = crate::default_profile();
        p.backends[0].session_spread_pct = Some(8.0);
        assert_eq!(Profile::from_json(&p.to_json()).unwrap(), p);
        p.schema_version = 4;
        let e = Profile::from_json(&p.to_json()).unwrap_err().to_string();
        assert!(
            e.contains("session spread") && e.contains("schema version 4"),
            "{e}"
        );
        // A version 4 file without one still loads.
        for b in &mut p.backends {
            b.session_spread_pct = None;
            if let Some(d) = b.decode.as_deref_mut() {
                d.session_spread_pct = None;
            }
        }
        assert_eq!(Profile::from_json(&p.to_json()).unwrap(), p);
        p.schema_version = PROFILE_SCHEMA_VERSION;
        p.backends[0].session_spread_pct = Some(-1.0);
        let e = Profile::from_json(&p.to_json()).unwrap_err().to_string();
        assert!(e.contains("session_spread_pct"), "{e}");
    }

    #[test]
    fn version_one_files_still_load_without_decode_models() {
        let mut v = default_value();
        v["schema_version"] = 1.into();
        for b in v["backends"].as_array_mut().unwrap() {
            b.as_object_mut().unwrap().remove("decode");
            b.as_object_mut().unwrap().remove("held_out_points");
            b.as_object_mut().unwrap().remove("session_spread_pct");
        }
        let p = Profile::from_json(&v.to_string()).unwrap();
        assert!(p.backends.iter().all(|b| b.decode.is_none()));
    }

    #[test]
    fn decode_models_are_checked_like_prefill_ones() {
        let mut v = default_value();
        v["schema_version"] = 1.into();
        let e = Profile::from_json(&v.to_string()).unwrap_err().to_string();
        assert!(e.contains("schema version 1 does not allow"), "{e}");

        let mut v = default_value();
        let nested = v["backends"][0]["decode"].clone();
        v["backends"][0]["decode"]["decode"] = nested;
        let e = Profile::from_json(&v.to_string()).unwrap_err().to_string();
        assert!(e.contains("cannot hold another"), "{e}");

        let mut v = default_value();
        v["backends"][0]["decode"]["residuals"]["quantiles"] = serde_json::json!([]);
        let e = Profile::from_json(&v.to_string()).unwrap_err().to_string();
        assert!(
            e.contains("decode model") && e.contains("residual quantiles"),
            "{e}"
        );
    }
}
