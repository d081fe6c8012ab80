//! The one statistics module: order statistics, spread, resampling and the
//! accuracy measures every crate uses (harness, fit, memory, report).
//!
//! Medians and percentiles use linear interpolation between order statistics
//! (R type 7). The confidence interval of the median is a percentile
//! bootstrap with a fixed seed, so the same samples always give the same
//! interval. Outliers are classified with Tukey's fences (mild beyond
//! 1.5·IQR, severe beyond 3·IQR, as criterion.rs does) and never dropped.

use serde::{Deserialize, Serialize};

/// Counts of samples beyond Tukey's fences.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outliers {
    /// Below Q1 − 3·IQR.
    pub low_severe: usize,
    /// Between Q1 − 3·IQR and Q1 − 1.5·IQR.
    pub low_mild: usize,
    /// Between Q3 + 1.5·IQR and Q3 + 3·IQR.
    pub high_mild: usize,
    /// Above Q3 + 3·IQR.
    pub high_severe: usize,
}

impl Outliers {
    /// All outliers.
    pub fn total(&self) -> usize {
        self.low_severe + self.low_mild + self.high_mild + self.high_severe
    }
}

/// Statistics of a sample set (same unit as the samples).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub median: f64,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation (0 for one sample).
    pub std_dev: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// 10th percentile.
    pub p10: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Median absolute deviation (unscaled).
    pub mad: f64,
    /// 95% bootstrap confidence interval of the median.
    pub ci95: [f64; 2],
    /// Tukey outliers.
    pub outliers: Outliers,
}

impl Summary {
    /// Half-width of the CI relative to the median: the precision reached.
    pub fn relative_ci_half_width(&self) -> f64 {
        if self.median <= 0.0 {
            return f64::INFINITY;
        }
        (self.ci95[1] - self.ci95[0]) / 2.0 / self.median
    }
}

/// Bootstrap resamples used for the CI of the median.
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// Summarises samples; `None` for an empty set or a non-finite sample.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let sorted = sorted(samples);
    let n = sorted.len();
    let mean = mean(&sorted);
    let std_dev = sample_std_dev(&sorted);
    let median = median_sorted(&sorted);
    Some(Summary {
        n,
        median,
        mean,
        std_dev,
        min: sorted[0],
        max: sorted[n - 1],
        p10: quantile(&sorted, 0.1),
        p90: quantile(&sorted, 0.9),
        mad: mad(&sorted, median),
        ci95: bootstrap_median_ci(&sorted, BOOTSTRAP_RESAMPLES, 0.95),
        outliers: tukey(&sorted),
    })
}

/// Quantile of sorted data, `p` in [0, 1], linear interpolation (R type 7).
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "quantile of no data");
    let rank = p.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

/// Median of unsorted data (panics on none: callers check first).
pub fn median(data: &[f64]) -> f64 {
    median_sorted(&sorted(data))
}

/// Median of unsorted data, `None` when there is none.
pub fn median_of(data: &[f64]) -> Option<f64> {
    (!data.is_empty()).then(|| median(data))
}

