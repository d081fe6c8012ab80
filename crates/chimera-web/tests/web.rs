//! The bindings as JavaScript sees them (run by wasm-bindgen-test-runner under
//! Node.js: `cargo test -p chimera-web --target wasm32-unknown-unknown`).
#![cfg(target_arch = "wasm32")]

use chimera_web::{Planner, max_profile_bytes};
use wasm_bindgen_test::*;

#[wasm_bindgen_test]
fn embedded_profile_plans_the_headline_shape() {
    let p = Planner::embedded();
    assert!(!p.backends().is_empty());
    let json = p.plan(r#"{"layers": 16, "d_model": 512}"#).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["shape"]["layers"], 16);
    assert_eq!(v["predictions"].as_array().unwrap().len(), p.backends().len());
}

#[wasm_bindgen_test]
fn errors_cross_the_boundary() {
    assert!(Planner::new("{\"schema_version\": 99}").is_err());
    assert!(
        Planner::embedded()
            .plan(r#"{"layers": 4, "d_model": 500, "heads": 7}"#)
            .is_err()
    );
    assert!(max_profile_bytes() >= 1 << 20);
}

#[wasm_bindgen_test]
fn charts_are_svg_documents() {
    let c = Planner::embedded()
        .charts(r#"{"layers": 8, "d_model": 256}"#)
        .unwrap();
    assert!(c.contains("<svg"));
}
