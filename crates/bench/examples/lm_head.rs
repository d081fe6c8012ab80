//! Why does the LM-head probe at d = 64, V = 50257 run slower than the same
//! product inside the decoder? Times `(W · xᵀ)ᵀ` with W and x made in
//! different ways, and the whole L=1 model.
//!
//! `cargo run -p bench --release --example lm_head -- flex 64 128`

use bench::model::{Decoder, Gelu};
use burn::nn::{EmbeddingConfig, LayerNormConfig};
use burn::tensor::{Distribution, Tensor};
use planner::ShapeSpec;

fn median_ms(f: impl FnMut(), device: &burn::tensor::Device, runs: usize) -> f64 {
    bench::harness::timing::bare_median_ms(f, || device.sync().unwrap(), runs)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map_or("flex", String::as_str);
    let d: usize = args.get(2).map_or(64, |s| s.parse().unwrap());
    let t: usize = args.get(3).map_or(128, |s| s.parse().unwrap());
    let v = 50257;
    let device = bench::backend::device(backend).unwrap();
    let head = |w: &Tensor<2>, x: &Tensor<2>| {
        let _ = w
            .clone()
            .matmul(x.clone().transpose())
            .transpose()
            .reshape([1, t, v]);
    };
    let w_random: Tensor<2> = Tensor::random([v, d], Distribution::Default, &device);
    let w_embedding = EmbeddingConfig::new(v, d).init(&device).weight.val();
    let x_random: Tensor<2> = Tensor::random([t, d], Distribution::Default, &device);
    let norm = LayerNormConfig::new(d).init(&device);
    let x_norm: Tensor<2> = norm
        .forward(Tensor::<3>::random([1, t, d], Distribution::Default, &device))
        .reshape([t, d]);
    for (name, w) in [("W random", &w_random), ("W embedding init", &w_embedding)] {
        for (xn, x) in [("x random", &x_random), ("x LayerNorm", &x_norm)] {
            println!(
                "{name:>18}, {xn:<12}: {:8.3} ms",
                median_ms(|| head(w, x), &device, 15)
            );
        }
    }
    let shape = ShapeSpec {
        seq: Some(t as u64),
        ..ShapeSpec::new(1, d as u64)
    }
    .validate()
    .unwrap();
    let model = Decoder::new(&shape, Gelu::Exact, &device);
    let tokens = Decoder::input(&shape, &device);
    println!(
        "whole L=1 model      : {:8.3} ms",
        median_ms(|| drop(model.forward(tokens.clone())), &device, 15)
    );
}
