//! The sizes `bench ops` measures: a grid that covers the operators of the
//! shapes the planner searches and the sweeps measure.
//!
//! Widths 32…1536, decode batches 1…8 (one row per sequence), prefill
//! batches × rows from 1 × 32 to 8 × 512 tokens, head sizes 32…128, contexts
//! 32…1024, vocabularies 256…131072 (the full grid; the onboarding grid
//! GPT-2's two). The product of every dimension would take hours; the grid
//! instead follows the operators' own structure (a linear layer's k × n is
//! d × 3d, d × d, d × ff or ff × d), and the cost laws read between its
//! points. Llama-style products (grouped QKV, the gated MLP's 8d/3) and
//! prompt rows 64 and 256 were measured once on a Zen 4 VM and added nothing
//! held out (`data/llama/ops-2-more.jsonl`, README); on a Xeon VM a 64-row
//! product ran slower than a 128-row one and 4 × 32 rows twice one 128-row
//! product, which no neighbour says, so 1 × 64 and 4 × 32 are in both grids
//! (`data/onboarding/xeon-2/`, README). Probes above a FLOP cap are left
//! out: they are compute bound, where the laws extrapolate along their power law.
//! Decode-style products and decode attention are measured cold as well
//! (weights or cache rotated through copies of 256 MiB in all), and the
//! machine's bandwidth over working sets of 2 MiB … 1 GiB says how far
//! between hot and cold a step of a given size lies.

use planner::operators::OpKind;

use super::record::Probe;

/// Which grid to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grid {
    /// Every class over the sizes the planner searches (a few minutes).
    Full,
    /// About half the full grid's points over the same ranges (onboarding).
    Onboarding,
    /// A handful of tiny sizes per class (seconds; for tests).
    Quick,
}

struct Axes {
    widths: &'static [u64],
    /// (batch, rows per sequence) of linear layers.
    token_layouts: &'static [(u64, u64)],
    /// Tokens of the LM head, LayerNorm and embeddings.
    tokens: &'static [u64],
    vocabs: &'static [u64],
    batches: &'static [u64],
    heads: &'static [u64],
    seqs: &'static [u64],
    contexts: &'static [u64],
    head_sizes: &'static [u64],
    elements: &'static [u64],
    stream_bytes: &'static [u64],
    /// Total bytes of the rotating copies of cold probes.
    cold_set_bytes: u64,
    max_flops: u64,
}

const FULL: Axes = Axes {
    widths: &[32, 64, 128, 256, 384, 512, 768, 1024, 1536],
    token_layouts: &[
        (1, 1),
        (2, 1),
        (4, 1),
        (8, 1),
        (1, 32),
        (1, 64),
        (1, 128),
        (1, 512),
        (4, 32),
        (4, 128),
        (8, 128),
        (4, 512),
    ],
    tokens: &[1, 2, 4, 8, 32, 128, 512, 2048],
    // Steps of 4 from 256, GPT-2's 50257 and Llama 3's size class: an LM
    // head's time per FLOP bends with the vocabulary (its logits outgrow the
    // caches), which two points cannot show, and Llama 3's 128256 lay beyond
    // the last point.
    vocabs: &[256, 1024, 4096, 16_384, 50_257, 131_072],
    batches: &[1, 4],
    heads: &[1, 4, 16],
    seqs: &[32, 128, 512],
    contexts: &[32, 64, 256, 1024],
    head_sizes: &[32, 64, 128],
    elements: &[
        1 << 5,
        1 << 7,
        1 << 9,
        1 << 11,
        1 << 13,
        1 << 15,
        1 << 17,
        1 << 19,
        1 << 21,
        1 << 23,
    ],
    stream_bytes: &[
        1 << 21,
        1 << 22,
        1 << 23,
        1 << 24,
        1 << 25,
        1 << 26,
        1 << 27,
        1 << 28,
        1 << 29,
        1 << 30,
    ],
    cold_set_bytes: 1 << 28,
    max_flops: 1 << 35,
};

const ONBOARDING: Axes = Axes {
    widths: &[32, 64, 128, 256, 512, 1024, 1536],
    token_layouts: &[
        (1, 1),
        (2, 1),
        (4, 1),
        (8, 1),
        (1, 32),
        (1, 64),
        (1, 128),
        (1, 512),
        (4, 32),
        (4, 128),
    ],
    tokens: &[1, 2, 8, 32, 128, 512, 2048],
    vocabs: &[256, 50_257],
    batches: &[1, 4],
    heads: &[1, 4, 16],
    seqs: &[32, 128, 512],
    contexts: &[32, 256, 1024],
    head_sizes: &[32, 64, 128],
    elements: &[1 << 5, 1 << 9, 1 << 13, 1 << 17, 1 << 21, 1 << 23],
    stream_bytes: &[1 << 21, 1 << 23, 1 << 25, 1 << 27, 1 << 29],
    cold_set_bytes: 1 << 28,
    max_flops: 1 << 34,
};

