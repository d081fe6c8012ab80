//! Latency models as stored in profiles, and their evaluation.

use serde::{Deserialize, Serialize};

use crate::compose::{Calibration, operator_sum};
use crate::costlaw::OperatorLaws;
use crate::features::{Term, term_value_in};
use crate::phase::Phase;
use crate::shape::{Shape, ShapeSpec};

/// A raw architecture variable used by the TR121-style regression models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variable {
    /// The intercept (1).
    Intercept,
    /// L.
    Layers,
    /// d_model.
    DModel,
    /// h.
    Heads,
    /// n.
    Seq,
    /// b.
    Batch,
    /// Vocabulary V.
    Vocab,
    /// Total parameters.
    ParamsTotal,
    /// Non-embedding parameters.
    ParamsNonEmbedding,
}

impl Variable {
    /// Value of the variable for a shape.
    pub fn value(self, s: &Shape) -> f64 {
        match self {
            Variable::Intercept => 1.0,
            Variable::Layers => s.layers() as f64,
            Variable::DModel => s.d_model() as f64,
            Variable::Heads => s.heads() as f64,
            Variable::Seq => s.seq() as f64,
            Variable::Batch => s.batch() as f64,
            Variable::Vocab => s.vocab() as f64,
            Variable::ParamsTotal => s.accounting().params.total as f64,
            Variable::ParamsNonEmbedding => s.accounting().params.non_embedding as f64,
        }
    }

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Variable::Intercept => "intercept",
            Variable::Layers => "L",
            Variable::DModel => "d_model",
            Variable::Heads => "h",
            Variable::Seq => "n",
            Variable::Batch => "b",
            Variable::Vocab => "V",
            Variable::ParamsTotal => "params",
            Variable::ParamsNonEmbedding => "params_non_embedding",
        }
    }
}

/// A fitted coefficient of a regression on raw variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Coefficient {
    /// What it multiplies.
    pub variable: Variable,
    /// Fitted value.
    pub value: f64,
    /// Standard error, where the fit gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std_error: Option<f64>,
}

/// A fitted coefficient of the physics-informed model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TermCoefficient {
    /// The term it multiplies.
    pub term: Term,
    /// Non-negative value in [`Term::coefficient_unit`].
    pub value: f64,
    /// Standard error (OLS on the active set), where computable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std_error: Option<f64>,
}

/// A latency model: maps a shape to milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LatencyModel {
    /// t = Σ c_k · term_k with c_k ≥ 0.
    Physics {
        /// Coefficients of the selected terms.
        terms: Vec<TermCoefficient>,
        /// Which operators the backend splits across threads, measured by
        /// `bench ops`, for the terms that read it ([`Term::reads_parallelism`]);
        /// absent: the wakes are 0 and the one-thread GEMMs those below
        /// burn-flex 0.22's threshold (see [`Term::DecodeSerialGemmWeightMb`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parallelism: Option<crate::parallelism::Parallelism>,
    },
    /// t = Σ β_k · x_k (TR121's linear model).
    Linear {
        /// β for each variable, the intercept included.
        coefficients: Vec<Coefficient>,
    },
    /// ln t = Σ β_k · ln x_k (+ intercept): power laws and the log-log model.
    LogLinear {
        /// β for each variable; the intercept multiplies 1, not ln 1.
        coefficients: Vec<Coefficient>,
    },
    /// t = scale · Σ operators + per_layer · L + constant: the step's
    /// operator graph priced by measured cost laws ([`crate::compose`]).
    Operators {
        /// Which step the graph is built for.
        phase: Phase,
        /// The correction fitted on whole-model anchors.
        calibration: Calibration,
        /// The backend's operator cost laws.
        laws: Box<OperatorLaws>,
    },
}

impl LatencyModel {
    /// Predicted latency in ms (may be non-positive for a linear model far out of range).
    pub fn predict_ms(&self, shape: &Shape) -> f64 {
        match self {
            LatencyModel::Physics { terms, parallelism } => terms
                .iter()
                .map(|c| c.value * term_value_in(c.term, shape, parallelism.as_ref()))
                .sum(),
            LatencyModel::Linear { coefficients } => coefficients
                .iter()
                .map(|c| c.value * c.variable.value(shape))
                .sum(),
            LatencyModel::LogLinear { coefficients } => coefficients
                .iter()
                .map(|c| match c.variable {
                    Variable::Intercept => c.value,
                    v => c.value * v.value(shape).ln(),
                })
                .sum::<f64>()
                .exp(),
            LatencyModel::Operators {
                phase,
                calibration,
                laws,
            } => match operator_sum(laws, shape, *phase) {
                Ok(sum) => calibration.apply(sum.total_ms, sum.cold_gap_ms, shape),
                // `check` makes sure every class of the graph has a law.
                Err(_) => f64::NAN,
            },
        }
    }

    /// Why this model cannot price `shape`: an operator model without a law
    /// for one of the shape's operator classes (a profile measured before
    /// today's architectures has none for RMSNorm, RoPE or the gated MLP).
    pub fn cannot_price(&self, shape: &Shape) -> Option<String> {
        match self {
            LatencyModel::Operators { phase, laws, .. } => operator_sum(laws, shape, *phase).err().map(|e| {
                format!(
                    "{e}: its operator model cannot price {}",
                    shape.architecture_suffix()
                )
            }),
            _ => None,
        }
    }

    /// Checks that every number is finite and physics coefficients are non-negative.
    pub fn check(&self) -> Result<(), String> {
        let values: Vec<f64> = match self {
            LatencyModel::Physics { terms, .. } => {
                if terms.is_empty() {
                    return Err("physics model has no terms".into());
                }
                if let Some(t) = terms.iter().find(|t| t.value < 0.0) {
                    return Err(format!("physics coefficient `{}` is negative", t.term.name()));
                }
                terms.iter().map(|t| t.value).collect()
            }
            LatencyModel::Linear { coefficients } | LatencyModel::LogLinear { coefficients } => {
                coefficients.iter().map(|c| c.value).collect()
            }
            LatencyModel::Operators {
                phase,
                calibration,
                laws,
            } => {
                let c = calibration;
                let mut values = vec![c.scale, c.per_layer_ms, c.per_layer_sequence_ms, c.constant_ms];
                for law in &laws.laws {
                    values.extend(law.base.coefficients());
                    values.extend(law.smoothing);
                    values.extend(law.points.iter().map(|p| p.ms));
                }
                values.extend(laws.streams.iter().map(|p| p.bytes_per_ms));
                if values.iter().any(|v| *v < 0.0) {
                    return Err("operator model has a negative coefficient or time".into());
                }
                // Every class of the phase's graph must have a law.
                let probe = ShapeSpec::new(1, 64).validate().expect("a valid shape");
                operator_sum(laws, &probe, *phase).map_err(|e| format!("operator model: {e}"))?;
                values
            }
        };
        if values.iter().any(|v| !v.is_finite()) {
            return Err("model has a non-finite coefficient".into());
        }
        Ok(())
    }
}
