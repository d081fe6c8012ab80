//! Sessions measured hours apart are scaled to one reference before fitting.

use bench::fitting::normalize_sessions;
use bench::record::{self, Measurement};

fn committed() -> Vec<Measurement> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/measurements/cpu-pass1.jsonl"
    );
    record::read(std::path::Path::new(path)).unwrap().measurements
}

fn flex_scaled(ms: &[Measurement], take: usize, factor: f64) -> Vec<Measurement> {
    ms.iter()
        .filter(|m| m.backend == "flex" && m.timing.is_some())
        .take(take)
        .cloned()
        .map(|mut m| {
            m.timing.as_mut().unwrap().median_ms *= factor;
            m
        })
        .collect()
}

#[test]
fn a_slower_session_is_scaled_back_by_its_anchor_ratio() {
    let base = committed();
    let slow = flex_scaled(&base, 5, 1.25);
    let lone = flex_scaled(&base, 1, 2.0);
    let mut sessions = vec![
        ("pass1".to_string(), base.clone()),
        ("later".to_string(), slow),
        ("lone".to_string(), lone),
    ];
    let factors = normalize_sessions(&mut sessions);
    let later = factors
        .iter()
        .find(|f| f.backend == "flex" && f.session == "later")
        .unwrap();
    assert_eq!(later.anchors, 5);
    assert!((later.factor.unwrap() - 1.25).abs() < 1e-12);
    for (scaled, original) in sessions[1].1.iter().zip(&base) {
        let (a, b) = (
            scaled.timing.as_ref().unwrap().median_ms,
            original.timing.as_ref().unwrap().median_ms,
        );
        assert!((a - b).abs() < 1e-9 * b);
    }
    let lone = factors.iter().find(|f| f.session == "lone").unwrap();
    assert_eq!(
        (lone.factor, lone.anchors),
        (None, 1),
        "one shared shape is not enough"
    );
    assert_eq!(
        sessions[2].1[0].timing.as_ref().unwrap().median_ms,
        2.0 * base[0].timing.as_ref().unwrap().median_ms
    );
    assert!(factors.iter().any(|f| f.reference && f.session == "pass1"));
    assert!(later.to_string().contains("×1.250"));
}

#[test]
fn software_adapter_timings_never_reach_a_profile() {
    let mut ms = committed();
    for m in ms.iter_mut().filter(|m| m.backend == "flex") {
        m.fingerprint.gpu = Some(
            bench::gpu::AdapterSummary {
                name: "llvmpipe".into(),
                api: "Vulkan".into(),
                driver: "Mesa".into(),
                software: true,
            }
            .describe(),
        );
    }
    let grouped = bench::fitting::group(&ms, planner::Phase::Prefill);
    assert!(grouped.iter().all(|d| d.backend != "flex"));
    assert!(grouped.iter().any(|d| d.backend == "ndarray"));
}
