//! The decode attention of grouped-query models alone, as the decoder folds
//! it: per key/value head, its group's g query heads become g query rows.
//! Times `attention(q [1, kv, g, dh], k [1, kv, c, dh], v)` for every split
//! of h query heads into kv groups, at a few contexts, rounds interleaved.
//!
//! `cargo run -p bench --release --example grouped_attention_op -- flex 8 32 256,1024,2048 100`
//! (backend, heads, head size, contexts, optionally µs of serial work before
//! each call). Prints the median µs per call over the rounds' medians, and µs
//! per query head and 1k context positions (data/probes/wake/).

use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Distribution, Tensor};

const ROUNDS: usize = 7;
const RUNS: usize = 200;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let backend = a.first().map_or("flex", String::as_str);
    let heads: usize = a.get(1).map_or(8, |x| x.parse().unwrap());
    let dh: usize = a.get(2).map_or(32, |x| x.parse().unwrap());
    // Serial work before each call (µs), as a decode step does between its
    // attentions: a parallel call after it must first wake an idle worker.
    let gap_us: u64 = a.get(4).map_or(0, |x| x.parse().unwrap());
    let contexts: Vec<usize> = a
        .get(3)
        .map_or("256,1024,2048", String::as_str)
        .split(',')
        .map(|x| x.parse().unwrap())
        .collect();
    let device = bench::backend::device(backend).unwrap();
    let sync = || device.sync().unwrap();
    let options = AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal: false,
    };
    let splits: Vec<usize> = (1..=heads).filter(|&kv| heads.is_multiple_of(kv)).collect();
    let cases: Vec<(usize, usize, [Tensor<4>; 3])> = contexts
        .iter()
        .flat_map(|&c| splits.iter().map(move |&kv| (c, kv)))
        .map(|(c, kv)| {
            let g = heads / kv;
            let t = |rows| Tensor::<4>::random([1, kv, rows, dh], Distribution::Default, &device);
            (c, kv, [t(g), t(c), t(c)])
        })
        .collect();
    let mut medians: Vec<Vec<f64>> = vec![vec![]; cases.len()];
    for _ in 0..ROUNDS {
        for (i, (_, _, [q, k, v])) in cases.iter().enumerate() {
            let run = || {
                let start = std::time::Instant::now();
                while start.elapsed().as_micros() < u128::from(gap_us) {
                    std::hint::spin_loop();
                }
                drop(attention(q.clone(), k.clone(), v.clone(), None, None, options));
            };
            let us = bench::harness::timing::bare_median_ms(run, sync, RUNS) * 1e3;
            medians[i].push(us - gap_us as f64);
        }
    }
    println!(
        "backend {backend}: h={heads} d_head={dh}, {gap_us} µs of serial work before each call (not counted), median over {ROUNDS} rounds of {RUNS} calls"
    );
    println!(
        "{:>8} {:>4} {:>4} {:>10} {:>22}",
        "context", "kv", "g", "µs", "µs per head·1k ctx"
    );
    for ((c, kv, _), m) in cases.iter().zip(&medians) {
        let us = fit::stats::median(m);
        let per = us / heads as f64 / (*c as f64 / 1000.0);
        println!("{c:>8} {kv:>4} {:>4} {us:>10.1} {per:>22.2}", heads / kv);
    }
}
