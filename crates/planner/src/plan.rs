//! One request in, one answer out: what `chimera-plan --json` prints and what
//! the web page shows, computed in one place so the two cannot disagree.

use serde::{Deserialize, Serialize};

use crate::chart::{depth_chart, params_chart, render_svg};
use crate::crossover::{Crossover, backend_scaling};
use crate::error::{PlanError, ShapeError};
use crate::memory::{self, MemoryEstimate};
use crate::objective::{Objective, mean_decode_ms};
use crate::phase::Phase;
use crate::predict::{INTERVAL, Prediction, predict_all, predict_backend};
use crate::profile::Profile;
use crate::recommend::{Constraints, Recommendation, recommend};
use crate::shape::{
    ArchitectureSpec, DEFAULT_BATCH, DEFAULT_POSITIONS, DEFAULT_SEQ, DEFAULT_VOCAB, MAX_LAYERS, Shape,
    ShapeSpec,
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
    /// Key/value heads, MLP, norm, positions, head, biases (default GPT-2's).
    pub architecture: ArchitectureSpec,
    /// Positions the model accepts (default: enough for the request, at
    /// least GPT-2's 1024); with learned positions a table of this many rows.
    pub positions: Option<u64>,
    /// Recommendations: also vary the key/value heads.
    pub vary_kv_heads: bool,
    /// Recommendations: also vary the MLP ratio.
    pub vary_mlp_ratio: bool,
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
    /// The headline latency and ranking: prefill (a forward over `seq`
    /// tokens) or decode (one token at `context`).
    pub mode: Phase,
    /// Decode: tokens in the KV cache, the new one included.
    pub context: u64,
    /// Generated tokens per sequence: when given, shapes are ranked by the
    /// end-to-end time of prefilling `seq` tokens and then generating these.
    pub output_tokens: Option<u64>,
}

/// Default decode context.
pub const DEFAULT_CONTEXT: u64 = 512;

impl Default for PlanRequest {
    fn default() -> Self {
        Self {
            layers: None,
            d_model: None,
            heads: None,
            architecture: ArchitectureSpec::default(),
            positions: None,
            vary_kv_heads: false,
            vary_mlp_ratio: false,
            seq: DEFAULT_SEQ,
            batch: DEFAULT_BATCH,
            vocab: DEFAULT_VOCAB,
            backend: None,
            budget: None,
            min_layers: crate::recommend::DEFAULT_MIN_LAYERS,
            max_layers: crate::recommend::DEFAULT_MAX_LAYERS,
            head_size: crate::recommend::DEFAULT_HEAD_SIZE,
            tolerance_pct: 100.0 * crate::recommend::DEFAULT_TOLERANCE,
            mode: Phase::Prefill,
            context: DEFAULT_CONTEXT,
            output_tokens: None,
        }
    }
}

/// Decode predictions at the request's context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodeAnswer {
    /// Tokens in the KV cache.
    pub context: u64,
    /// FLOPs of one step (b tokens).
    pub flops: u64,
    /// Per-step latency per backend with a decode model, fastest first.
    pub predictions: Vec<Prediction>,
    /// Generated tokens per second per backend (b per step), in the same order.
    pub tokens_per_s: Vec<f64>,
}

/// Prefill of the prompt plus the generated tokens, on one backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndToEnd {
    /// Backend.
    pub backend: String,
    /// Prompt tokens per sequence.
    pub prompt: u64,
    /// Generated tokens per sequence.
    pub output: u64,
    /// Prefill, ms.
    pub prefill_ms: f64,
    /// Mean decode step over the run, ms.
    pub decode_ms_per_token: f64,
    /// Prefill + output × mean decode, ms.
    pub total_ms: f64,
    /// 90% interval of the total, ms: both intervals' ends added (errors
    /// assumed fully correlated, so it is wide rather than narrow).
    pub interval_ms: [f64; 2],
}

