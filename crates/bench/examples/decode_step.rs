//! One decode block step rebuilt from the decoder's own layers and timed op
//! by op, next to the same step timed whole: where a batched decode step
//! spends what the operator micro-benchmarks do not show.
//!
//! `cargo run -p bench --release --example decode_step -- flex 192 3 384 2 10`
//! (backend, d_model, heads, context, batch, layers). Each op is timed on the
//! step's own tensors, in the step's order, with the backend synced around
//! it; then the step over `layers` distinct blocks, as the decoder runs it.

use burn::nn::{LayerNormConfig, LinearConfig};
use burn::tensor::activation::gelu;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Distribution, Tensor};

const RUNS: usize = 200;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let backend = a.first().map_or("flex", String::as_str);
    let n: Vec<usize> = a.iter().skip(1).map(|x| x.parse().unwrap()).collect();
    let (d, h, c, b, layers) = match n.as_slice() {
        [d, h, c, b] => (*d, *h, *c, *b, 10),
        [d, h, c, b, l] => (*d, *h, *c, *b, *l),
        _ => (192, 3, 384, 2, 10),
    };
    let device = bench::backend::device(backend).unwrap();
    let sync = || device.sync().unwrap();
    let time = |f: &mut dyn FnMut()| bench::harness::timing::bare_median_ms(f, sync, RUNS);
    let dh = d / h;
    let ln = LayerNormConfig::new(d).init(&device);
    let qkv_layer = LinearConfig::new(d, 3 * d).init(&device);
    let proj = LinearConfig::new(d, d).init(&device);
    let fc = LinearConfig::new(d, 4 * d).init(&device);
    let fc_out = LinearConfig::new(4 * d, d).init(&device);
    let x = Tensor::<3>::random([b, 1, d], Distribution::Default, &device);
    let mut keys = Some(Tensor::<4>::random([b, h, c, dh], Distribution::Default, &device));
    let mut values = Some(Tensor::<4>::random([b, h, c, dh], Distribution::Default, &device));
    let split = |qkv: &Tensor<3>, i: usize| {
        qkv.clone()
            .slice([0..b, 0..1, i * d..(i + 1) * d])
            .reshape([b, 1, h, dh])
            .swap_dims(1, 2)
    };
    let options = AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal: false,
    };
    let last = c - 1..c;
    let qkv = qkv_layer.forward(ln.forward(x.clone()));
    let mut rows: Vec<(&str, f64)> = vec![];
    rows.push(("ln", time(&mut || drop(ln.forward(x.clone())))));
    let normed = ln.forward(x.clone());
    rows.push((
        "qkv linear",
        time(&mut || drop(qkv_layer.forward(normed.clone()))),
    ));
    rows.push((
        "kv write (2)",
        time(&mut || {
            keys = Some(
                keys.take()
                    .unwrap()
                    .slice_assign([0..b, 0..h, last.clone(), 0..dh], split(&qkv, 1)),
            );
            values = Some(
                values
                    .take()
                    .unwrap()
                    .slice_assign([0..b, 0..h, last.clone(), 0..dh], split(&qkv, 2)),
            );
        }),
    ));
    let (k, v) = (keys.clone().unwrap(), values.clone().unwrap());
    rows.push((
        "attention (q sliced from qkv)",
        time(&mut || {
            drop(attention(
                split(&qkv, 0),
                k.clone(),
                v.clone(),
                None,
                None,
                options,
            ))
        }),
    ));
    let q_contiguous = Tensor::<4>::random([b, h, 1, dh], Distribution::Default, &device);
    rows.push((
        "attention (q contiguous)",
        time(&mut || {
            drop(attention(
                q_contiguous.clone(),
                k.clone(),
                v.clone(),
                None,
                None,
                options,
            ))
        }),
    ));
    let attended = attention(split(&qkv, 0), k.clone(), v.clone(), None, None, options)
        .swap_dims(1, 2)
        .reshape([b, 1, d]);
    rows.push(("out linear", time(&mut || drop(proj.forward(attended.clone())))));
    let x2 = x.clone() + proj.forward(attended.clone());
    rows.push(("ln", time(&mut || drop(ln.forward(x2.clone())))));
    let hidden = fc.forward(ln.forward(x2.clone()));
    rows.push(("mlp in linear", time(&mut || drop(fc.forward(normed.clone())))));
    rows.push(("gelu", time(&mut || drop(gelu(hidden.clone())))));
    let activated = gelu(hidden.clone());
    rows.push((
        "mlp out linear",
        time(&mut || drop(fc_out.forward(activated.clone()))),
    ));
    drop(k);
    drop(v);
    let whole = time(&mut || {
        let qkv = qkv_layer.forward(ln.forward(x.clone()));
        let kk = keys
            .take()
            .unwrap()
            .slice_assign([0..b, 0..h, last.clone(), 0..dh], split(&qkv, 1));
        let vv = values
            .take()
            .unwrap()
            .slice_assign([0..b, 0..h, last.clone(), 0..dh], split(&qkv, 2));
        let att = attention(split(&qkv, 0), kk.clone(), vv.clone(), None, None, options)
            .swap_dims(1, 2)
            .reshape([b, 1, d]);
        let y = x.clone() + proj.forward(att);
        let out = y.clone() + fc_out.forward(gelu(fc.forward(ln.forward(y))));
        drop(out);
        keys = Some(kk);
        values = Some(vv);
    });
    // The same step over `layers` distinct blocks, each with its own weights
    // and cache, as the decoder runs them.
    let blocks: Vec<_> = (0..layers)
        .map(|_| {
            (
                LinearConfig::new(d, 3 * d).init(&device),
                LinearConfig::new(d, d).init(&device),
                LinearConfig::new(d, 4 * d).init(&device),
                LinearConfig::new(4 * d, d).init(&device),
            )
        })
        .collect();
    let mut caches: Vec<Option<(Tensor<4>, Tensor<4>)>> = (0..layers)
        .map(|_| {
            let kv = || Tensor::<4>::random([b, h, c, dh], Distribution::Default, &device);
            Some((kv(), kv()))
        })
        .collect();
    let stacked = time(&mut || {
        let mut y = x.clone();
        for ((qkv_l, proj_l, fc_l, out_l), cache) in blocks.iter().zip(caches.iter_mut()) {
            let (kc, vc) = cache.take().unwrap();
            let qkv = qkv_l.forward(ln.forward(y.clone()));
            let kk = kc.slice_assign([0..b, 0..h, last.clone(), 0..dh], split(&qkv, 1));
            let vv = vc.slice_assign([0..b, 0..h, last.clone(), 0..dh], split(&qkv, 2));
            let att = attention(split(&qkv, 0), kk.clone(), vv.clone(), None, None, options)
                .swap_dims(1, 2)
                .reshape([b, 1, d]);
            let z = y + proj_l.forward(att);
            y = z.clone() + out_l.forward(gelu(fc_l.forward(ln.forward(z))));
            *cache = Some((kk, vv));
        }
        drop(y);
    });
    println!("{backend} d={d} h={h} c={c} b={b}: one block's decode step, median of {RUNS}");
    let mut sum = 0.0;
    for (name, ms) in &rows {
        if !name.contains("contiguous") {
            sum += ms;
        }
        println!("  {name:<32} {:>9.1} µs", ms * 1e3);
    }
    println!("  {:<32} {:>9.1} µs", "sum of the ops (one attention)", sum * 1e3);
    println!("  {:<32} {:>9.1} µs", "whole block step", whole * 1e3);
    println!(
        "  {:<32} {:>9.1} µs ({:.1} µs per block)",
        format!("{layers} distinct blocks"),
        stacked * 1e3,
        stacked * 1e3 / layers as f64
    );
}
