//! Held-out predictions: k-fold and leave-one-family-out cross-validation.

use crate::models::ModelSpec;
use crate::{Family, FitError, Point};

/// A fixed 64-bit mix (SplitMix64's finaliser), so folds are deterministic.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fold of each of `n` points among `k` in repetition `repetition`: the points
/// are shuffled by a fixed hash of (index, repetition) and dealt to the folds
/// in turn, so fold sizes differ by at most one (a hash modulo k alone left
/// folds of 1 and 6 points among 33) and each repetition splits differently.
pub fn folds(n: usize, k: usize, repetition: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| mix(i as u64 ^ mix(repetition as u64).rotate_left(17)));
    let mut fold = vec![0; n];
    for (position, &i) in order.iter().enumerate() {
        fold[i] = position % k;
    }
    fold
}

/// The points outside fold `fold` (`fold_of` from [`folds`]): a fold's training set.
pub fn training_set(points: &[Point], fold_of: &[usize], fold: usize) -> Vec<Point> {
    points
        .iter()
        .zip(fold_of)
        .filter(|(_, f)| **f != fold)
        .map(|(p, _)| p.clone())
        .collect()
}

/// Held-out predictions (ms) for every point, by one repetition of k-fold
/// cross-validation.
pub fn k_fold(spec: &ModelSpec, points: &[Point], k: usize, repetition: usize) -> Result<Vec<f64>, FitError> {
    let k = k.min(points.len()).max(2);
    let fold_of = folds(points.len(), k, repetition);
    let mut predicted = vec![f64::NAN; points.len()];
    for fold in 0..k {
        let train = training_set(points, &fold_of, fold);
        if train.len() == points.len() {
            continue;
        }
        let fitted = spec.fit(&train)?;
        for (i, p) in points.iter().enumerate() {
            if fold_of[i] == fold {
                predicted[i] = fitted.model.predict_ms(&p.shape);
            }
        }
    }
    Ok(predicted)
}

/// Held-out predictions for the members of each iso-parameter family, from a
/// model fitted without that family. Returns `(indices, predictions)`.
pub fn leave_iso_families_out(
    spec: &ModelSpec,
    points: &[Point],
) -> Result<(Vec<usize>, Vec<f64>), FitError> {
    let mut families: Vec<&Family> = points
        .iter()
        .map(|p| &p.family)
        .filter(|f| f.is_iso_parameter())
        .collect();
    families.sort();
    families.dedup();
    let (mut idx, mut pred) = (vec![], vec![]);
    for fam in families {
        let train: Vec<Point> = points.iter().filter(|p| &p.family != fam).cloned().collect();
        let fitted = spec.fit(&train)?;
        for (i, p) in points.iter().enumerate() {
            if &p.family == fam {
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
    fn folds_are_balanced_and_differ_between_repetitions() {
        for n in [7, 33, 57, 200] {
            for r in 0..3 {
                let f = folds(n, 10, r);
                let mut counts = vec![0usize; 10];
                for &x in &f {
                    counts[x] += 1;
                }
                let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
                assert!(hi - lo <= 1, "n = {n}, repetition {r}: {counts:?}");
            }
        }
        assert_ne!(folds(33, 10, 0), folds(33, 10, 1));
        assert_eq!(folds(33, 10, 4), folds(33, 10, 4));
    }
}