/// Peak memory of the proposed shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanMemory {
    /// The decode context the decode estimate is for.
    pub context: u64,
    /// A prefill of `seq` tokens per sequence: the tensors alone.
    pub prefill: MemoryEstimate,
    /// A decode step at `context` (the KV cache included): the tensors alone.
    pub decode: MemoryEstimate,
    /// Per backend with measured overheads (`bench memory`): the same plus
    /// what that backend holds beyond tensors.
    pub backends: Vec<BackendMemory>,
}

/// Peak memory on one backend, its measured overheads included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendMemory {
    /// Backend.
    pub backend: String,
    /// Prefill.
    pub prefill: MemoryEstimate,
    /// Decode at the plan's context.
    pub decode: MemoryEstimate,
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
    /// Its architecture in words ([`Shape::describe_architecture`]).
    #[serde(default)]
    pub architecture: Option<String>,
    /// Its parameters.
    pub params: Option<PlanParams>,
    /// Its FLOPs per forward pass.
    pub flops: Option<u64>,
    /// What `best_backend`, `crossovers` and `recommendations` rank by.
    pub objective: Objective,
    /// Its predicted prefill latency per backend, fastest first.
    pub predictions: Vec<Prediction>,
    /// Its decode step at the request's context, where the profile has decode models.
    pub decode: Option<DecodeAnswer>,
    /// Prefill then `output_tokens` generated, per backend, fastest first (when asked).
    pub end_to_end: Vec<EndToEnd>,
    /// Its peak memory (f32).
    pub memory: Option<PlanMemory>,
    /// The fastest backend for it by `objective`.
    pub best_backend: Option<String>,
    /// Where the fastest backend changes as the shape is scaled along its
    /// depth:width ratio (empty with one backend or no change).
    pub crossovers: Vec<Crossover>,
    /// Shapes at the same budget.
    pub recommendations: Option<Recommendation>,
    /// The machine the profile describes, per backend ("flex: AMD EPYC (…), 2 cores").
    pub machines: Vec<String>,
    /// The session levels the profile was calibrated to, per backend and
    /// phase ([`crate::session::SessionLevel::describe`]); empty: the fit's own.
    #[serde(default)]
    pub sessions: Vec<String>,
    /// Backends of the profile without a decode model.
    pub without_decode: Vec<String>,
    /// Backends of the profile without measured memory overheads.
    pub without_memory: Vec<String>,
    /// Backends (or their decode models) left out because their operator
    /// model has no law for an operator of this architecture, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unpriced: Vec<String>,
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
        if !(1..=crate::shape::MAX_POSITIONS).contains(&self.context) {
            return Err(invalid(format!(
                "context {} is out of range: give 1 to {}",
                self.context,
                crate::shape::MAX_POSITIONS
            )));
        }
        if let Some(output) = self.output_tokens
            && !(1..=crate::shape::MAX_POSITIONS).contains(&output)
        {
            return Err(invalid(format!(
                "output tokens {output} is out of range: give 1 to {}",
                crate::shape::MAX_POSITIONS
            )));
        }
        Ok(())
    }

    /// What shapes are ranked by: end-to-end when output tokens are given,
    /// else the mode.
    pub fn objective(&self) -> Objective {
        match (self.output_tokens, self.mode) {
            (Some(output), _) => Objective::EndToEnd { output },
            (None, Phase::Decode) => Objective::Decode {
                context: self.context,
            },
            (None, Phase::Prefill) => Objective::Prefill,
        }
    }

    /// Positions: the request's, else enough for the prompt, the decode
    /// context and the generated tokens (at least GPT-2's 1024).
    fn positions(&self) -> u64 {
        let generated = self.seq.saturating_add(self.output_tokens.unwrap_or(0));
        self.positions
            .unwrap_or_else(|| DEFAULT_POSITIONS.max(self.seq).max(self.context).max(generated))
    }

    /// The proposed shape, if layers and width are given.
    pub fn proposed(&self) -> Result<Option<Shape>, ShapeError> {
        match (self.layers, self.d_model) {
            (Some(layers), Some(d_model)) => self.spec(layers, d_model, self.heads).validate().map(Some),
            _ => Ok(None),
        }
    }

    fn spec(&self, layers: u64, d_model: u64, heads: Option<u64>) -> ShapeSpec {
        self.architecture.apply(ShapeSpec {
            layers,
            d_model,
            heads,
            vocab: Some(self.vocab),
            seq: Some(self.seq),
            batch: Some(self.batch),
            positions: Some(self.positions()),
            ..ShapeSpec::default()
        })
    }

    /// The recommendation constraints for a budget.
    pub fn constraints(&self, budget: u64) -> Constraints {
        Constraints {
            min_layers: self.min_layers,
            max_layers: self.max_layers,
            head_size: self.head_size,
            tolerance: self.tolerance_pct / 100.0,
            vary_kv_heads: self.vary_kv_heads,
            vary_mlp_ratio: self.vary_mlp_ratio,
            ..Constraints::new(budget)
        }
    }
}