const QUICK: Axes = Axes {
    widths: &[32, 64],
    token_layouts: &[(1, 1), (2, 16)],
    tokens: &[1, 16],
    vocabs: &[256],
    batches: &[1],
    heads: &[1, 2],
    seqs: &[16],
    contexts: &[16],
    head_sizes: &[16, 32],
    elements: &[1 << 6, 1 << 10],
    stream_bytes: &[1 << 20, 1 << 21],
    cold_set_bytes: 1 << 21,
    max_flops: 1 << 30,
};

/// Every probe of a grid, in a stable order (streams last).
pub fn probes(grid: Grid) -> Vec<Probe> {
    let a = match grid {
        Grid::Full => &FULL,
        Grid::Onboarding => &ONBOARDING,
        Grid::Quick => &QUICK,
    };
    let mut ops: Vec<OpKind> = vec![];
    for &d in a.widths {
        for &(batch, rows) in a.token_layouts {
            for (k, n) in [(d, 3 * d), (d, d), (d, 4 * d), (4 * d, d)] {
                ops.push(OpKind::Linear {
                    batch,
                    rows,
                    k,
                    n,
                    bias: true,
                });
            }
        }
        for &tokens in a.tokens {
            for &vocab in a.vocabs {
                ops.push(OpKind::LmHead { tokens, d, vocab });
            }
            ops.push(OpKind::LayerNorm {
                rows: tokens,
                width: d,
            });
            ops.push(OpKind::RmsNorm {
                rows: tokens,
                width: d,
            });
            ops.push(OpKind::Embedding {
                rows: tokens,
                width: d,
                table_rows: 1024,
            });
        }
    }
    for &batch in a.batches {
        for &heads in a.heads {
            for &d_head in a.head_sizes {
                for &n in a.seqs {
                    ops.push(OpKind::Attention {
                        batch,
                        heads,
                        q: n,
                        kv: n,
                        d_head,
                        causal: true,
                    });
                }
                // Grouped queries fold g query heads into g·q rows of one
                // key/value head (`planner::operators::graph`): groups of 4 and 8.
                for group in [4, 8] {
                    let n = a.seqs[a.seqs.len() / 2];
                    ops.push(OpKind::Attention {
                        batch,
                        heads,
                        q: group * n,
                        kv: n,
                        d_head,
                        causal: true,
                    });
                    let c = a.contexts[a.contexts.len() / 2];
                    ops.push(OpKind::Attention {
                        batch,
                        heads,
                        q: group,
                        kv: c,
                        d_head,
                        causal: false,
                    });
                }
                for &c in a.contexts {
                    ops.push(OpKind::Attention {
                        batch,
                        heads,
                        q: 1,
                        kv: c,
                        d_head,
                        causal: false,
                    });
                    ops.push(OpKind::KvWrite {
                        batch,
                        heads,
                        context: c,
                        d_head,
                    });
                }
            }
        }
    }
    for &elements in a.elements {
        ops.push(OpKind::Gelu { elements });
        ops.push(OpKind::Add { elements });
        ops.push(OpKind::SiluMul { elements });
    }
    // Rotary embeddings over b·heads·positions head vectors.
    for &d_head in a.head_sizes {
        for &tokens in a.tokens {
            for &heads in a.heads {
                ops.push(OpKind::Rope {
                    rows: tokens * heads,
                    width: d_head,
                });
            }
        }
    }
    // Rotary rows tokens × heads meet at equal products: each size once.
    let mut seen = std::collections::HashSet::new();
    let ops: Vec<OpKind> = ops
        .into_iter()
        .filter(|op| op.flops() <= a.max_flops && seen.insert(*op))
        .collect();
    // Decode-style products and attention over a cache, cold as well: a
    // decode step re-reads weights and cache that may not stay in cache.
    let cold: Vec<Probe> = ops
        .iter()
        .filter(|op| match op {
            OpKind::Linear { rows, .. } => *rows == 1,
            OpKind::LmHead { tokens, .. } => *tokens <= 8,
            OpKind::Attention { causal, .. } => !causal,
            _ => false,
        })
        .map(|&op| Probe::Cold {
            op,
            working_set_bytes: a.cold_set_bytes,
        })
        .collect();
    let mut probes: Vec<Probe> = ops.into_iter().map(Probe::Operator).collect();
    probes.extend(cold);
    probes.extend(
        a.stream_bytes
            .iter()
            .map(|&working_set_bytes| Probe::Stream { working_set_bytes }),
    );
    probes
}

