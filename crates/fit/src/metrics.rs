//! Accuracy metrics of predictions against measurements.

use planner::profile::Accuracy;

/// Absolute percentage errors, 100·|p − m| / m.
pub fn ape(predicted: &[f64], measured: &[f64]) -> Vec<f64> {
    predicted
        .iter()
        .zip(measured)
        .map(|(p, m)| 100.0 * (p - m).abs() / m)
        .collect()
}

/// Ranks (1-based, ties get the average rank).
fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut r = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            r[k] = avg;
        }
        i = j + 1;
    }
    r
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        return 0.0;
    }
    cov / (va * vb).sqrt()
}

/// Spearman's rank correlation.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// Over all pairs whose measured latencies differ by more than `tie_pct`
/// percent, the fraction where the prediction orders the pair the same way.
/// Pairs closer than that are within noise and have no right answer.
pub fn pairwise(predicted: &[f64], measured: &[f64], tie_pct: f64) -> f64 {
    let (mut right, mut total) = (0usize, 0usize);
    for i in 0..measured.len() {
        for j in i + 1..measured.len() {
            let (mi, mj) = (measured[i], measured[j]);
            if (mi - mj).abs() / mi.min(mj) * 100.0 <= tie_pct {
                continue;
            }
            total += 1;
            if (mi < mj) == (predicted[i] < predicted[j]) {
                right += 1;
            }
        }
    }
    if total == 0 {
        1.0
    } else {
        right as f64 / total as f64
    }
}

/// Noise below which two measurements count as a tie in [`pairwise`].
pub const PAIR_TIE_PCT: f64 = 2.0;

/// All metrics at once.
pub fn accuracy(method: &str, predicted: &[f64], measured: &[f64]) -> Accuracy {
    let errors = ape(predicted, measured);
    let n = errors.len();
    let valid = n > 0 && predicted.iter().all(|p| p.is_finite());
    Accuracy {
        method: method.to_string(),
        n,
        mape_pct: if valid {
            errors.iter().sum::<f64>() / n as f64
        } else {
            f64::INFINITY
        },
        within_10pct: if n > 0 {
            errors.iter().filter(|&&e| e <= 10.0).count() as f64 / n as f64
        } else {
            0.0
        },
        worst_pct: errors.iter().copied().fold(0.0, f64::max),
        spearman: spearman(predicted, measured),
        pairwise: pairwise(predicted, measured, PAIR_TIE_PCT),
    }
}

/// The mean of several repetitions' metrics (the worst error is the worst of
/// all), named `method`.
pub fn mean_accuracy(method: &str, runs: &[Accuracy]) -> Accuracy {
    let mean = |f: fn(&Accuracy) -> f64| runs.iter().map(f).sum::<f64>() / runs.len().max(1) as f64;
    Accuracy {
        method: method.to_string(),
        n: runs.first().map_or(0, |a| a.n),
        mape_pct: mean(|a| a.mape_pct),
        within_10pct: mean(|a| a.within_10pct),
        worst_pct: runs.iter().map(|a| a.worst_pct).fold(0.0, f64::max),
        spearman: mean(|a| a.spearman),
        pairwise: mean(|a| a.pairwise),
    }
}

/// Median of sorted data.
pub fn median_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitions_average_and_keep_the_worst() {
        let measured = [10.0, 20.0];
        let a = accuracy("", &[11.0, 20.0], &measured); // 10% and 0%
        let b = accuracy("", &[10.0, 30.0], &measured); // 0% and 50%
        let m = mean_accuracy("2×", &[a, b]);
        assert_eq!(m.method, "2×");
        assert_eq!(m.n, 2);
        assert!((m.mape_pct - 15.0).abs() < 1e-9);
        assert!((m.within_10pct - 0.75).abs() < 1e-9);
        assert!((m.worst_pct - 50.0).abs() < 1e-9);
    }

    #[test]
    fn hand_computed_metrics() {
        let measured = [10.0, 20.0, 40.0, 80.0];
        let predicted = [11.0, 18.0, 40.0, 100.0];
        let a = accuracy("test", &predicted, &measured);
        // APEs: 10, 10, 0, 25 → mean 11.25, 3 of 4 within ±10%.
        assert!((a.mape_pct - 11.25).abs() < 1e-12);
        assert_eq!(a.within_10pct, 0.75);
        assert_eq!(a.worst_pct, 25.0);
        assert_eq!(a.spearman, 1.0);
        assert_eq!(a.pairwise, 1.0);
    }

    #[test]
    fn pairwise_counts_swaps_and_skips_ties() {
        let measured = [10.0, 10.1, 30.0];
        let predicted = [12.0, 9.0, 11.0];
        // (0,1) tie (1%) skipped; (0,2) wrong (12 > 11); (1,2) right.
        assert_eq!(pairwise(&predicted, &measured, 2.0), 0.5);
    }

    #[test]
    fn spearman_of_reversed_is_minus_one_and_ties_average() {
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0);
        assert_eq!(ranks(&[5.0, 1.0, 5.0]), vec![2.5, 1.0, 2.5]);
    }
}