/// A checked request: the profile narrowed to the asked backend, the proposed
/// shape, the shape whose sequence, batch and vocabulary the alternatives
/// share, and the budget.
struct Resolved {
    /// Narrowed to the backends that can answer the objective.
    profile: Profile,
    /// What was left out because its operator model cannot price the shape.
    unpriced: Vec<String>,
    proposed: Option<Shape>,
    base: Shape,
    budget: Option<u64>,
    objective: Objective,
}

fn resolve(profile: &Profile, request: &PlanRequest) -> Result<Resolved, PlanError> {
    request.check()?;
    let mut profile = profile.clone();
    if let Some(name) = &request.backend {
        let only = profile.backend(name)?.clone();
        profile.backends = vec![only];
    }
    let objective = request.objective();
    profile.backends.retain(|b| objective.supported_by(b));
    if profile.backends.is_empty() {
        return Err(invalid(format!(
            "profile `{}` has no decode model{}: measure decode (`bench --mode decode`) and refit",
            profile.name,
            request
                .backend
                .as_ref()
                .map_or(String::new(), |b| format!(" for backend `{b}`"))
        )));
    }
    let proposed = request.proposed()?;
    let base = match proposed {
        Some(s) => s,
        // A budget alone: one block of heads of `head_size` (as many as the
        // key/value heads asked for, so they divide).
        None => {
            let heads = request.architecture.kv_heads.unwrap_or(1);
            let d_model = heads.saturating_mul(request.head_size);
            request.spec(1, d_model, Some(heads)).validate()?
        }
    };
    // The base has the architecture of every shape the answer prices: a
    // backend whose operator model lacks one of its operators is left out.
    let mut unpriced = vec![];
    for b in &mut profile.backends {
        if let Some(why) = b.decode.as_ref().and_then(|d| d.model.cannot_price(&base)) {
            unpriced.push(format!("{} decode: {why}", b.backend));
            b.decode = None;
        }
    }
    profile.backends.retain(|b| match b.model.cannot_price(&base) {
        Some(why) => {
            unpriced.push(format!("{}: {why}", b.backend));
            false
        }
        None => objective.supported_by(b),
    });
    if profile.backends.is_empty() {
        return Err(invalid(format!(
            "no backend of profile `{}` can price this architecture: {}",
            profile.name,
            unpriced.join("; ")
        )));
    }
    let budget = request
        .budget
        .or(proposed.map(|s| s.accounting().params.non_embedding));
    Ok(Resolved {
        profile,
        unpriced,
        proposed,
        base,
        budget,
        objective,
    })
}

/// Decode step predictions at `context` on every backend with a decode model.
fn decode_answer(profile: &Profile, shape: &Shape, context: u64) -> Option<DecodeAnswer> {
    let at = shape.with_seq(context).ok()?;
    let mut predictions: Vec<Prediction> = profile
        .backends
        .iter()
        .filter_map(|b| {
            let d = b.decode.as_ref()?;
            Some(Prediction {
                backend: b.backend.clone(),
                ..predict_backend(d, &at)
            })
        })
        .collect();
    if predictions.is_empty() {
        return None;
    }
    predictions.sort_by(|a, b| a.latency_ms.total_cmp(&b.latency_ms));
    let tokens_per_s = predictions
        .iter()
        .map(|p| at.batch() as f64 * 1e3 / p.latency_ms)
        .collect();
    Some(DecodeAnswer {
        context,
        flops: Phase::Decode.flops(&at),
        predictions,
        tokens_per_s,
    })
}

