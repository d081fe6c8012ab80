//! Glue between measurement files and the `fit` crate: group, pool repeated
//! runs, estimate the noise floor, fit each backend.

use std::collections::BTreeMap;

use fit::Point;
use fit::profile_fit::{BackendFit, fit_backend};
use planner::profile::{PROFILE_SCHEMA_VERSION, Profile};

use crate::backend;
use crate::record::{Measurement, Status};

/// Measurements of one backend pooled per shape.
pub struct BackendData {
    /// Backend name.
    pub backend: String,
    /// Points, one per shape (repeated runs pooled by their mean median).
    pub points: Vec<Point>,
    /// Per shape measured in 2+ runs: relative difference between runs, %.
    pub repeat_diffs_pct: Vec<f64>,
    /// Fingerprint of the measurements used.
    pub fingerprint: BTreeMap<String, String>,
}

/// Median of the repeat differences: the noise floor, %.
pub fn noise_floor(diffs: &[f64]) -> Option<f64> {
    if diffs.is_empty() {
        return None;
    }
    let mut d = diffs.to_vec();
    d.sort_by(f64::total_cmp);
    Some(fit::metrics::median_sorted(&d))
}

/// Groups successful prefill measurements by backend; within a backend keeps
/// the fingerprint (machine and build) with the most measurements.
pub fn group(measurements: &[Measurement]) -> Vec<BackendData> {
    let mut by_backend: BTreeMap<&str, Vec<&Measurement>> = BTreeMap::new();
    for m in measurements
        .iter()
        .filter(|m| m.status == Status::Ok && m.kind == "prefill" && m.timing.is_some())
    {
        by_backend.entry(&m.backend).or_default().push(m);
    }
    let mut out = vec![];
    for (name, ms) in by_backend {
        // The machine: cpu + threads + features (the commit may differ between passes).
        let machine = |m: &Measurement| {
            let f = &m.fingerprint;
            format!(
                "{}|{}|{}|{}",
                f.cpu,
                f.threads,
                f.build_features.join(","),
                f.burn
            )
        };
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for m in &ms {
            *counts.entry(machine(m)).or_default() += 1;
        }
        let Some((chosen, _)) = counts.into_iter().max_by_key(|(_, c)| *c) else {
            continue;
        };
        let fingerprint = ms
            .iter()
            .find(|m| machine(m) == chosen)
            .map(|m| m.fingerprint.to_map())
            .unwrap_or_default();
        let mut per_shape: BTreeMap<String, Vec<&Measurement>> = BTreeMap::new();
        for m in ms.iter().filter(|m| machine(m) == chosen) {
            per_shape
                .entry(format!(
                    "{}|{}",
                    crate::record::shape_key(&m.shape().expect("valid")),
                    m.gelu.name()
                ))
                .or_default()
                .push(m);
        }
        let mut points = vec![];
        let mut diffs = vec![];
        for group in per_shape.values() {
            let medians: Vec<f64> = group
                .iter()
                .map(|m| m.timing.as_ref().unwrap().median_ms)
                .collect();
            if medians.len() >= 2 {
                let (a, b) = (medians[0], medians[medians.len() - 1]);
                diffs.push(200.0 * (a - b).abs() / (a + b));
            }
            let first = group[0];
            let t = first.timing.as_ref().unwrap();
            points.push(Point {
                shape: first.shape().expect("measured shapes are valid"),
                family: first.family.clone(),
                median_ms: medians.iter().sum::<f64>() / medians.len() as f64,
                rel_ci: (t.ci95_ms[1] - t.ci95_ms[0]) / 2.0 / t.median_ms,
            });
        }
        out.push(BackendData {
            backend: name.to_string(),
            points,
            repeat_diffs_pct: diffs,
            fingerprint,
        });
    }
    out
}

/// Fits every backend into a profile.
pub fn fit_profile(
    data: &[BackendData],
    name: &str,
    source: &str,
    created_utc: &str,
) -> anyhow::Result<(Profile, Vec<BackendFit>)> {
    let mut fits = vec![];
    for d in data {
        let device = backend::BACKENDS
            .iter()
            .find(|b| b.name == d.backend)
            .map_or(planner::profile::DeviceClass::Cpu, |b| b.device);
        let f = fit_backend(
            &d.backend,
            device,
            d.fingerprint.clone(),
            &d.points,
            noise_floor(&d.repeat_diffs_pct),
        )
        .map_err(|e| anyhow::anyhow!("fitting backend `{}`: {e}", d.backend))?;
        fits.push(f);
    }
    if fits.is_empty() {
        anyhow::bail!("no successful measurements to fit");
    }
    let profile = Profile {
        schema_version: PROFILE_SCHEMA_VERSION,
        name: name.to_string(),
        created_utc: created_utc.to_string(),
        source: source.to_string(),
        backends: fits.iter().map(|f| f.profile.clone()).collect(),
    };
    Ok((profile, fits))
}
