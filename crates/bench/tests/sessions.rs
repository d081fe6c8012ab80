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

#[test]
fn a_session_without_anchors_on_the_reference_is_placed_through_another() {
    // `a` shares 4 shapes with the reference (×1.1); `b` shares none with the
    // reference but 8 with `a` (×1.2 of a): b must come out at ×1.32.
    let base = committed();
    let flex: Vec<Measurement> = base.iter().filter(|m| m.backend == "flex").cloned().collect();
    assert!(flex.len() >= 20);
    let scaled = |ms: &[Measurement], f: f64| -> Vec<Measurement> {
        ms.iter()
            .cloned()
            .map(|mut m| {
                m.timing.as_mut().unwrap().median_ms *= f;
                m
            })
            .collect()
    };
    let reference: Vec<Measurement> = flex[..12].to_vec();
    let mut a = scaled(&flex[8..12], 1.1);
    a.extend(scaled(&flex[12..20], 1.1));
    let b = scaled(&flex[12..20], 1.1 * 1.2);
    let mut sessions = vec![
        ("reference".to_string(), reference),
        ("a".to_string(), a),
        ("b".to_string(), b),
    ];
    let factors = normalize_sessions(&mut sessions);
    let factor = |name: &str| {
        factors
            .iter()
            .find(|f| f.session == name)
            .unwrap()
            .factor
            .unwrap()
    };
    assert!((factor("a") - 1.1).abs() < 1e-9, "{}", factor("a"));
    assert!((factor("b") - 1.32).abs() < 1e-9, "{}", factor("b"));
}

#[test]
fn measurements_taken_while_the_hypervisor_stole_time_are_left_out() {
    let base = committed();
    let mut noisy = base.clone();
    let stolen: Vec<usize> = (0..noisy.len())
        .filter(|&i| noisy[i].timing.is_some())
        .step_by(3)
        .collect();
    for &i in &stolen {
        noisy[i].timing.as_mut().unwrap().load.steal_pct = Some(12.0);
    }
    let busy = (0..noisy.len())
        .find(|&i| noisy[i].timing.is_some() && !stolen.contains(&i))
        .unwrap();
    noisy[busy].timing.as_mut().unwrap().load.other_cores = Some(0.9);
    let mut sessions = vec![("clean".to_string(), base.clone()), ("noisy".to_string(), noisy)];
    let notes = bench::fitting::leave_out_disturbed(&mut sessions);
    assert_eq!(
        sessions[0].1.len(),
        base.len(),
        "a clean session keeps everything"
    );
    assert_eq!(sessions[1].1.len(), base.len() - stolen.len() - 1);
    assert!(sessions[1].1.iter().all(|m| {
        m.timing
            .as_ref()
            .is_none_or(|t| t.load.steal_pct < Some(2.0) && t.load.other_cores < Some(0.25))
    }));
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].starts_with(&format!(
        "`noisy`: {} of {} measurements left out",
        stolen.len() + 1,
        base.len()
    )));
    assert!(notes[0].contains(&format!("{}: the hypervisor stole CPU time", stolen.len())));
    assert!(notes[0].contains("1: other processes kept cores busy"));
}