/// A sorted copy (total order, so NaN cannot break the sort).
pub fn sorted(data: &[f64]) -> Vec<f64> {
    let mut v = data.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// Median absolute deviation from `center` (unscaled).
pub fn mad(data: &[f64], center: f64) -> f64 {
    let deviations: Vec<f64> = data.iter().map(|x| (x - center).abs()).collect();
    median(&deviations)
}

/// Arithmetic mean (0 for no data).
pub fn mean(data: &[f64]) -> f64 {
    data.iter().sum::<f64>() / data.len().max(1) as f64
}

/// Sample standard deviation (n − 1 in the denominator; 0 for fewer than two).
pub fn sample_std_dev(data: &[f64]) -> f64 {
    if data.len() < 2 {
        return 0.0;
    }
    let m = mean(data);
    (data.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (data.len() - 1) as f64).sqrt()
}

fn tukey(sorted: &[f64]) -> Outliers {
    let (q1, q3) = (quantile(sorted, 0.25), quantile(sorted, 0.75));
    let iqr = q3 - q1;
    let mut o = Outliers::default();
    for &x in sorted {
        if x < q1 - 3.0 * iqr {
            o.low_severe += 1;
        } else if x < q1 - 1.5 * iqr {
            o.low_mild += 1;
        } else if x > q3 + 3.0 * iqr {
            o.high_severe += 1;
        } else if x > q3 + 1.5 * iqr {
            o.high_mild += 1;
        }
    }
    o
}

/// SplitMix64: a tiny deterministic generator, enough for resampling.
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator with this seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform index below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Percentile-bootstrap confidence interval of the median.
pub fn bootstrap_median_ci(sorted: &[f64], resamples: usize, confidence: f64) -> [f64; 2] {
    let n = sorted.len();
    if n < 2 {
        return [sorted[0], sorted[0]];
    }
    let mut rng = SplitMix64::new(0x5EED ^ n as u64);
    let mut medians = Vec::with_capacity(resamples);
    let mut buf = vec![0.0; n];
    for _ in 0..resamples {
        for slot in buf.iter_mut() {
            *slot = sorted[rng.below(n)];
        }
        buf.sort_by(f64::total_cmp);
        medians.push(median_sorted(&buf));
    }
    medians.sort_by(f64::total_cmp);
    let alpha = (1.0 - confidence) / 2.0;
    [quantile(&medians, alpha), quantile(&medians, 1.0 - alpha)]
}

/// Median of sorted data: the middle value, or the midpoint of the two middle ones.
pub fn median_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

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
    let (ma, mb) = (mean(a), mean(b));
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

/// Fraction of `values` whose magnitude is at most `limit` (0 for none):
/// "within ±10%" is `fraction_within(ape, 10.0)`.
pub fn fraction_within(values: &[f64], limit: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().filter(|v| v.abs() <= limit).count() as f64 / values.len() as f64
}

/// Mean absolute relative error in percent: `rel_errors` are fractions
/// (predicted / measured − 1).
pub fn mean_abs_pct(rel_errors: &[f64]) -> f64 {
    100.0 * rel_errors.iter().map(|e| e.abs()).sum::<f64>() / rel_errors.len().max(1) as f64
}

/// The error of largest magnitude, with its sign (0 for none).
pub fn signed_worst(errors: &[f64]) -> f64 {
    errors
        .iter()
        .fold(0.0f64, |w, e| if e.abs() > w.abs() { *e } else { w })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_summary() {
        let s = summarize(&[4.0, 1.0, 3.0, 2.0, 5.0]).unwrap();
        assert_eq!((s.n, s.median, s.mean, s.min, s.max), (5, 3.0, 3.0, 1.0, 5.0));
        assert!((s.std_dev - 2.5f64.sqrt()).abs() < 1e-12);
        assert!((s.p10 - 1.4).abs() < 1e-12);
        assert!((s.p90 - 4.6).abs() < 1e-12);
        assert_eq!(s.mad, 1.0);
        assert!(s.ci95[0] <= 3.0 && s.ci95[1] >= 3.0);
    }

    #[test]
    fn outliers_are_classified_not_dropped() {
        let mut xs: Vec<f64> = (0..20).map(|i| 10.0 + (i % 5) as f64 * 0.1).collect();
        xs.push(10.9); // mild: Q3 + 1.5·IQR < x < Q3 + 3·IQR
        xs.push(50.0); // severe
        let s = summarize(&xs).unwrap();
        assert_eq!(s.n, 22);
        assert_eq!(s.outliers.high_severe, 1);
        assert_eq!(s.outliers.high_mild, 1);
        assert_eq!(s.max, 50.0);
    }

    #[test]
    fn bootstrap_is_deterministic_and_narrows_with_more_samples() {
        let noisy = |n: usize| -> Vec<f64> {
            let mut rng = SplitMix64::new(1);
            (0..n).map(|_| 100.0 + (rng.below(1000) as f64) / 100.0).collect()
        };
        let a = summarize(&noisy(10)).unwrap();
        let b = summarize(&noisy(10)).unwrap();
        assert_eq!(a.ci95, b.ci95);
        let big = summarize(&noisy(400)).unwrap();
        assert!(big.relative_ci_half_width() < a.relative_ci_half_width());
    }

    #[test]
    fn empty_or_nan_gives_none() {
        assert!(summarize(&[]).is_none());
        assert!(summarize(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn medians_agree_and_quantiles_interpolate() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median_of(&[]), None);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.1), 1.4);
        assert_eq!(mad(&[1.0, 2.0, 3.0, 4.0, 5.0], 3.0), 1.0);
    }

    #[test]
    fn within_and_worst_keep_signs_and_bounds() {
        assert_eq!(fraction_within(&[5.0, -10.0, 10.5, -30.0], 10.0), 0.5);
        assert_eq!(fraction_within(&[], 10.0), 0.0);
        assert_eq!(signed_worst(&[0.1, -0.3, 0.2]), -0.3);
        assert!((mean_abs_pct(&[0.1, -0.3]) - 20.0).abs() < 1e-12);
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
