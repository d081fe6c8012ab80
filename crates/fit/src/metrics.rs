//! Accuracy metrics of predictions against measurements.

use planner::profile::Accuracy;

use crate::stats::{PAIR_TIE_PCT, ape, fraction_within, pairwise, spearman};

/// All metrics at once.
pub fn accuracy(method: &str, predicted: &[f64], measured: &[f64]) -> Accuracy {
    let errors = ape(predicted, measured);
    let n = errors.len();
    let valid = n > 0 && predicted.iter().all(|p| p.is_finite());
    Accuracy {
        method: method.to_string(),
        n,
        mape_pct: if valid {
            crate::stats::mean(&errors)
        } else {
            f64::INFINITY
        },
        within_10pct: fraction_within(&errors, 10.0),
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
}
