//! The model families and how each is fitted.

use linregress::fit_low_level_regression_model;
use planner::Shape;
use planner::features::{Term, term_value_in};
use planner::model::{Coefficient, LatencyModel, TermCoefficient, Variable};
use planner::parallelism::Parallelism;

use crate::lstsq::nnls;
use crate::{FitError, Point};

/// What to fit.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    /// Non-negative combination of physical terms, fitted to relative error.
    Physics {
        /// The terms.
        terms: Vec<Term>,
        /// Which operators the backend splits across threads, for the terms
        /// that count them (`None`: they are 0).
        parallelism: Option<Parallelism>,
    },
    /// OLS of t on raw variables (TR121's linear model); intercept added.
    Linear(Vec<Variable>),
    /// OLS of ln t on ln variables (power laws, log-log); intercept added.
    LogLinear(Vec<Variable>),
    /// Σ operators priced by these laws, calibrated on the points
    /// (`scale·Σ + per_layer·L + constant`, non-negative, relative error).
    Operators {
        /// The step the graph is built for.
        phase: planner::Phase,
        /// The backend's cost laws (same machine as the points).
        laws: Box<planner::costlaw::OperatorLaws>,
    },
}

fn fit_operators(
    phase: planner::Phase,
    laws: &planner::costlaw::OperatorLaws,
    points: &[Point],
) -> Result<Fitted, FitError> {
    let rows = points
        .iter()
        .map(|p| {
            let sum = planner::compose::operator_sum(laws, &p.shape, phase)
                .map_err(|e| FitError::Degenerate(format!("operator model: {e}")))?;
            Ok(crate::operators::CalibrationRow {
                operator_sum_ms: sum.total_ms,
                cold_gap_ms: sum.cold_gap_ms,
                shape: p.shape,
                measured_ms: p.median_ms,
            })
        })
        .collect::<Result<Vec<_>, FitError>>()?;
    let calibration = crate::operators::calibrate(&rows);
    let y: Vec<f64> = rows.iter().map(|r| r.measured_ms).collect();
    let fitted: Vec<f64> = rows
        .iter()
        .map(|r| calibration.apply(r.operator_sum_ms, r.cold_gap_ms, &r.shape))
        .collect();
    let (r2, adj_r2) = r2(&y, &fitted, 4);
    Ok(Fitted {
        model: LatencyModel::Operators {
            phase,
            calibration,
            laws: Box::new(laws.clone()),
        },
        r2,
        adj_r2,
    })
}

/// A fitted model with its in-sample fit quality.
#[derive(Debug, Clone)]
pub struct Fitted {
    /// The model.
    pub model: LatencyModel,
    /// R² of the fitted quantity (t, or ln t for log models).
    pub r2: f64,
    /// Adjusted R².
    pub adj_r2: f64,
}

fn r2(y: &[f64], fitted: &[f64], params: usize) -> (f64, f64) {
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let ss_tot: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    let ss_res: f64 = y.iter().zip(fitted).map(|(a, b)| (a - b).powi(2)).sum();
    let r2 = if ss_tot > 0.0 { 1.0 - ss_res / ss_tot } else { 0.0 };
    let dof = n - params as f64;
    let adj = if dof > 0.0 {
        1.0 - (1.0 - r2) * (n - 1.0) / dof
    } else {
        f64::NAN
    };
    (r2, adj)
}

fn varies(points: &[Point], f: impl Fn(&Shape) -> f64) -> bool {
    let first = f(&points[0].shape);
    points.iter().any(|p| f(&p.shape) != first)
}

