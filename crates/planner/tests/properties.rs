//! Property tests of the planner's math on the embedded profile.

use planner::predict::predict_all;
use planner::{Profile, ShapeSpec, default_profile};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn predictions_are_finite_positive_and_grow_with_depth(
        layers in 1u64..200, width_heads in 1u64..48, head_dim in prop_oneof![Just(32u64), Just(64), Just(128)],
        seq in 1u64..1024, batch in 1u64..16,
    ) {
        let profile = default_profile();
        let d = width_heads * head_dim;
        let spec = ShapeSpec { heads: Some(width_heads), seq: Some(seq), batch: Some(batch), ..ShapeSpec::new(layers, d) };
        let shape = spec.validate().unwrap();
        let deeper = ShapeSpec { layers: layers + 1, ..spec }.validate().unwrap();
        let deeper_predictions = predict_all(&profile, &deeper);
        for a in predict_all(&profile, &shape) {
            prop_assert!(a.latency_ms.is_finite() && a.latency_ms > 0.0);
            prop_assert!(a.interval_ms[0] > 0.0 && a.interval_ms[0] <= a.interval_ms[1]);
            let b = deeper_predictions.iter().find(|p| p.backend == a.backend).unwrap();
            prop_assert!(b.latency_ms >= a.latency_ms, "{} got faster with depth", a.backend);
        }
    }

    #[test]
    fn malformed_profiles_are_errors_not_panics(cut in 0usize..5000, byte in any::<u8>()) {
        let mut text = planner::DEFAULT_PROFILE_JSON.as_bytes().to_vec();
        let i = cut % text.len();
        text[i] = byte;
        if let Some(p) = String::from_utf8(text).ok().and_then(|s| Profile::from_json(&s).ok()) {
            let shape = ShapeSpec::new(4, 256).validate().unwrap();
            for pred in predict_all(&p, &shape) {
                prop_assert!(!pred.latency_ms.is_nan());
            }
        }
        // Truncations too.
        let full = planner::DEFAULT_PROFILE_JSON.trim_end();
        if let Some(prefix) = full.get(..cut % full.len()) {
            prop_assert!(Profile::from_json(prefix).is_err());
        }
    }
}
