//! Sessions measured hours apart are scaled to one reference before fitting:
//! committed measurement lines, converted as `bench fit` converts them, through
//! `fit`'s session scaling and leave-out.

use bench::fitting::{THRESHOLDS, observation};
use bench::record::{self, Measurement};
use fit::observation::Session;
use fit::sessions::{leave_out_disturbed, normalize_sessions};

fn committed() -> Vec<Measurement> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/measurements/cpu-pass1.jsonl"
    );
    record::read(std::path::Path::new(path)).unwrap().measurements
}

fn session(name: &str, ms: &[Measurement]) -> Session {
    Session {
        name: name.to_string(),
        observations: ms.iter().filter_map(observation).collect(),
        failed_utc: vec![],
    }
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
        session("pass1", &base),
        session("later", &slow),
        session("lone", &lone),
    ];
    let factors = normalize_sessions(&mut sessions);
    let later = factors
        .iter()
        .find(|f| f.backend == "flex" && f.session == "later")
        .unwrap();
    assert_eq!(later.anchors, 5);
    assert!((later.factor.unwrap() - 1.25).abs() < 1e-12);
    for (scaled, original) in sessions[1].observations.iter().zip(&base) {
        let (a, b) = (scaled.median_ms, original.timing.as_ref().unwrap().median_ms);
        assert!((a - b).abs() < 1e-9 * b);
    }
    let lone = factors.iter().find(|f| f.session == "lone").unwrap();
    assert_eq!(
        (lone.factor, lone.anchors),
        (None, 1),
        "one shared shape is not enough"
    );
    assert_eq!(
        sessions[2].observations[0].median_ms,
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
    let observations = session("pass1", &ms).observations;
    let grouped = fit::pooling::group(&observations, planner::Phase::Prefill);
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
        session("reference", &reference),
        session("a", &a),
        session("b", &b),
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
    let mut sessions = vec![session("clean", &base), session("noisy", &noisy)];
    let notes = leave_out_disturbed(&mut sessions, THRESHOLDS);
    assert_eq!(
        sessions[0].observations.len(),
        base.len(),
        "a clean session keeps everything"
    );
    assert_eq!(sessions[1].observations.len(), base.len() - stolen.len() - 1);
    assert!(sessions[1].observations.iter().all(|o| o.disturbed.is_none()));
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = notes[0].to_string();
    assert!(note.starts_with(&format!(
        "`noisy`: {} of {} measurements left out",
        stolen.len() + 1,
        base.len()
    )));
    assert!(note.contains(&format!("{}: the hypervisor stole CPU time", stolen.len())));
    assert!(note.contains("1: other processes kept cores busy"));
}