#[cfg(test)]
mod tests {
    use super::*;
    use planner::Phase;
    use planner::operators::{OpClass, graph};
    use std::collections::HashSet;

    #[test]
    fn every_class_and_both_attention_kinds_are_measured() {
        for grid in [Grid::Full, Grid::Onboarding, Grid::Quick] {
            let probes = probes(grid);
            let classes: HashSet<OpClass> = probes
                .iter()
                .filter_map(|p| match p {
                    Probe::Operator(op) => Some(op.class()),
                    Probe::Cold { .. } | Probe::Stream { .. } => None,
                })
                .collect();
            assert_eq!(classes.len(), OpClass::ALL.len(), "{grid:?}");
            let causal: HashSet<bool> = probes
                .iter()
                .filter_map(|p| match p {
                    Probe::Operator(OpKind::Attention { causal, .. }) => Some(*causal),
                    _ => None,
                })
                .collect();
            assert_eq!(causal.len(), 2);
            assert!(probes.iter().any(|p| matches!(p, Probe::Stream { .. })));
            assert!(probes.iter().any(|p| matches!(p, Probe::Cold { .. })));
            let keys: HashSet<String> = probes.iter().map(Probe::key).collect();
            assert_eq!(keys.len(), probes.len(), "no probe twice");
        }
    }

    #[test]
    fn the_grid_spans_the_operators_of_the_default_sweeps() {
        // Each size of every operator of the committed sweeps' shapes lies
        // within the grid's range for its class (between points the laws
        // interpolate; the FLOP cap leaves the largest compute-bound ones to
        // extrapolation, checked apart).
        for grid in [Grid::Full, Grid::Onboarding] {
            spans_the_sweeps(grid, &["default.toml", "decode.toml"], &Phase::ALL);
        }
    }

    #[test]
    fn the_full_grid_spans_the_operators_of_the_llama_sweeps() {
        // Each in the phase it is measured in (a decode sweep's contexts
        // are no prompts).
        spans_the_sweeps(Grid::Full, &["llama.toml", "llama-more.toml"], &[Phase::Prefill]);
        spans_the_sweeps(
            Grid::Full,
            &["llama-decode.toml", "llama-more-decode.toml"],
            &[Phase::Decode],
        );
    }

    #[test]
    fn the_full_grid_measures_the_lm_head_between_and_beyond_gpt2s_vocabulary() {
        // Llama 3's 128256 lies within the points, 32000 and 16000 between them.
        let vocabs: std::collections::BTreeSet<u64> = probes(Grid::Full)
            .into_iter()
            .filter_map(|p| match p {
                Probe::Operator(OpKind::LmHead { vocab, .. }) => Some(vocab),
                _ => None,
            })
            .collect();
        assert_eq!(Vec::from_iter(vocabs), [256, 1024, 4096, 16_384, 50_257, 131_072]);
    }

    fn spans_the_sweeps(grid: Grid, files: &[&str], phases: &[Phase]) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sweeps");
        let probes = probes(grid);
        let ranges = |class: OpClass| -> Vec<(u64, u64)> {
            let sizes: Vec<Vec<u64>> = probes
                .iter()
                .filter_map(|p| match p {
                    Probe::Operator(op) if op.class() == class => Some(op.sizes()),
                    _ => None,
                })
                .collect();
            (0..sizes[0].len())
                .map(|i| {
                    let col = sizes.iter().map(|s| s[i]);
                    (col.clone().min().unwrap(), col.max().unwrap())
                })
                .collect()
        };
        for file in files {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            let sweep = crate::sweep::Sweep::parse(&text).unwrap();
            for entry in &sweep.entries {
                for &phase in phases {
                    for o in graph(&entry.shape, phase) {
                        let r = ranges(o.kind.class());
                        for (i, (&s, (lo, hi))) in o.kind.sizes().iter().zip(&r).enumerate() {
                            // Elementwise sizes and compute-bound products may exceed the top by 4×.
                            assert!(
                                s >= *lo && s <= 4 * hi,
                                "{grid:?}, {file}: {} size {i} = {s} outside [{lo}, {hi}]",
                                o.kind.key()
                            );
                        }
                    }
                }
            }
        }
    }
}