fn end_to_end(profile: &Profile, shape: &Shape, output: u64) -> Vec<EndToEnd> {
    let mut all: Vec<EndToEnd> = profile
        .backends
        .iter()
        .filter_map(|b| {
            let decode = b.decode.as_ref()?;
            let prefill = predict_backend(b, shape);
            let per_token = mean_decode_ms(b, shape, output)?;
            let n = output as f64;
            let [low, high] = crate::confidence::widen(
                decode.residuals.ratio_at(INTERVAL[0]),
                decode.residuals.ratio_at(INTERVAL[1]),
                crate::confidence::run_to_run_pct(decode),
            );
            Some(EndToEnd {
                backend: b.backend.clone(),
                prompt: shape.seq(),
                output,
                prefill_ms: prefill.latency_ms,
                decode_ms_per_token: per_token,
                total_ms: prefill.latency_ms + n * per_token,
                interval_ms: [
                    prefill.interval_ms[0] + n * per_token * low,
                    prefill.interval_ms[1] + n * per_token * high,
                ],
            })
        })
        .collect();
    all.sort_by(|a, b| a.total_ms.total_cmp(&b.total_ms));
    all
}

/// Answers a request from a profile.
pub fn plan(profile: &Profile, request: &PlanRequest) -> Result<Plan, PlanError> {
    let Resolved {
        profile,
        unpriced,
        proposed,
        base,
        budget,
        objective,
    } = resolve(profile, request)?;
    let predictions = proposed.map(|s| predict_all(&profile, &s)).unwrap_or_default();
    let decode = proposed.and_then(|s| decode_answer(&profile, &s, request.context));
    let end_to_end = match (proposed, request.output_tokens) {
        (Some(s), Some(output)) => end_to_end(&profile, &s, output),
        _ => vec![],
    };
    let recommendations = budget.map(|b| {
        recommend(
            &profile,
            &base,
            proposed.as_ref(),
            &request.constraints(b),
            objective,
        )
    });
    let crossovers = proposed
        .map(|s| backend_scaling(&profile, &s, objective).crossovers)
        .unwrap_or_default();
    let best_backend = proposed.and_then(|s| {
        profile
            .backends
            .iter()
            .filter_map(|b| Some((b, objective.latency_ms(b, &s)?)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(b, _)| b.backend.clone())
    });
    let memory = proposed.and_then(|s| {
        let at = s.with_seq(request.context).ok()?;
        Some(PlanMemory {
            context: request.context,
            prefill: memory::estimate(&s, Phase::Prefill),
            decode: memory::estimate(&at, Phase::Decode),
            backends: profile
                .backends
                .iter()
                .filter_map(|b| {
                    let c = b.memory.as_ref()?;
                    Some(BackendMemory {
                        backend: b.backend.clone(),
                        prefill: memory::estimate_on(Some(c), &s, Phase::Prefill),
                        decode: memory::estimate_on(Some(c), &at, Phase::Decode),
                    })
                })
                .collect(),
        })
    });
    Ok(Plan {
        profile: profile.name.clone(),
        shape: proposed,
        architecture: proposed.map(|s| s.describe_architecture()),
        params: proposed.map(|s| {
            let a = s.accounting();
            PlanParams {
                total: a.params.total,
                non_embedding: a.params.non_embedding,
            }
        }),
        flops: proposed.map(|s| s.accounting().flops.total),
        objective,
        best_backend,
        predictions,
        decode,
        end_to_end,
        memory,
        crossovers,
        recommendations,
        machines: profile
            .backends
            .iter()
            .map(|b| format!("{}: {}", b.backend, crate::machine::describe(&b.fingerprint)))
            .collect(),
        sessions: profile
            .backends
            .iter()
            .flat_map(|b| {
                let decode = b
                    .decode
                    .as_deref()
                    .and_then(|d| d.session.as_ref())
                    .map(|l| (Phase::Decode, l));
                let prefill = b.session.as_ref().map(|l| (Phase::Prefill, l));
                prefill
                    .into_iter()
                    .chain(decode)
                    .map(|(phase, l)| l.describe(&b.backend, phase))
            })
            .collect(),
        without_decode: names_where(&profile, |b| b.decode.is_none()),
        without_memory: names_where(&profile, |b| b.memory.is_none()),
        unpriced,
    })
}

fn names_where(profile: &Profile, pick: impl Fn(&crate::profile::BackendProfile) -> bool) -> Vec<String> {
    profile
        .backends
        .iter()
        .filter(|b| pick(b))
        .map(|b| b.backend.clone())
        .collect()
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
        objective,
        ..
    } = resolve(profile, request)?;
    let depth_svg = budget.map(|b| {
        render_svg(&depth_chart(
            &profile,
            &base,
            proposed.as_ref(),
            &request.constraints(b),
            objective,
        ))
    });
    let measured_max = profile.backends.iter().map(|b| b.validity.params_total[1]).max();
    let params_svg = proposed.map(|s| {
        render_svg(&params_chart(
            &backend_scaling(&profile, &s, objective),
            Some(&s),
            measured_max,
            objective,
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
    fn decode_mode_ranks_by_the_decode_model() {
        let profile = crate::default_profile();
        let req = PlanRequest {
            mode: Phase::Decode,
            context: 1024,
            ..request(12, 768)
        };
        let p = plan(&profile, &req).unwrap();
        assert_eq!(p.objective, Objective::Decode { context: 1024 });
        let d = p.decode.as_ref().expect("the default profile has decode models");
        assert_eq!(d.context, 1024);
        let at = p.shape.unwrap().with_seq(1024).unwrap();
        for (pr, tps) in d.predictions.iter().zip(&d.tokens_per_s) {
            let b = profile.backend(&pr.backend).unwrap().decode.as_ref().unwrap();
            assert_eq!(pr.latency_ms, b.model.predict_ms(&at));
            assert!((tps * pr.latency_ms - 1e3).abs() < 1e-6);
        }
        assert_eq!(p.best_backend.as_deref(), Some(d.predictions[0].backend.as_str()));
        let r = p.recommendations.unwrap();
        assert_eq!(r.objective, p.objective);
        let first = &r.candidates[0];
        let shape = p
            .shape
            .unwrap()
            .with_depth_width(first.layers, first.d_model, first.heads)
            .unwrap();
        let b = profile.backend(&first.backend).unwrap();
        assert_eq!(Some(first.latency_ms), p.objective.latency_ms(b, &shape));
        let m = p.memory.unwrap();
        assert_eq!(m.decode.kv_cache_bytes, 2 * 12 * 1024 * 768 * 4);
    }

    #[test]
    fn output_tokens_rank_end_to_end() {
        let req = PlanRequest {
            output_tokens: Some(256),
            ..request(8, 512)
        };
        let p = plan(&crate::default_profile(), &req).unwrap();
        assert_eq!(p.objective, Objective::EndToEnd { output: 256 });
        assert!(!p.end_to_end.is_empty());
        for e in &p.end_to_end {
            assert!((e.total_ms - (e.prefill_ms + 256.0 * e.decode_ms_per_token)).abs() < 1e-9);
            assert!(e.interval_ms[0] <= e.total_ms && e.total_ms <= e.interval_ms[1]);
        }
        assert_eq!(p.best_backend.as_deref(), Some(p.end_to_end[0].backend.as_str()));
    }

    #[test]
    fn decode_needs_a_profile_with_decode_models() {
        let mut profile = crate::default_profile();
        for b in &mut profile.backends {
            b.decode = None;
        }
        let prefill = plan(&profile, &request(8, 512)).unwrap();
        assert!(prefill.decode.is_none() && prefill.end_to_end.is_empty());
        let req = PlanRequest {
            mode: Phase::Decode,
            ..request(8, 512)
        };
        let e = plan(&profile, &req).unwrap_err().to_string();
        assert!(e.contains("no decode model"), "{e}");
        let req = PlanRequest {
            context: 0,
            ..request(8, 512)
        };
        assert!(plan(&profile, &req).unwrap_err().to_string().contains("context"));
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
