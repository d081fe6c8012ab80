//! Burn workloads of single operators, built as the decoder of
//! `crate::model` runs them (same modules, same tensor ranks and layouts).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::nn::{EmbeddingConfig, LayerNormConfig, LinearConfig, RmsNormConfig, RotaryEncodingConfig};
use burn::tensor::activation::{gelu, gelu_approximate, silu};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Distribution, Int, Tensor};
use planner::operators::OpKind;

use super::record::Probe;
use crate::harness::timing::Workload;
use crate::model::Gelu;
use crate::runner::{panic_message, sync_device};

type Run = Box<dyn FnMut() -> Box<dyn Any>>;

/// One probe, ready to run.
pub struct OpWorkload {
    run: Run,
    device: Device,
    output: Option<Box<dyn Any>>,
}

impl Workload for OpWorkload {
    fn sync(&mut self) -> Result<(), String> {
        sync_device(&self.device)
    }
    fn execute(&mut self) -> Result<(), String> {
        let run = &mut self.run;
        // Held until after the closing sync (a lazy device must not skip it).
        self.output = Some(catch_unwind(AssertUnwindSafe(run)).map_err(panic_message)?);
        Ok(())
    }
    fn finish(&mut self) {
        self.output = None;
    }
}

fn usize_of(x: u64) -> usize {
    usize::try_from(x).expect("probe sizes fit in usize")
}

fn random<const D: usize>(dims: [u64; D], device: &Device) -> Tensor<D> {
    Tensor::random(dims.map(usize_of), Distribution::Default, device)
}

/// The heads of one third of a fused `[b, q, 3d]` QKV activation, as the
/// decoder splits it: `[b, h, q, d_head]`.
fn split(qkv: &Tensor<3>, i: usize, heads: usize) -> Tensor<4> {
    let [b, q, three_d] = qkv.dims();
    let d = three_d / 3;
    qkv.clone()
        .slice([0..b, 0..q, i * d..(i + 1) * d])
        .reshape([b, q, heads, d / heads])
        .swap_dims(1, 2)
}

/// The tied LM head as the decoder computes it: `(W · xᵀ)ᵀ` as `[1, tokens, vocab]`.
fn lm_head(weight: &Tensor<2>, x: &Tensor<2>) -> Tensor<3> {
    let ([vocab, _], [tokens, _]) = (weight.dims(), x.dims());
    weight
        .clone()
        .matmul(x.clone().transpose())
        .transpose()
        .reshape([1, tokens, vocab])
}

/// Attention of the fused activation's queries over `keys` and `values`,
/// heads merged back: `[b, q, d]`.
fn attend(qkv: &Tensor<3>, keys: Tensor<4>, values: Tensor<4>, heads: usize, causal: bool) -> Tensor<3> {
    let [b, q, three_d] = qkv.dims();
    let options = AttentionModuleOptions {
        scale: None,
        softcap: None,
        is_causal: causal,
    };
    attention(split(qkv, 0, heads), keys, values, None, None, options)
        .swap_dims(1, 2)
        .reshape([b, q, three_d / 3])
}

/// Builds the probe's tensors on `device` (a panic is returned as an error).
pub fn build(probe: &Probe, gelu_kind: Gelu, device: &Device) -> Result<OpWorkload, String> {
    let probe = *probe;
    let dev = device.clone();
    let run =
        catch_unwind(AssertUnwindSafe(move || build_run(probe, gelu_kind, &dev))).map_err(panic_message)?;
    // Touch everything once so lazy initialisation is not in the cold time.
    sync_device(device)?;
    Ok(OpWorkload {
        run,
        device: device.clone(),
        output: None,
    })
}

fn build_run(probe: Probe, gelu_kind: Gelu, device: &Device) -> Run {
    match probe {
        Probe::Operator(op) => hot(op, gelu_kind, device),
        Probe::Cold {
            op,
            working_set_bytes,
        } => cold(op, working_set_bytes, gelu_kind, device),
        Probe::Stream { working_set_bytes } => stream(working_set_bytes),
    }
}

/// Copies of an operator's weights that fill `set` bytes (at least two).
fn copies(op: &OpKind, set: u64) -> usize {
    let own = match *op {
        OpKind::Attention {
            batch,
            heads,
            kv,
            d_head,
            ..
        } => 8 * batch * heads * kv * d_head,
        _ => op.weight_bytes(),
    };
    usize_of(set.div_ceil(own.max(1)).max(2))
}

