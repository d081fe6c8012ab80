//! One request in, one answer out: what `chimera-plan --json` prints and what
//! the web page shows, computed in one place so the two cannot disagree.

use serde::{Deserialize, Serialize};

use crate::chart::{depth_chart, params_chart, render_svg};
use crate::crossover::{Crossover, backend_scaling};
use crate::error::{PlanError, ShapeError};
use crate::predict::{Prediction, predict_all};
use crate::profile::Profile;
use crate::recommend::{Constraints, Recommendation, recommend};
use crate::shape::{
    DEFAULT_BATCH, DEFAULT_POSITIONS, DEFAULT_SEQ, DEFAULT_VOCAB, MAX_LAYERS, Shape, ShapeSpec,
};

/// What the user asks: a shape, a budget, or both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanRequest {
    /// Proposed depth (with `d_model`: predict this shape).
    pub layers: Option<u64>,
    /// Proposed width.
    pub d_model: Option<u64>,
    /// Heads (default d_model / 64).
    pub heads: Option<u64>,
    /// Sequence length.
    pub seq: u64,
    /// Batch size.
    pub batch: u64,
    /// Vocabulary size.
    pub vocab: u64,
    /// Only this backend of the profile.
    pub backend: Option<String>,
    /// Non-embedding parameter budget (default: the proposed shape's).
    pub budget: Option<u64>,
    /// Recommendations: fewest layers.
    pub min_layers: u64,
    /// Recommendations: most layers.
    pub max_layers: u64,
    /// Recommendations: width of a head.
    pub head_size: u64,
    /// Recommendations: accepted deviation from the budget, percent.
    pub tolerance_pct: f64,
}

impl Default for PlanRequest {
    fn default() -> Self {
        Self {
            layers: None,
            d_model: None,
            heads: None,
            seq: DEFAULT_SEQ,
            batch: DEFAULT_BATCH,
            vocab: DEFAULT_VOCAB,
            backend: None,
            budget: None,
            min_layers: 1,
            max_layers: 128,
            head_size: 64,
            tolerance_pct: 10.0,
        }
    }
}

/// Parameter counts of the proposed shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanParams {
    /// All parameters (embeddings included, LM head tied).
    pub total: u64,
    /// Without token and position embeddings.
    pub non_embedding: u64,
}

/// The answer. Stable: fields are only ever added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Name of the profile used.
    pub profile: String,
    /// The proposed shape, if one was given.
    pub shape: Option<Shape>,
    /// Its parameters.
    pub params: Option<PlanParams>,
    /// Its FLOPs per forward pass.
    pub flops: Option<u64>,
    /// Its predicted latency per backend, fastest first.
    pub predictions: Vec<Prediction>,
    /// The fastest backend for it.
    pub best_backend: Option<String>,
    /// Where the fastest backend changes as the shape is scaled along its
    /// depth:width ratio (empty with one backend or no change).
    pub crossovers: Vec<Crossover>,
    /// Shapes at the same budget.
    pub recommendations: Option<Recommendation>,
}

fn invalid(message: String) -> PlanError {
    PlanError::Invalid(message)
}

impl PlanRequest {
    /// Checks the request; the message names the field and its valid range.
    pub fn check(&self) -> Result<(), PlanError> {
        if self.min_layers == 0 || self.min_layers > self.max_layers || self.max_layers > MAX_LAYERS {
            return Err(invalid(format!(
                "min-layers {} / max-layers {}: need 1 <= min <= max <= {MAX_LAYERS}",
                self.min_layers, self.max_layers
            )));
        }
        if !(8..=1024).contains(&self.head_size) {
            return Err(invalid(format!(
                "head-size {} is out of range: give 8 to 1024",
                self.head_size
            )));
        }
        if !(self.tolerance_pct > 0.0 && self.tolerance_pct <= 50.0) {
            return Err(invalid(format!(
                "tolerance {} is out of range: give a percentage above 0 and at most 50",
                self.tolerance_pct
            )));
        }
        if self.budget == Some(0) {
            return Err(invalid("budget must be at least 1 parameter".into()));
        }
        if self.layers.is_some() != self.d_model.is_some() {
            return Err(invalid(
                "give both layers and d-model, or neither (with a budget)".into(),
            ));
        }
        if self.layers.is_none() && self.budget.is_none() {
            return Err(invalid("give layers and d-model, or a budget".into()));
        }
        Ok(())
    }

    /// The proposed shape, if layers and width are given.
    pub fn proposed(&self) -> Result<Option<Shape>, ShapeError> {
        match (self.layers, self.d_model) {
            (Some(layers), Some(d_model)) => self.spec(layers, d_model, self.heads).validate().map(Some),
            _ => Ok(None),
        }
    }

    fn spec(&self, layers: u64, d_model: u64, heads: Option<u64>) -> ShapeSpec {
        ShapeSpec {
            layers,
            d_model,
            heads,
            vocab: Some(self.vocab),
            seq: Some(self.seq),
            batch: Some(self.batch),
            positions: Some(DEFAULT_POSITIONS.max(self.seq)),
            ..ShapeSpec::default()
        }
    }

    /// The recommendation constraints for a budget.
    pub fn constraints(&self, budget: u64) -> Constraints {
        Constraints {
            min_layers: self.min_layers,
            max_layers: self.max_layers,
            head_size: self.head_size,
            tolerance: self.tolerance_pct / 100.0,
            ..Constraints::new(budget)
        }
    }
}

