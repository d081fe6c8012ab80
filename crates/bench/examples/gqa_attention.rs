//! Which way should grouped-query attention run on a backend: copy each
//! key/value head to its query heads and attend over h heads (`repeat`), or
//! attend once per key/value head for its group's queries (`fold`, a mask
//! keeping prefill causal)? Times the whole decoder both ways, per phase.
//!
//! `cargo run -p bench --release --example gqa_attention -- flex 4 512 8 256 512,2048`
//! (backend, layers, d_model, heads, prefill seq, decode contexts). Prints
//! median ms of a prefill and of a decode step for kv_heads = h/4 and h/8,
//! each way; the decoder uses the faster per phase (`model::PREFILL_GROUPED`,
//! `model::DECODE_GROUPED`).

use bench::model::{Decoder, Gelu, GroupedAttention};
use planner::{Mlp, Norm, PositionEncoding, ShapeSpec};

const RUNS: usize = 30;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let backend = a.first().map_or("flex", String::as_str);
    let num = |i: usize, default: u64| a.get(i).map_or(default, |x| x.parse().unwrap());
    let (layers, d, heads, seq) = (num(1, 4), num(2, 512), num(3, 8), num(4, 256));
    let contexts: Vec<u64> = a
        .get(5)
        .map_or("512,2048", String::as_str)
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    let device = bench::backend::device(backend).unwrap();
    let sync = || device.sync().unwrap();
    let time = |f: &mut dyn FnMut()| bench::harness::timing::bare_median_ms(f, sync, RUNS);
    let ways = [GroupedAttention::Repeat, GroupedAttention::Fold];
    println!(
        "backend {backend}: L={layers} d={d} h={heads}, gated/rmsnorm/rope, V=8192, b=1, median of {RUNS}"
    );
    println!(
        "{:<8} {:<10} {:>8} {:>12} {:>12}",
        "kv_heads", "phase", "n or c", "repeat ms", "fold ms"
    );
    for kv in [heads / 4, heads / 8].into_iter().filter(|k| *k >= 1) {
        let spec = |seq| {
            ShapeSpec {
                heads: Some(heads),
                kv_heads: Some(kv),
                mlp: Some(Mlp::Gated),
                norm: Some(Norm::RmsNorm),
                position_encoding: Some(PositionEncoding::Rope),
                qkv_bias: Some(false),
                dense_bias: Some(false),
                vocab: Some(8192),
                positions: Some(4096),
                seq: Some(seq),
                ..ShapeSpec::new(layers, d)
            }
            .validate()
            .unwrap()
        };
        let shape = spec(seq);
        let ms: Vec<f64> = ways
            .iter()
            .map(|&how| {
                let model = Decoder::with_grouped_attention(&shape, Gelu::Exact, [how, how], &device);
                let tokens = Decoder::input(&shape, &device);
                time(&mut || drop(model.forward(tokens.clone())))
            })
            .collect();
        println!(
            "{kv:<8} {:<10} {seq:>8} {:>12.3} {:>12.3}",
            "prefill", ms[0], ms[1]
        );
        for &c in &contexts {
            let shape = spec(c);
            let ms: Vec<f64> = ways
                .iter()
                .map(|&how| {
                    let model = Decoder::with_grouped_attention(&shape, Gelu::Exact, [how, how], &device);
                    let token = Decoder::decode_input(&shape, &device);
                    let mut cache = Some(model.kv_cache(1, c as usize, &device));
                    time(&mut || {
                        let (logits, next) = model.decode_step(token.clone(), cache.take().unwrap());
                        drop(logits);
                        cache = Some(next);
                    })
                })
                .collect();
            println!("{kv:<8} {:<10} {c:>8} {:>12.3} {:>12.3}", "decode", ms[0], ms[1]);
        }
    }
}