/// The operator with its weights (attention: its KV cache) rotated through
/// copies filling `set` bytes, written once so the pages are real.
fn cold(op: OpKind, set: u64, gelu_kind: Gelu, device: &Device) -> Run {
    let n = copies(&op, set);
    match op {
        OpKind::Linear {
            batch,
            rows,
            k,
            n: out,
            bias,
        } => {
            let layers: Vec<_> = (0..n)
                .map(|_| {
                    LinearConfig::new(usize_of(k), usize_of(out))
                        .with_bias(bias)
                        .with_initializer(burn::nn::Initializer::Ones)
                        .init(device)
                })
                .collect();
            let x = random([batch, rows, k], device);
            let mut i = 0;
            Box::new(move || {
                i = (i + 1) % layers.len();
                Box::new(layers[i].forward(x.clone()))
            })
        }
        OpKind::LmHead { tokens, d, vocab } => {
            let weights: Vec<Tensor<2>> = (0..n)
                .map(|_| Tensor::ones([usize_of(vocab), usize_of(d)], device))
                .collect();
            let x = random([tokens, d], device);
            let mut i = 0;
            Box::new(move || {
                i = (i + 1) % weights.len();
                Box::new(lm_head(&weights[i], &x))
            })
        }
        OpKind::Attention {
            batch,
            heads,
            q,
            kv,
            d_head,
            causal: false,
        } => {
            let h = usize_of(heads);
            let dims = [batch, heads, kv, d_head].map(usize_of);
            let caches: Vec<(Tensor<4>, Tensor<4>)> = (0..n)
                .map(|_| (Tensor::ones(dims, device), Tensor::ones(dims, device)))
                .collect();
            let qkv = random([batch, q, 3 * heads * d_head], device);
            let mut i = 0;
            Box::new(move || {
                i = (i + 1) % caches.len();
                let (keys, values) = caches[i].clone();
                Box::new(attend(&qkv, keys, values, h, false))
            })
        }
        // Operators without weights of their own stream only activations: as hot.
        other => hot(other, gelu_kind, device),
    }
}

