//! Summary statistics of timing samples.
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
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let mean = sorted.iter().sum::<f64>() / n as f64;
    let std_dev = if n > 1 {
        (sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    let median = percentile(&sorted, 0.5);
    let mut deviations: Vec<f64> = sorted.iter().map(|x| (x - median).abs()).collect();
    deviations.sort_by(f64::total_cmp);
    Some(Summary {
        n,
        median,
        mean,
        std_dev,
        min: sorted[0],
        max: sorted[n - 1],
        p10: percentile(&sorted, 0.1),
        p90: percentile(&sorted, 0.9),
        mad: percentile(&deviations, 0.5),
        ci95: bootstrap_median_ci(&sorted, BOOTSTRAP_RESAMPLES, 0.95),
        outliers: tukey(&sorted),
    })
}

/// Percentile of sorted data, `p` in [0, 1], linear interpolation.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of no data");
    let rank = p.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

/// Median of unsorted data.
pub fn median(data: &[f64]) -> f64 {
    let mut sorted = data.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile(&sorted, 0.5)
}

fn tukey(sorted: &[f64]) -> Outliers {
    let (q1, q3) = (percentile(sorted, 0.25), percentile(sorted, 0.75));
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
        medians.push(percentile(&buf, 0.5));
    }
    medians.sort_by(f64::total_cmp);
    let alpha = (1.0 - confidence) / 2.0;
    [percentile(&medians, alpha), percentile(&medians, 1.0 - alpha)]
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
}
