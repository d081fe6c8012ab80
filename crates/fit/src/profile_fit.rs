//! From measured points to a profile entry: fit every model, cross-validate,
//! select the physics terms, and collect what the planner needs.

use std::collections::BTreeMap;

use planner::features::{Term, term_value_in};
use planner::model::Variable;
use planner::parallelism::Parallelism;
use planner::profile::{Accuracy, AlternativeModel, BackendProfile, DeviceClass, Residuals, Validity};

use crate::cv::{k_fold, leave_iso_families_out};
use crate::metrics::{accuracy, mean_accuracy};
use crate::models::{Fitted, ModelSpec};
use crate::regimes::segmented;
use crate::{FitError, Point};

/// Fewest measured shapes a backend needs to be fitted.
pub const MIN_POINTS: usize = 8;

/// Folds of the k-fold cross-validation.
pub const FOLDS: usize = 10;

/// Repetitions of the k-fold cross-validation, each with its own split. With
/// 30–60 shapes one split's luck moves the MAPE by a point (5.0–5.7% for one
/// model over 50 splits); the mean over ten splits does not depend on it.
pub const REPEATS: usize = 10;

/// Probabilities at which held-out residual ratios are stored.
pub const RESIDUAL_PROBABILITIES: [f64; 9] = [0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975];

/// A term is kept only if it lowers the held-out MAPE by at least this (points).
pub const MIN_TERM_GAIN_PCT: f64 = 0.1;

/// Everything fitted for one backend, for the profile and the report.
#[derive(Debug, Clone)]
pub struct BackendFit {
    /// The profile entry.
    pub profile: BackendProfile,
    /// Held-out (k-fold) predictions of the chosen model, per point: the
    /// median over the repetitions.
    pub held_out_ms: Vec<f64>,
    /// Further checks, as (model, accuracy): nested k-fold of the physics model with its
    /// term selection, and leave-one-iso-family-out of it and of each alternative.
    pub further_checks: Vec<(String, Accuracy)>,
    /// Terms tried in stepwise selection: (terms, k-fold MAPE).
    pub selection: Vec<(Vec<Term>, f64)>,
}

/// The comparison models: name and spec.
pub fn alternative_specs() -> Vec<(&'static str, ModelSpec)> {
    use Variable::*;
    vec![
        (
            "tr121_linear",
            ModelSpec::Linear(vec![Layers, DModel, Heads, Seq, Batch]),
        ),
        ("power_law_total", ModelSpec::LogLinear(vec![ParamsTotal])),
        (
            "power_law_non_embedding",
            ModelSpec::LogLinear(vec![ParamsNonEmbedding]),
        ),
        (
            "loglog",
            ModelSpec::LogLinear(vec![Layers, DModel, Heads, Seq, Batch, Vocab]),
        ),
    ]
}

/// Held-out predictions of every repetition of k-fold, and their metrics
/// averaged over the repetitions.
fn held_out_accuracy(spec: &ModelSpec, points: &[Point]) -> Result<(Vec<Vec<f64>>, Accuracy), FitError> {
    let measured: Vec<f64> = points.iter().map(|p| p.median_ms).collect();
    let mut repetitions = Vec::with_capacity(REPEATS);
    let mut metrics = Vec::with_capacity(REPEATS);
    for r in 0..REPEATS {
        let predicted = k_fold(spec, points, FOLDS, r)?;
        metrics.push(accuracy("", &predicted, &measured));
        repetitions.push(predicted);
    }
    Ok((
        repetitions,
        mean_accuracy(&format!("{FOLDS}-fold ×{REPEATS}"), &metrics),
    ))
}

/// Per point, the median of its held-out predictions over the repetitions.
fn median_prediction(repetitions: &[Vec<f64>], point: usize) -> f64 {
    let mut v: Vec<f64> = repetitions.iter().map(|r| r[point]).collect();
    v.sort_by(f64::total_cmp);
    crate::stats::median_sorted(&v)
}

fn family_out_accuracy(spec: &ModelSpec, points: &[Point]) -> Option<Accuracy> {
    let (idx, predicted) = leave_iso_families_out(spec, points).ok()?;
    if idx.is_empty() {
        return None;
    }
    let measured: Vec<f64> = idx.iter().map(|&i| points[i].median_ms).collect();
    Some(accuracy("leave-one-iso-family-out", &predicted, &measured))
}

