//! Per-component time of one forward pass, and a bare timed loop of the whole
//! model (no harness) to check the harness adds no overhead.
//!
//! `cargo run -p bench --release --example breakdown -- flex 12 768 12 128 1`

use bench::model::{Decoder, Gelu};
use burn::tensor::activation::gelu;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Distribution, Tensor};
use planner::ShapeSpec;

fn median_ms(f: impl FnMut(), device: &burn::tensor::Device, runs: usize) -> f64 {
    bench::harness::timing::bare_median_ms(f, || device.sync().unwrap(), runs)
}

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let backend = a.first().map_or("flex", String::as_str);
    let n: Vec<u64> = a.iter().skip(1).map(|x| x.parse().unwrap()).collect();
    let (l, d, h, seq, b) = match n.as_slice() {
        [l, d, h, s, b] => (*l, *d, *h, *s, *b),
        _ => (12, 768, 12, 128, 1),
    };
    let runs = 15;
    let device = bench::backend::device(backend).unwrap();
    let shape = ShapeSpec {
        heads: Some(h),
        seq: Some(seq),
        batch: Some(b),
        ..ShapeSpec::new(l, d)
    }
    .validate()
    .unwrap();
    let (du, t, v) = (d as usize, (b * seq) as usize, shape.vocab() as usize);
    let x = Tensor::<2>::random([t, du], Distribution::Default, &device);
    let w_qkv = Tensor::<2>::random([du, 3 * du], Distribution::Default, &device);
    let w_out = Tensor::<2>::random([du, du], Distribution::Default, &device);
    let w_fc = Tensor::<2>::random([du, 4 * du], Distribution::Default, &device);
    let w_fc2 = Tensor::<2>::random([4 * du, du], Distribution::Default, &device);
    let wte = Tensor::<2>::random([v, du], Distribution::Default, &device);
    let hidden = Tensor::<2>::random([t, 4 * du], Distribution::Default, &device);
    let (bu, nu, hu) = (b as usize, seq as usize, h as usize);
    let q = Tensor::<4>::random([bu, hu, nu, du / hu], Distribution::Default, &device);
    let opts = AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal: true,
    };
    let gf = |flops: f64, ms: f64| flops / ms / 1e6;
    let (tf, df) = (t as f64, d as f64);
    let qkv = median_ms(|| drop(x.clone().matmul(w_qkv.clone())), &device, runs);
    let out = median_ms(|| drop(x.clone().matmul(w_out.clone())), &device, runs);
    let fc = median_ms(|| drop(x.clone().matmul(w_fc.clone())), &device, runs);
    let fc2 = median_ms(|| drop(hidden.clone().matmul(w_fc2.clone())), &device, runs);
    let act = median_ms(|| drop(gelu(hidden.clone())), &device, runs);
    let att = median_ms(
        || drop(attention(q.clone(), q.clone(), q.clone(), None, None, opts)),
        &device,
        runs,
    );
    let head = median_ms(|| drop(x.clone().matmul(wte.clone().transpose())), &device, runs);
    let head_wx = median_ms(
        || drop(wte.clone().matmul(x.clone().transpose()).transpose()),
        &device,
        runs,
    );
    println!("lm head as (W·xT)T {head_wx:8.2} ms");
    println!("backend {backend}, shape {shape}");
    println!(
        "qkv matmul      {qkv:8.2} ms  {:6.1} GFLOP/s",
        gf(6.0 * tf * df * df, qkv)
    );
    println!(
        "out matmul      {out:8.2} ms  {:6.1} GFLOP/s",
        gf(2.0 * tf * df * df, out)
    );
    println!(
        "fc matmul       {fc:8.2} ms  {:6.1} GFLOP/s",
        gf(8.0 * tf * df * df, fc)
    );
    println!(
        "fc2 matmul      {fc2:8.2} ms  {:6.1} GFLOP/s",
        gf(8.0 * tf * df * df, fc2)
    );
    println!("gelu (exact)    {act:8.2} ms");
    println!(
        "attention       {att:8.2} ms  {:6.1} GFLOP/s",
        gf(4.0 * (b * seq * seq) as f64 * df, att)
    );
    println!(
        "lm head         {head:8.2} ms  {:6.1} GFLOP/s",
        gf(2.0 * tf * df * v as f64, head)
    );
    let block_sum = qkv + out + fc + fc2 + act + att;
    println!(
        "sum per layer   {block_sum:8.2} ms; ×{l} + head = {:.1} ms",
        block_sum * l as f64 + head
    );
    let model = Decoder::new(&shape, Gelu::Exact, &device);
    let input = Decoder::input(&shape, &device);
    let whole = median_ms(|| drop(model.forward(input.clone())), &device, runs);
    let flops = shape.accounting().flops.total as f64;
    println!(
        "bare loop, whole model {whole:8.2} ms  {:6.1} GFLOP/s",
        gf(flops, whole)
    );
}