/// Keeps each column (in order) only if the intercept and the columns kept
/// before it do not determine it: in a training fold where every shape has
/// 64-wide heads, ln h = ln d − ln 64 exactly, and OLS on both returned
/// coefficients of ±10¹⁴ and infinite predictions for the held-out shapes.
fn independent_columns(columns: Vec<(Variable, Vec<f64>)>) -> (Vec<Variable>, Vec<Vec<f64>>) {
    let n = columns.first().map_or(0, |(_, c)| c.len());
    // Orthonormal basis of what is kept, starting with the intercept.
    let mut basis: Vec<Vec<f64>> = vec![vec![1.0 / (n as f64).sqrt(); n]];
    let mut kept = (vec![], vec![]);
    for (v, column) in columns {
        let mut r = column.clone();
        for q in &basis {
            let dot: f64 = r.iter().zip(q).map(|(a, b)| a * b).sum();
            r.iter_mut().zip(q).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = r.iter().map(|a| a * a).sum::<f64>().sqrt();
        let scale = column.iter().map(|a| a * a).sum::<f64>().sqrt().max(1.0);
        if norm > 1e-8 * scale {
            basis.push(r.iter().map(|a| a / norm).collect());
            kept.0.push(v);
            kept.1.push(column);
        }
    }
    kept
}

/// β (intercept first), their standard errors, and the fitted values.
struct OlsFit(Vec<f64>, Vec<f64>, Vec<f64>);

/// OLS with an intercept on the given regressors.
fn ols(y: &[f64], xs: &[Vec<f64>]) -> Result<OlsFit, FitError> {
    let n = y.len();
    let p = xs.len() + 1;
    if n <= p {
        return Err(FitError::TooFewPoints { need: p + 1, have: n });
    }
    let mut data = Vec::with_capacity(n * (p + 1));
    for i in 0..n {
        data.push(y[i]);
        data.push(1.0);
        data.extend(xs.iter().map(|x| x[i]));
    }
    let model =
        fit_low_level_regression_model(&data, n, p + 1).map_err(|e| FitError::Regression(e.to_string()))?;
    let beta = model.parameters().to_vec();
    let fitted: Vec<f64> = (0..n)
        .map(|i| beta[0] + xs.iter().zip(&beta[1..]).map(|(x, b)| x[i] * b).sum::<f64>())
        .collect();
    Ok(OlsFit(beta, model.se().to_vec(), fitted))
}

impl ModelSpec {
    /// Fits the model to the points.
    pub fn fit(&self, points: &[Point]) -> Result<Fitted, FitError> {
        if points.is_empty() {
            return Err(FitError::TooFewPoints { need: 1, have: 0 });
        }
        match self {
            ModelSpec::Physics { terms, parallelism } => fit_physics(terms, parallelism.as_ref(), points),
            ModelSpec::Operators { phase, laws } => fit_operators(*phase, laws, points),
            ModelSpec::Linear(vars) | ModelSpec::LogLinear(vars) => {
                let log = matches!(self, ModelSpec::LogLinear(_));
                // A variable constant in the data is unidentifiable: leave it out.
                let vars: Vec<Variable> = vars
                    .iter()
                    .copied()
                    .filter(|v| varies(points, |s| v.value(s)))
                    .collect();
                let tr = |x: f64| if log { x.ln() } else { x };
                let y: Vec<f64> = points.iter().map(|p| tr(p.median_ms)).collect();
                let (vars, xs): (Vec<Variable>, Vec<Vec<f64>>) = independent_columns(
                    vars.into_iter()
                        .map(|v| (v, points.iter().map(|p| tr(v.value(&p.shape))).collect()))
                        .collect(),
                );
                let OlsFit(beta, se, fitted) = ols(&y, &xs)?;
                let (r2, adj_r2) = r2(&y, &fitted, beta.len());
                let coefficients = std::iter::once(Variable::Intercept)
                    .chain(vars)
                    .zip(beta.iter().zip(&se))
                    .map(|(variable, (&value, &se))| Coefficient {
                        variable,
                        value,
                        std_error: se.is_finite().then_some(se),
                    })
                    .collect();
                let model = if log {
                    LatencyModel::LogLinear { coefficients }
                } else {
                    LatencyModel::Linear { coefficients }
                };
                Ok(Fitted { model, r2, adj_r2 })
            }
        }
    }
}

/// The smallest relative error a point is weighted as having. The models'
/// own held-out error is a few percent, so a point measured to 0.5% must not
/// outweigh its neighbours tenfold: the fit would bend to it and miss the rest.
const MODEL_ERROR_FLOOR: f64 = 0.03;

/// Row weight: relative error, tempered by each point's own uncertainty.
fn weight(p: &Point) -> f64 {
    1.0 / (p.median_ms * (p.rel_uncertainty.powi(2) + MODEL_ERROR_FLOOR.powi(2)).sqrt())
}

fn fit_physics(
    terms: &[Term],
    parallelism: Option<&Parallelism>,
    points: &[Point],
) -> Result<Fitted, FitError> {
    let w: Vec<f64> = points.iter().map(weight).collect();
    let y: Vec<f64> = points.iter().zip(&w).map(|(p, w)| p.median_ms * w).collect();
    let columns: Vec<Vec<f64>> = terms
        .iter()
        .map(|&t| {
            points
                .iter()
                .zip(&w)
                .map(|(p, w)| term_value_in(t, &p.shape, parallelism) * w)
                .collect()
        })
        .collect();
    let x = nnls(&columns, &y);
    // Standard errors: weighted OLS (no intercept) restricted to the active terms.
    let active: Vec<usize> = (0..terms.len()).filter(|&k| x[k] > 0.0).collect();
    if active.is_empty() {
        return Err(FitError::Degenerate("no term has a positive coefficient".into()));
    }
    let se = active_set_se(
        &active.iter().map(|&k| columns[k].clone()).collect::<Vec<_>>(),
        &y,
    );
    let model = LatencyModel::Physics {
        terms: active
            .iter()
            .enumerate()
            .map(|(i, &k)| TermCoefficient {
                term: terms[k],
                value: x[k],
                std_error: se.as_ref().map(|s| s[i]).filter(|v| v.is_finite()),
            })
            .collect(),
        // Kept only where a chosen term reads it.
        parallelism: parallelism
            .filter(|_| active.iter().any(|&k| terms[k].reads_parallelism()))
            .cloned(),
    };
    let measured: Vec<f64> = points.iter().map(|p| p.median_ms).collect();
    let predicted: Vec<f64> = points.iter().map(|p| model.predict_ms(&p.shape)).collect();
    let (r2, adj_r2) = r2(&measured, &predicted, active.len());
    Ok(Fitted { model, r2, adj_r2 })
}

/// Standard errors of a no-intercept least-squares fit: σ²·(XᵀX)⁻¹.
fn active_set_se(columns: &[Vec<f64>], y: &[f64]) -> Option<Vec<f64>> {
    let (n, p) = (y.len(), columns.len());
    if n <= p {
        return None;
    }
    let beta = crate::lstsq::lstsq(columns, y)?;
    let ss: f64 = (0..n)
        .map(|i| (y[i] - (0..p).map(|j| columns[j][i] * beta[j]).sum::<f64>()).powi(2))
        .sum();
    let sigma2 = ss / (n - p) as f64;
    // (XᵀX)⁻¹ column by column: solve XᵀX·c = e_j through least squares on X.
    let xtx: Vec<Vec<f64>> = (0..p)
        .map(|a| {
            (0..p)
                .map(|b| columns[a].iter().zip(&columns[b]).map(|(u, v)| u * v).sum())
                .collect()
        })
        .collect();
    let inv_diag: Option<Vec<f64>> = (0..p)
        .map(|j| {
            let e: Vec<f64> = (0..p).map(|i| if i == j { 1.0 } else { 0.0 }).collect();
            crate::lstsq::lstsq(&xtx, &e).map(|c| c[j])
        })
        .collect();
    Some(inv_diag?.iter().map(|d| (sigma2 * d).max(0.0).sqrt()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use planner::ShapeSpec;

    fn grid() -> Vec<Shape> {
        let mut v = vec![];
        for (l, d) in [
            (1, 64),
            (2, 128),
            (4, 128),
            (2, 256),
            (8, 256),
            (4, 512),
            (12, 384),
            (6, 768),
            (3, 1024),
        ] {
            for (i, n) in [64, 128, 256].into_iter().enumerate() {
                // Heads vary independently of width so every variable is identifiable.
                let heads = Some((d / 64).max(1) * [1, 2, 4][i % 3]);
                v.push(
                    ShapeSpec {
                        seq: Some(n),
                        heads,
                        ..ShapeSpec::new(l, d)
                    }
                    .validate()
                    .unwrap(),
                );
            }
        }
        v
    }

    fn points(f: impl Fn(&Shape) -> f64) -> Vec<Point> {
        grid()
            .into_iter()
            .map(|shape| Point {
                median_ms: f(&shape),
                shape,
                family: crate::Family::Other("f".into()),
                rel_uncertainty: 0.01,
            })
            .collect()
    }

    #[test]
    fn physics_recovers_known_coefficients() {
        let truth = [
            (Term::Constant, 0.3),
            (Term::Layers, 0.05),
            (Term::MatmulGflop, 6.0),
            (Term::LmHeadGflop, 8.0),
        ];
        let pts = points(|s| truth.iter().map(|(t, c)| c * term_value_in(*t, s, None)).sum());
        let spec = ModelSpec::Physics {
            terms: vec![
                Term::Constant,
                Term::Layers,
                Term::MatmulGflop,
                Term::LmHeadGflop,
                Term::AttentionGflop,
            ],
            parallelism: None,
        };
        let LatencyModel::Physics { terms, .. } = spec.fit(&pts).unwrap().model else {
            panic!()
        };
        for (t, c) in truth {
            let got = terms.iter().find(|x| x.term == t).map_or(0.0, |x| x.value);
            assert!((got - c).abs() / c < 1e-6, "{t:?}: {got} vs {c}");
        }
        // The unused term is zero (left out of the active set).
        assert!(
            terms
                .iter()
                .all(|x| x.term != Term::AttentionGflop || x.value < 1e-9)
        );
    }

    #[test]
    fn a_regressor_the_others_determine_is_left_out() {
        // Heads are always d/64 here, so ln h = ln d − ln 64: ln h must go.
        let pts: Vec<Point> = [
            (1, 64),
            (2, 128),
            (4, 256),
            (2, 512),
            (8, 256),
            (6, 768),
            (3, 1024),
        ]
        .into_iter()
        .map(|(l, d)| {
            let shape = ShapeSpec::new(l, d).validate().unwrap();
            Point {
                median_ms: 0.01 * l as f64 * (d as f64).powf(1.5),
                shape,
                family: crate::Family::Other(String::new()),
                rel_uncertainty: 0.01,
            }
        })
        .collect();
        let fitted = ModelSpec::LogLinear(vec![Variable::Layers, Variable::DModel, Variable::Heads])
            .fit(&pts)
            .unwrap();
        let LatencyModel::LogLinear { coefficients } = &fitted.model else {
            panic!("log-linear")
        };
        let vars: Vec<Variable> = coefficients.iter().map(|c| c.variable).collect();
        assert_eq!(vars, [Variable::Intercept, Variable::Layers, Variable::DModel]);
        for p in &pts {
            let ratio = fitted.model.predict_ms(&p.shape) / p.median_ms;
            assert!((ratio - 1.0).abs() < 1e-6, "{ratio}");
        }
    }

    #[test]
    fn power_law_recovers_exponent() {
        let pts = points(|s| 0.002 * (s.accounting().params.total as f64).powf(0.55));
        let LatencyModel::LogLinear { coefficients } = ModelSpec::LogLinear(vec![Variable::ParamsTotal])
            .fit(&pts)
            .unwrap()
            .model
        else {
            panic!()
        };
        assert!((coefficients[1].value - 0.55).abs() < 1e-9);
        assert!((coefficients[0].value - 0.002f64.ln()).abs() < 1e-9);
    }

    #[test]
    fn linear_recovers_tr121_style_coefficients_with_noise_free_data() {
        let pts = points(|s| {
            1.0 + 0.0179 * s.layers() as f64 + 0.0015 * s.d_model() as f64 + 0.0008 * s.heads() as f64
        });
        let f = ModelSpec::Linear(vec![
            Variable::Layers,
            Variable::DModel,
            Variable::Heads,
            Variable::Seq,
        ])
        .fit(&pts)
        .unwrap();
        let LatencyModel::Linear { coefficients } = &f.model else {
            panic!()
        };
        let get = |v| coefficients.iter().find(|c| c.variable == v).unwrap().value;
        assert!((get(Variable::Layers) - 0.0179).abs() < 1e-9);
        assert!((get(Variable::DModel) - 0.0015).abs() < 1e-9);
        assert!(f.r2 > 0.999999);
    }
}