/// Where stepwise selection starts, and what the chosen set must hold.
struct Selection {
    /// Start sets: nothing, and the terms physics says dominate (FLOPs in
    /// prefill, bytes read in decode).
    starts: Vec<Vec<Term>>,
    /// A decode step reads the whole KV cache, so its cost grows with the
    /// context; a set without any term that does predicts the same step at
    /// c = 512 and 2048. k-fold alone can pick such a set when few shapes
    /// differ only in context (it did, with `decode_parallel_wakes`, on the
    /// Zen 4 data, and missed the measured context slope held out), so a
    /// decode set must hold one of these to be chosen. Empty: no constraint.
    context_terms: Vec<Term>,
}

impl Selection {
    fn of(phase: planner::Phase) -> Self {
        match phase {
            planner::Phase::Prefill => Selection {
                starts: vec![vec![], vec![Term::MatmulGflop, Term::LmHeadGflop]],
                context_terms: vec![],
            },
            planner::Phase::Decode => Selection {
                starts: vec![vec![], vec![Term::DecodeWeightMb, Term::KvCacheMb]],
                context_terms: vec![Term::KvCacheMb, Term::DecodeAttentionGflop],
            },
        }
    }
}

/// Stepwise selection of physics terms among `candidates` by k-fold MAPE.
/// From each start set, the best of all moves (add a term, drop one, swap
/// one chosen for one left out) is taken while it lowers the held-out MAPE by
/// at least [`MIN_TERM_GAIN_PCT`]; the better end point wins. Forward steps
/// alone stop at the first local minimum (a term that is best alone can be
/// worse in company), hence the drops, swaps and a physical start set.
///
/// Only a set that holds one of `context_terms` (where any is a candidate)
/// can be chosen ([`Selection::context_terms`]). Each start is then walked
/// twice: through every set, and only through sets that hold one. A walk
/// through sets without one can end at a better set with one (flex decode
/// on the Xeon data does); where it ends without one, the restricted walk
/// still ends with one.
fn select_terms(
    points: &[Point],
    candidates: &[Term],
    selection: &Selection,
    parallelism: Option<&Parallelism>,
) -> (Vec<Term>, Vec<(Vec<Term>, f64)>) {
    let Selection {
        starts,
        context_terms,
    } = selection;
    let context_terms: Vec<Term> = context_terms
        .iter()
        .copied()
        .filter(|t| candidates.contains(t))
        .collect();
    let holds_context =
        |terms: &[Term]| context_terms.is_empty() || terms.iter().any(|t| context_terms.contains(t));
    let mut trail = vec![];
    let mut score = |terms: &[Term]| -> Option<f64> {
        let mut terms = terms.to_vec();
        terms.sort();
        if let Some((_, m)) = trail.iter().find(|(t, _)| *t == terms) {
            return Some(*m);
        }
        let spec = ModelSpec::Physics {
            terms: terms.clone(),
            parallelism: parallelism.cloned(),
        };
        let (_, acc) = held_out_accuracy(&spec, points).ok()?;
        trail.push((terms, acc.mape_pct));
        Some(acc.mape_pct)
    };
    let walks: &[bool] = if context_terms.is_empty() {
        &[false]
    } else {
        &[false, true]
    };
    let mut ends: Vec<(Vec<Term>, f64)> = vec![];
    for (start, &restricted) in starts.iter().flat_map(|s| walks.iter().map(move |r| (s, r))) {
        let mut chosen: Vec<Term> = start.to_vec();
        let mut best = if chosen.is_empty() {
            f64::INFINITY
        } else {
            score(&chosen).unwrap_or(f64::INFINITY)
        };
        // Every accepted move strictly lowers the error, so this ends; the cap is a guard.
        for _ in 0..8 * candidates.len() {
            let left_out: Vec<Term> = candidates
                .iter()
                .copied()
                .filter(|t| !chosen.contains(t))
                .collect();
            let mut moves: Vec<Vec<Term>> = left_out
                .iter()
                .map(|&t| [chosen.as_slice(), &[t]].concat())
                .collect();
            for i in 0..chosen.len() {
                let mut dropped = chosen.clone();
                dropped.remove(i);
                if !dropped.is_empty() {
                    moves.push(dropped);
                }
                for &t in &left_out {
                    let mut swapped = chosen.clone();
                    swapped[i] = t;
                    moves.push(swapped);
                }
            }
            let mut step: Option<(Vec<Term>, f64)> = None;
            for terms in moves {
                if restricted && !holds_context(&terms) {
                    continue;
                }
                let m = score(&terms);
                keep_better(&mut step, terms, m);
            }
            match step {
                Some((mut terms, mape)) if mape < best - MIN_TERM_GAIN_PCT => {
                    terms.sort();
                    chosen = terms;
                    best = mape;
                }
                _ => break,
            }
        }
        if holds_context(&chosen) {
            ends.push((chosen, best));
        }
    }
    let chosen = ends
        .into_iter()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(terms, _)| terms)
        .unwrap_or_default();
    (chosen, trail)
}

