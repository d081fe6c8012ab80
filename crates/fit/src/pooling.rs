//! Pooling: one point per shape from the observations of several sessions,
//! with its uncertainty, and the noise floor between two sessions.

use std::collections::BTreeMap;

use planner::Phase;

use crate::observation::Observation;
use crate::{Point, stats};

/// Observations of one backend and phase, pooled per shape.
#[derive(Debug, Clone)]
pub struct BackendData {
    /// Backend name.
    pub backend: String,
    /// Points, one per shape (repeated runs pooled by their mean median).
    pub points: Vec<Point>,
    /// Per shape measured by both runs of the pair that shares the most
    /// shapes: their relative difference, %.
    pub repeat_diffs_pct: Vec<f64>,
    /// Fingerprint of the machine kept.
    pub fingerprint: BTreeMap<String, String>,
    /// The machine kept (the one with the most observations).
    pub machine: String,
    /// Its observations (before pooling).
    pub machine_observations: usize,
    /// Other machines' observations of this backend, left out: (machine, count).
    pub other_machines: Vec<(String, usize)>,
}

/// Groups observations of `phase` by backend; within a backend keeps the
/// machine with the most observations (never a mix of machines), and pools
/// each shape's repeated runs.
pub fn group(observations: &[Observation], phase: Phase) -> Vec<BackendData> {
    let mut by_backend: BTreeMap<&str, Vec<&Observation>> = BTreeMap::new();
    for o in observations.iter().filter(|o| o.phase == phase) {
        by_backend.entry(&o.backend).or_default().push(o);
    }
    let mut out = vec![];
    for (name, obs) in by_backend {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for o in &obs {
            *counts.entry(&o.machine).or_default() += 1;
        }
        let Some((chosen, chosen_count)) = counts.iter().max_by_key(|(_, c)| **c).map(|(m, c)| (*m, *c))
        else {
            continue;
        };
        let other_machines = counts
            .iter()
            .filter(|(m, _)| **m != chosen)
            .map(|(m, c)| (m.to_string(), *c))
            .collect();
        let kept: Vec<&Observation> = obs.iter().copied().filter(|o| o.machine == chosen).collect();
        let fingerprint = kept[0].fingerprint.clone();
        let mut per_shape: BTreeMap<String, Vec<&Observation>> = BTreeMap::new();
        for o in &kept {
            per_shape.entry(o.key()).or_default().push(o);
        }
        let repeat_pair = most_shared_run_pair(&per_shape);
        let mut points = vec![];
        let mut diffs = vec![];
        for group in per_shape.values() {
            let medians: Vec<f64> = group.iter().map(|o| o.median_ms).collect();
            if let Some((ra, rb)) = repeat_pair {
                let run = |id: &str| group.iter().find(|o| o.run_id == id).map(|o| o.median_ms);
                if let (Some(a), Some(b)) = (run(ra), run(rb)) {
                    diffs.push(200.0 * (a - b).abs() / (a + b));
                }
            }
            let rel_cis: Vec<f64> = group.iter().map(|o| o.rel_ci_half_width()).collect();
            points.push(Point {
                shape: group[0].shape,
                family: group[0].family.clone(),
                median_ms: stats::mean(&medians),
                rel_uncertainty: pooled_uncertainty(&medians, &rel_cis),
            });
        }
        out.push(BackendData {
            backend: name.to_string(),
            points,
            repeat_diffs_pct: diffs,
            fingerprint,
            machine: chosen.to_string(),
            machine_observations: chosen_count,
            other_machines,
        });
    }
    out
}

/// The noise floor compares the two runs that share the most shapes
/// (back-to-back passes of a sweep), not runs hours apart.
fn most_shared_run_pair<'a>(
    per_shape: &BTreeMap<String, Vec<&'a Observation>>,
) -> Option<(&'a str, &'a str)> {
    let mut pair_counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for group in per_shape.values() {
        let mut runs: Vec<&str> = group.iter().map(|o| o.run_id.as_str()).collect();
        runs.sort();
        runs.dedup();
        for (i, a) in runs.iter().enumerate() {
            for b in &runs[i + 1..] {
                *pair_counts.entry((a, b)).or_default() += 1;
            }
        }
    }
    pair_counts
        .into_iter()
        .max_by_key(|&(k, c)| (c, std::cmp::Reverse(k)))
        .map(|(k, _)| k)
}

/// Median of the repeat differences: the noise floor, %.
pub fn noise_floor(diffs: &[f64]) -> Option<f64> {
    stats::median_of(diffs)
}

/// Relative uncertainty of the mean of one shape's session-scaled medians:
/// the runs' own CI half-widths shrink with the number of runs, but repeat runs
/// that disagree more than their CIs admit (sessions differ) set it instead.
pub fn pooled_uncertainty(medians: &[f64], rel_cis: &[f64]) -> f64 {
    let runs = medians.len() as f64;
    let within = stats::median(rel_cis) / runs.sqrt();
    if medians.len() < 2 {
        return within;
    }
    within.max(stats::sample_std_dev(medians) / stats::mean(medians) / runs.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::fixtures::{observation, session};

    #[test]
    fn one_run_keeps_its_own_ci() {
        assert_eq!(pooled_uncertainty(&[10.0], &[0.02]), 0.02);
    }

    #[test]
    fn agreeing_runs_shrink_the_ci_and_disagreeing_runs_set_it() {
        // Two runs within 1% of each other, each ±2%: the CI over √2 wins.
        let agree = pooled_uncertainty(&[10.0, 10.1], &[0.02, 0.02]);
        assert!((agree - 0.02 / 2f64.sqrt()).abs() < 1e-12, "{agree}");
        // Runs 20% apart: standard error of the mean, sd/mean/√n = 0.1.
        let apart = pooled_uncertainty(&[9.0, 11.0], &[0.01, 0.01]);
        let sd = 2f64.sqrt();
        assert!((apart - sd / 10.0 / 2f64.sqrt()).abs() < 1e-12, "{apart}");
    }

    #[test]
    fn repeated_shapes_pool_and_the_busiest_pair_sets_the_noise_floor() {
        let mut obs = session("a", 1..5, 1.0).observations;
        obs.extend(session("b", 1..5, 1.1).observations);
        obs.extend(session("c", 1..2, 3.0).observations);
        let data = group(&obs, Phase::Prefill);
        assert_eq!(data.len(), 1);
        let d = &data[0];
        assert_eq!(d.points.len(), 4);
        // L=1 pooled over three runs, the others over two.
        assert!((d.points[0].median_ms - (1.0 + 1.1 + 3.0) / 3.0).abs() < 1e-12);
        // a and b share four shapes, each 10% apart: 2·0.1/2.1.
        assert_eq!(d.repeat_diffs_pct.len(), 4);
        let nf = noise_floor(&d.repeat_diffs_pct).unwrap();
        assert!((nf - 20.0 / 2.1).abs() < 1e-9, "{nf}");
        assert!(group(&obs, Phase::Decode).is_empty());
    }

    #[test]
    fn machines_are_never_mixed_and_the_left_out_are_named() {
        let mut obs = session("a", 1..5, 1.0).observations;
        let mut other = observation("flex", 1, 256, 50.0);
        other.machine = "another cpu|2".into();
        obs.push(other);
        let d = &group(&obs, Phase::Prefill)[0];
        assert_eq!(d.machine, "cpu|2");
        assert_eq!(d.other_machines, vec![("another cpu|2".to_string(), 1)]);
        assert!(d.points.iter().all(|p| p.median_ms < 10.0));
    }
}