fn hot(op: OpKind, gelu_kind: Gelu, device: &Device) -> Run {
    match op {
        OpKind::Linear {
            batch,
            rows,
            k,
            n,
            bias,
        } => {
            let layer = LinearConfig::new(usize_of(k), usize_of(n))
                .with_bias(bias)
                .init(device);
            let x = random([batch, rows, k], device);
            Box::new(move || Box::new(layer.forward(x.clone())))
        }
        OpKind::LmHead { tokens, d, vocab } => {
            let weight = random([vocab, d], device);
            let x = random([tokens, d], device);
            Box::new(move || Box::new(lm_head(&weight, &x)))
        }
        OpKind::Attention {
            batch,
            heads,
            q,
            kv,
            d_head,
            causal,
        } => {
            let h = usize_of(heads);
            let qkv = random([batch, q, 3 * heads * d_head], device);
            if causal && q > kv {
                // Grouped queries folded into rows, as the decoder runs
                // them: keys of their own, a mask for causality.
                let (k, v) = (
                    random([batch, heads, kv, d_head], device),
                    random([batch, heads, kv, d_head], device),
                );
                let (b, g, n) = (usize_of(batch), usize_of(q / kv), usize_of(kv));
                let mask = crate::model::folded_causal_mask(b, h, g, n, n, device);
                let queries = split(&qkv, 0, h);
                let options = AttentionModuleOptions {
                    scale: None,
                    softcap: None,
                    is_causal: false,
                };
                return Box::new(move || {
                    Box::new(attention(
                        queries.clone(),
                        k.clone(),
                        v.clone(),
                        Some(mask.clone()),
                        None,
                        options,
                    ))
                });
            }
            let cache = (!causal).then(|| {
                (
                    random([batch, heads, kv, d_head], device),
                    random([batch, heads, kv, d_head], device),
                )
            });
            Box::new(move || {
                let (keys, values) = match &cache {
                    Some((k, v)) => (k.clone(), v.clone()),
                    None => (split(&qkv, 1, h), split(&qkv, 2, h)),
                };
                Box::new(attend(&qkv, keys, values, h, causal))
            })
        }
        OpKind::KvWrite {
            batch,
            heads,
            context,
            d_head,
        } => {
            let qkv = random([batch, 1, 3 * heads * d_head], device);
            let mut buffer = Some(random([batch, heads, context, d_head], device));
            let (b, h, c, dh) = (
                usize_of(batch),
                usize_of(heads),
                usize_of(context),
                usize_of(d_head),
            );
            Box::new(move || {
                // Moved through the write so it stays uniquely owned, as in the decoder.
                let written = buffer
                    .take()
                    .expect("the buffer is put back after every write")
                    .slice_assign([0..b, 0..h, c - 1..c, 0..dh], split(&qkv, 1, h));
                buffer = Some(written);
                Box::new(())
            })
        }
        OpKind::LayerNorm { rows, width } => {
            let norm = LayerNormConfig::new(usize_of(width)).init(device);
            let x = random([1, rows, width], device);
            Box::new(move || Box::new(norm.forward(x.clone())))
        }
        OpKind::RmsNorm { rows, width } => {
            let norm = RmsNormConfig::new(usize_of(width)).init(device);
            let x = random([1, rows, width], device);
            Box::new(move || Box::new(norm.forward(x.clone())))
        }
        OpKind::Rope { rows, width } => {
            // As the decoder rotates: `[1, rows, 1, width]` heads at position 0
            // of a table of one position, i.e. Burn's `RotaryEncoding::apply`
            // over `rows` head vectors.
            let rope = RotaryEncodingConfig::new(1, usize_of(width)).init(device);
            let x = random([1, rows, 1, width], device);
            Box::new(move || Box::new(rope.apply(x.clone(), 0)))
        }
        OpKind::SiluMul { elements } => {
            let (gate, up) = (random([1, elements], device), random([1, elements], device));
            Box::new(move || Box::new(silu(gate.clone()) * up.clone()))
        }
        OpKind::Gelu { elements } => {
            let x = random([1, elements], device);
            Box::new(move || {
                Box::new(match gelu_kind {
                    Gelu::Exact => gelu(x.clone()),
                    Gelu::Tanh => gelu_approximate(x.clone()),
                })
            })
        }
        OpKind::Add { elements } => {
            let (x, y) = (random([1, elements], device), random([1, elements], device));
            Box::new(move || Box::new(x.clone() + y.clone()))
        }
        OpKind::Embedding {
            rows,
            width,
            table_rows,
        } => {
            let table = EmbeddingConfig::new(usize_of(table_rows), usize_of(width)).init(device);
            let ids = Tensor::<1, Int>::arange(0..rows as i64, device)
                .mul_scalar(7919)
                .remainder_scalar(table_rows as i64)
                .reshape([1, usize_of(rows)]);
            Box::new(move || Box::new(table.forward(ids.clone())))
        }
    }
}

/// Bytes of one buffer of a stream probe.
const STREAM_BLOCK_BYTES: u64 = 2 << 20;

/// Plain reads of `ceil(bytes / 2 MiB)` distinct buffers, split over every
/// core the process may use, one pass per run: the machine's bandwidth at
/// that working set, whatever a backend's kernels make of it.
fn stream(bytes: u64) -> Run {
    let count = usize_of(bytes.div_ceil(STREAM_BLOCK_BYTES).max(1));
    let floats = usize_of(STREAM_BLOCK_BYTES / 4);
    let buffers: Vec<Vec<f32>> = (0..count).map(|i| vec![i as f32 + 1.0; floats]).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(count);
    Box::new(move || {
        let total: f32 = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let buffers = &buffers;
                    scope.spawn(move || {
                        let mut lanes = [0f32; 16];
                        for b in buffers.iter().skip(t).step_by(threads) {
                            for chunk in b.chunks_exact(16) {
                                for (l, x) in lanes.iter_mut().zip(chunk) {
                                    *l += x;
                                }
                            }
                        }
                        lanes.iter().sum::<f32>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
        });
        Box::new(std::hint::black_box(total))
    })
}

/// Bytes one run of a stream probe reads (its buffers, rounded up to whole ones).
pub fn stream_bytes_read(bytes: u64) -> u64 {
    bytes.div_ceil(STREAM_BLOCK_BYTES).max(1) * STREAM_BLOCK_BYTES
}