/// Held-out accuracy of the whole procedure, term selection included: each
/// outer fold selects its own terms on its own training points, then predicts
/// its held-out points. The k-fold figure of the chosen model scores the same
/// splits the selection looked at, so it is optimistic by however much the
/// selection fitted the noise; this one is not.
fn nested_accuracy(
    points: &[Point],
    candidates: &[Term],
    selection: &Selection,
    parallelism: Option<&Parallelism>,
) -> Option<Accuracy> {
    let fold_of = crate::cv::folds(points.len(), FOLDS, 0);
    let select_and_fit = |fold: usize| {
        let train = crate::cv::training_set(points, &fold_of, fold);
        let (terms, _) = select_terms(&train, candidates, selection, parallelism);
        ModelSpec::Physics {
            terms,
            parallelism: parallelism.cloned(),
        }
        .fit(&train)
        .ok()
    };
    // Each outer fold repeats a whole selection: run them side by side.
    let fitted: Vec<Option<Fitted>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..FOLDS)
            .map(|fold| scope.spawn(move || select_and_fit(fold)))
            .collect();
        handles.into_iter().map(|h| h.join().ok().flatten()).collect()
    });
    let mut predicted = vec![f64::NAN; points.len()];
    for (i, p) in points.iter().enumerate() {
        predicted[i] = fitted[fold_of[i]].as_ref()?.model.predict_ms(&p.shape);
    }
    let measured: Vec<f64> = points.iter().map(|p| p.median_ms).collect();
    Some(accuracy(
        &format!("nested {FOLDS}-fold (terms reselected per fold)"),
        &predicted,
        &measured,
    ))
}

/// A move replaces the best so far only if it is better by more than
/// rounding: exactly collinear terms (`kv_cache_mb` and
/// `decode_attention_gflop` where every shape has kv_heads = heads) score the
/// same up to the last bits, and the first move found (adds in candidate
/// order) wins such a tie, not the rounding.
fn keep_better(step: &mut Option<(Vec<Term>, f64)>, terms: Vec<Term>, mape: Option<f64>) {
    const ROUNDING_PCT: f64 = 1e-9;
    if let Some(m) = mape
        && step.as_ref().is_none_or(|(_, b)| m < *b - ROUNDING_PCT)
    {
        *step = Some((terms, m));
    }
}

fn validity(points: &[Point]) -> Validity {
    let range = |f: &dyn Fn(&Point) -> u64| {
        let v: Vec<u64> = points.iter().map(f).collect();
        [*v.iter().min().unwrap_or(&0), *v.iter().max().unwrap_or(&0)]
    };
    Validity {
        layers: range(&|p| p.shape.layers()),
        d_model: range(&|p| p.shape.d_model()),
        heads: range(&|p| p.shape.heads()),
        seq: range(&|p| p.shape.seq()),
        batch: range(&|p| p.shape.batch()),
        vocab: range(&|p| p.shape.vocab()),
        params_total: range(&|p| p.shape.accounting().params.total),
        architecture_features: points
            .iter()
            .flat_map(|p| p.shape.architecture_features())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(String::from)
            .collect(),
    }
}

