//! Held-out predictions: k-fold and leave-one-family-out cross-validation.

use crate::models::ModelSpec;
use crate::{FitError, Point};

/// Deterministic fold of point `i` among `k`: a fixed permutation, so folds
/// mix sizes and families and every run gives the same folds.
fn fold_of(i: usize, k: usize) -> usize {
    let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) % k as u64) as usize
}

/// Held-out predictions (ms) for every point, by k-fold cross-validation.
pub fn k_fold(spec: &ModelSpec, points: &[Point], k: usize) -> Result<Vec<f64>, FitError> {
    let k = k.min(points.len()).max(2);
    let mut predicted = vec![f64::NAN; points.len()];
    for fold in 0..k {
        let train: Vec<Point> = points
            .iter()
            .enumerate()
            .filter(|(i, _)| fold_of(*i, k) != fold)
            .map(|(_, p)| p.clone())
            .collect();
        if train.len() == points.len() {
            continue;
        }
        let fitted = spec.fit(&train)?;
        for (i, p) in points.iter().enumerate() {
            if fold_of(i, k) == fold {
                predicted[i] = fitted.model.predict_ms(&p.shape);
            }
        }
    }
    Ok(predicted)
}

/// Held-out predictions for the members of each family whose name starts with
/// `prefix` (e.g. `iso-`), from a model fitted without that family.
/// Returns `(indices, predictions)`.
pub fn leave_family_out(
    spec: &ModelSpec,
    points: &[Point],
    prefix: &str,
) -> Result<(Vec<usize>, Vec<f64>), FitError> {
    let mut families: Vec<&str> = points
        .iter()
        .map(|p| p.family.as_str())
        .filter(|f| f.starts_with(prefix))
        .collect();
    families.sort();
    families.dedup();
    let (mut idx, mut pred) = (vec![], vec![]);
    for fam in families {
        let train: Vec<Point> = points.iter().filter(|p| p.family != fam).cloned().collect();
        let fitted = spec.fit(&train)?;
        for (i, p) in points.iter().enumerate() {
            if p.family == fam {
                idx.push(i);
                pred.push(fitted.model.predict_ms(&p.shape));
            }
        }
    }
    Ok((idx, pred))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_cover_every_index_and_are_balanced() {
        let k = 10;
        let mut counts = vec![0; k];
        for i in 0..200 {
            counts[fold_of(i, k)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 8), "{counts:?}");
    }
}
