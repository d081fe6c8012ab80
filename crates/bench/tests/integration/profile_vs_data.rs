//! The embedded default profile reproduces the committed measurements within
//! its own stated error, once disturbed measurements are left out and each
//! session is scaled to its reference session as the fit does (the profile
//! describes the machine in its reference session): prefill and decode models alike.

use std::path::Path;

use bench::fitting::{THRESHOLDS, read_sessions};
use fit::sessions::{leave_out_disturbed, normalize_sessions};
use planner::Phase;
use planner::predict::predict_backend;

#[test]
fn default_profile_reproduces_committed_measurements() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/measurements");
    let mut skipped = vec![];
    let mut sessions = read_sessions(&[dir], &mut skipped).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    leave_out_disturbed(&mut sessions, THRESHOLDS);
    normalize_sessions(&mut sessions);
    let observations: Vec<fit::Observation> = sessions.into_iter().flat_map(|s| s.observations).collect();
    let profile = planner::default_profile();
    let entries = profile.backends.iter().map(|b| (b, Phase::Prefill)).chain(
        profile
            .backends
            .iter()
            .filter_map(|b| Some((b.decode.as_deref()?, Phase::Decode))),
    );
    let mut decode_models = 0;
    for (b, kind) in entries {
        decode_models += usize::from(kind == Phase::Decode);
        // One point per shape, repeated runs pooled by their mean, as the fit pools them.
        let mut pooled: std::collections::BTreeMap<String, (planner::Shape, Vec<f64>)> = Default::default();
        for o in observations
            .iter()
            .filter(|o| o.backend == b.backend && o.phase == kind)
        {
            pooled
                .entry(o.shape.key())
                .or_insert((o.shape, vec![]))
                .1
                .push(o.median_ms);
        }
        let ms: Vec<(planner::Shape, f64)> = pooled
            .into_values()
            .map(|(s, t)| (s, t.iter().sum::<f64>() / t.len() as f64))
            .collect();
        assert!(ms.len() >= 20, "{} {kind}: {} shapes", b.backend, ms.len());
        let (mut inside, mut ape) = (0usize, 0.0f64);
        for (shape, t) in &ms {
            let p = predict_backend(b, shape);
            if (p.interval_ms[0]..=p.interval_ms[1]).contains(t) {
                inside += 1;
            }
            ape += 100.0 * (p.latency_ms - t).abs() / t;
        }
        let inside = inside as f64 / ms.len() as f64;
        let mape = ape / ms.len() as f64;
        // The interval is a held-out 90% interval; in-sample coverage must be at least close to it.
        assert!(
            inside >= 0.8,
            "{} {kind}: only {:.0}% inside the 90% interval",
            b.backend,
            100.0 * inside
        );
        assert!(
            mape <= 1.5 * b.held_out.mape_pct,
            "{} {kind}: MAPE {mape:.1}% vs stated {:.1}%",
            b.backend,
            b.held_out.mape_pct
        );
    }
    assert!(decode_models >= 1, "the default profile has decode models");
}