/// The (seq, batch) most shapes were measured at: regimes compare like with like.
pub fn base_configuration<'a>(shapes: impl IntoIterator<Item = &'a planner::Shape>) -> (u64, u64) {
    let mut counts: BTreeMap<(u64, u64), usize> = BTreeMap::new();
    for s in shapes {
        *counts.entry((s.seq(), s.batch())).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(_, c)| c)
        .map_or((128, 1), |(k, _)| k)
}

/// Fits one backend's points of one phase into a profile entry; the physics
/// terms are chosen among that phase's candidates ([`Term::PREFILL`] or
/// [`Term::DECODE`]).
pub fn fit_backend(
    backend: &str,
    device: DeviceClass,
    fingerprint: BTreeMap<String, String>,
    points: &[Point],
    noise_floor_pct: Option<f64>,
    phase: planner::Phase,
    laws: Option<&planner::costlaw::OperatorLaws>,
) -> Result<BackendFit, FitError> {
    if points.len() < MIN_POINTS {
        return Err(FitError::TooFewPoints {
            need: MIN_POINTS,
            have: points.len(),
        });
    }
    let phase_terms: &[Term] = match phase {
        planner::Phase::Prefill => &Term::PREFILL,
        planner::Phase::Decode => &Term::DECODE,
    };
    // What `bench ops` measured of the backend's threads, for the terms that read it.
    let parallelism = laws.and_then(|l| l.parallelism.as_ref());
    // A term that is 0 on every point (RoPE's launches on GPT-2-style shapes)
    // cannot be fitted; left in, it would only tie with the moves without it.
    let candidates: Vec<Term> = phase_terms
        .iter()
        .copied()
        .filter(|&t| {
            points
                .iter()
                .any(|p| term_value_in(t, &p.shape, parallelism) != 0.0)
        })
        .collect();
    let candidates = candidates.as_slice();
    let term_selection = Selection::of(phase);
    let (terms, selection) = select_terms(points, candidates, &term_selection, parallelism);
    if terms.is_empty() {
        return Err(FitError::Degenerate("no physics term could be fitted".into()));
    }
    let physics = ModelSpec::Physics {
        terms,
        parallelism: parallelism.cloned(),
    };
    let (physics_repetitions, physics_held_out) = held_out_accuracy(&physics, points)?;
    // The operator model, where this machine's laws were measured: it
    // replaces the term model when it is better held out.
    let operators = laws.map(|laws| ModelSpec::Operators {
        phase,
        laws: Box::new(laws.clone()),
    });
    let operators_held_out = operators
        .as_ref()
        .and_then(|spec| Some((spec.clone(), held_out_accuracy(spec, points).ok()?)));
    let (spec, repetitions, held_out, runner_up) = match operators_held_out {
        Some((ops, (reps, acc))) if acc.mape_pct < physics_held_out.mape_pct => (
            ops,
            reps,
            acc,
            Some(("physics_terms", physics.clone(), physics_held_out)),
        ),
        Some((ops, (_, acc))) => (
            physics,
            physics_repetitions,
            physics_held_out,
            Some(("operators", ops, acc)),
        ),
        None => (physics, physics_repetitions, physics_held_out, None),
    };
    let Fitted { model, .. } = spec.fit(points)?;
    let held_out_ms: Vec<f64> = (0..points.len())
        .map(|i| median_prediction(&repetitions, i))
        .collect();
    let mut further_checks = vec![];
    if let Some(a) = nested_accuracy(points, candidates, &term_selection, parallelism) {
        further_checks.push(("physics".to_string(), a));
    }
    if let Some(a) = family_out_accuracy(&spec, points) {
        let name = if matches!(spec, ModelSpec::Operators { .. }) {
            "operators"
        } else {
            "physics"
        };
        further_checks.push((name.to_string(), a));
    }

    // Every repetition's held-out ratio: ten times the draws for the quantiles.
    let mut ratios: Vec<f64> = repetitions
        .iter()
        .flat_map(|predicted| points.iter().zip(predicted).map(|(p, pred)| p.median_ms / pred))
        .filter(|r| r.is_finite() && *r > 0.0)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let residuals = Residuals {
        quantiles: RESIDUAL_PROBABILITIES
            .iter()
            .map(|&p| [p, crate::stats::quantile(&ratios, p)])
            .collect(),
    };

    let alternative = |name: &str, fitted: Fitted, held_out: Accuracy| AlternativeModel {
        name: name.to_string(),
        model: fitted.model,
        r2: fitted.r2,
        adj_r2: fitted.adj_r2,
        held_out,
    };
    let mut alternatives = vec![];
    if let Some((name, alt, acc)) = runner_up
        && let Ok(fitted) = alt.fit(points)
    {
        alternatives.push(alternative(name, fitted, acc));
    }
    for (name, alt) in alternative_specs() {
        let Ok(fitted) = alt.fit(points) else { continue };
        let Ok((_, acc)) = held_out_accuracy(&alt, points) else {
            continue;
        };
        if let Some(a) = family_out_accuracy(&alt, points) {
            further_checks.push((name.to_string(), a));
        }
        alternatives.push(alternative(name, fitted, acc));
    }

    let (seq, batch) = base_configuration(points.iter().map(|p| &p.shape));
    let base: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| p.shape.seq() == seq && p.shape.batch() == batch)
        .map(|p| (p.shape.accounting().params.total as f64, p.median_ms))
        .collect();

    Ok(BackendFit {
        profile: BackendProfile {
            backend: backend.to_string(),
            device,
            fingerprint,
            measurements: points.len(),
            model,
            alternatives,
            validity: validity(points),
            residuals,
            held_out,
            regimes: segmented(&base),
            noise_floor_pct,
            // Set by the pipeline, which sees every session before scaling.
            session_spread_pct: None,
            held_out_points: points
                .iter()
                .zip(&held_out_ms)
                .filter(|(_, pred)| pred.is_finite() && **pred > 0.0)
                .map(|(p, pred)| {
                    planner::confidence::HeldOutPoint::of(&p.shape, 100.0 * (p.median_ms / pred - 1.0).abs())
                })
                .collect(),
            decode: None,
            memory: None,
            session: None,
        },
        held_out_ms,
        further_checks,
        selection,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use planner::ShapeSpec;

    /// Decode points whose latency is the weights read alone: no context in it.
    fn context_free_decode_points() -> Vec<Point> {
        let mut points = vec![];
        for (layers, d_model) in [(2, 256), (4, 256), (4, 512), (8, 512), (6, 768), (12, 768)] {
            for seq in [128, 512, 1024] {
                let shape = ShapeSpec {
                    seq: Some(seq),
                    ..ShapeSpec::new(layers, d_model)
                }
                .validate()
                .unwrap();
                points.push(Point {
                    median_ms: 0.02 * term_value_in(Term::DecodeWeightMb, &shape, None),
                    shape,
                    family: crate::Family::Other("f".into()),
                    rel_uncertainty: 0.01,
                });
            }
        }
        points
    }

    #[test]
    fn a_decode_selection_keeps_a_term_that_grows_with_the_context() {
        let points = context_free_decode_points();
        let candidates = [
            Term::DecodeWeightMb,
            Term::KvCacheMb,
            Term::DecodeAttentionGflop,
            Term::Layers,
        ];
        let decode = Selection::of(planner::Phase::Decode);
        let (terms, trail) = select_terms(&points, &candidates, &decode, None);
        assert!(
            terms.iter().any(|t| decode.context_terms.contains(t)),
            "{terms:?}"
        );
        // The free walk went through the weights alone, and its end was not taken.
        assert!(trail.iter().any(|(set, _)| set == &[Term::DecodeWeightMb]));
        // Without the rule the same data selects the weights alone.
        let free = Selection {
            context_terms: vec![],
            ..decode
        };
        let (terms, _) = select_terms(&points, &candidates, &free, None);
        assert_eq!(terms, [Term::DecodeWeightMb]);
    }

    #[test]
    fn the_context_rule_is_void_where_no_context_term_is_a_candidate() {
        let points = context_free_decode_points();
        let (terms, _) = select_terms(
            &points,
            &[Term::DecodeWeightMb, Term::Layers],
            &Selection::of(planner::Phase::Decode),
            None,
        );
        assert_eq!(terms, [Term::DecodeWeightMb]);
    }
}