/// A checked request: the profile narrowed to the asked backend, the proposed
/// shape, the shape whose sequence, batch and vocabulary the alternatives
/// share, and the budget.
struct Resolved {
    profile: Profile,
    proposed: Option<Shape>,
    base: Shape,
    budget: Option<u64>,
}

fn resolve(profile: &Profile, request: &PlanRequest) -> Result<Resolved, PlanError> {
    request.check()?;
    let mut profile = profile.clone();
    if let Some(name) = &request.backend {
        let only = profile.backend(name)?.clone();
        profile.backends = vec![only];
    }
    let proposed = request.proposed()?;
    let base = match proposed {
        Some(s) => s,
        None => request.spec(1, 64, None).validate()?,
    };
    let budget = request
        .budget
        .or(proposed.map(|s| s.accounting().params.non_embedding));
    Ok(Resolved {
        profile,
        proposed,
        base,
        budget,
    })
}

/// Answers a request from a profile.
pub fn plan(profile: &Profile, request: &PlanRequest) -> Result<Plan, PlanError> {
    let Resolved {
        profile,
        proposed,
        base,
        budget,
    } = resolve(profile, request)?;
    let predictions = proposed.map(|s| predict_all(&profile, &s)).unwrap_or_default();
    let recommendations =
        budget.map(|b| recommend(&profile, &base, proposed.as_ref(), &request.constraints(b)));
    let crossovers = proposed
        .map(|s| backend_scaling(&profile, &s).crossovers)
        .unwrap_or_default();
    Ok(Plan {
        profile: profile.name.clone(),
        shape: proposed,
        params: proposed.map(|s| {
            let a = s.accounting();
            PlanParams {
                total: a.params.total,
                non_embedding: a.params.non_embedding,
            }
        }),
        flops: proposed.map(|s| s.accounting().flops.total),
        best_backend: predictions.first().map(|p| p.backend.clone()),
        predictions,
        crossovers,
        recommendations,
    })
}

/// The two charts of a request, as SVG documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanCharts {
    /// Latency vs depth along the iso-parameter curve of the budget.
    pub depth_svg: Option<String>,
    /// Latency vs size per backend along the proposed shape's scaling path.
    pub params_svg: Option<String>,
}

/// Draws the charts of a request (the same numbers as [`plan`]).
pub fn charts(profile: &Profile, request: &PlanRequest) -> Result<PlanCharts, PlanError> {
    let Resolved {
        profile,
        proposed,
        base,
        budget,
    } = resolve(profile, request)?;
    let depth_svg = budget.map(|b| {
        render_svg(&depth_chart(
            &profile,
            &base,
            proposed.as_ref(),
            &request.constraints(b),
        ))
    });
    let measured_max = profile.backends.iter().map(|b| b.validity.params_total[1]).max();
    let params_svg = proposed.map(|s| {
        render_svg(&params_chart(
            &backend_scaling(&profile, &s),
            Some(&s),
            measured_max,
        ))
    });
    Ok(PlanCharts {
        depth_svg,
        params_svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(layers: u64, d_model: u64) -> PlanRequest {
        PlanRequest {
            layers: Some(layers),
            d_model: Some(d_model),
            ..PlanRequest::default()
        }
    }

    #[test]
    fn a_shape_gets_predictions_and_alternatives() {
        let p = plan(&crate::default_profile(), &request(16, 512)).unwrap();
        assert_eq!(p.predictions.len(), crate::default_profile().backends.len());
        assert_eq!(p.best_backend.as_deref(), Some(p.predictions[0].backend.as_str()));
        let r = p.recommendations.unwrap();
        assert!(!r.candidates.is_empty());
        assert_eq!(
            p.params.unwrap().non_embedding,
            r.constraints.budget_non_embedding
        );
    }

    #[test]
    fn a_budget_alone_recommends_without_predicting() {
        let req = PlanRequest {
            budget: Some(25_000_000),
            ..PlanRequest::default()
        };
        let p = plan(&crate::default_profile(), &req).unwrap();
        assert!(p.shape.is_none() && p.predictions.is_empty());
        assert!(!p.recommendations.unwrap().candidates.is_empty());
    }

    #[test]
    fn bad_requests_name_the_problem() {
        let profile = crate::default_profile();
        let cases = [
            (
                PlanRequest {
                    min_layers: 0,
                    ..request(4, 256)
                },
                "min-layers",
            ),
            (
                PlanRequest {
                    head_size: 3,
                    ..request(4, 256)
                },
                "head-size",
            ),
            (
                PlanRequest {
                    tolerance_pct: f64::NAN,
                    ..request(4, 256)
                },
                "tolerance",
            ),
            (
                PlanRequest {
                    layers: None,
                    ..request(4, 256)
                },
                "both",
            ),
            (PlanRequest::default(), "budget"),
            (request(0, 256), "layers"),
            (
                PlanRequest {
                    backend: Some("tpu".into()),
                    ..request(4, 256)
                },
                "tpu",
            ),
        ];
        for (req, needle) in cases {
            let e = plan(&profile, &req).unwrap_err().to_string();
            assert!(e.contains(needle), "{e:?} should mention {needle}");
        }
    }

    #[test]
    fn requests_round_trip_through_json() {
        let req = PlanRequest {
            budget: Some(3_000_000),
            ..request(8, 256)
        };
        let back: PlanRequest = serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        assert_eq!(back, req);
        assert!(serde_json::from_str::<PlanRequest>(r#"{"layerz": 3}"#).is_err());
    }
}
