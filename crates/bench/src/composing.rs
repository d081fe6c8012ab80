//! `bench compose`, the adapter: operator files and whole-model measurement
//! files in, `fit::operators`' laws, additivity and calibration out.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use fit::operators::{self, AdditivityRow, AdditivitySummary, Anchor, CalibrationRow, LawFit, OperatorData};
use fit::stats::median;
use planner::compose::Calibration;
use planner::costlaw::{LawPoint, OperatorLaws, StreamPoint};
use planner::parallelism::CoresReading;
use planner::profile::Accuracy;
use planner::{Phase, Shape};

use crate::ops::record::{self as ops_record, OperatorMeasurement, Probe};
use crate::ops::workload::stream_bytes_read;
use crate::record::{self, Status};

/// What to compose.
#[derive(Debug, Clone)]
pub struct ComposeOptions {
    /// Operator files (`bench ops`).
    pub ops: Vec<PathBuf>,
    /// Whole-model measurement files or folders.
    pub measurements: Vec<PathBuf>,
    /// Anchors per phase the calibration is fitted on (chosen to cover the
    /// shapes: see `spread`); the other shapes are held out.
    pub anchors: usize,
    /// Keep whole-model measurements taken while other load ran or the
    /// hypervisor stole time (left out by default, as the fit does).
    pub keep_disturbed: bool,
}

/// One phase of one backend.
pub struct PhaseCheck {
    /// Which phase.
    pub phase: Phase,
    /// Σ operators against every measured shape, before correction.
    pub additivity: Vec<AdditivityRow>,
    /// Its summary.
    pub summary: AdditivitySummary,
    /// Calibration fitted on the anchors.
    pub calibration: Calibration,
    /// The anchors' shapes.
    pub anchor_shapes: Vec<Shape>,
    /// Accuracy of the uncorrected sum on the held-out shapes.
    pub uncorrected: Accuracy,
    /// Accuracy of the calibrated model on the held-out shapes.
    pub held_out: Accuracy,
    /// Leave-one-out accuracy of a calibration fitted on all shapes.
    pub loo_all: Accuracy,
}

/// One backend's composition.
pub struct BackendCheck {
    /// Backend.
    pub backend: String,
    /// Operator measurements used.
    pub probes: usize,
    /// The laws.
    pub laws: OperatorLaws,
    /// Their fits.
    pub fits: Vec<LawFit>,
    /// Per phase.
    pub phases: Vec<PhaseCheck>,
}

/// Reads operator files into law points and stream points per backend
/// (the newest line of each probe wins; every machine pooled).
pub fn read_laws(paths: &[PathBuf]) -> anyhow::Result<(BTreeMap<String, OperatorData>, Vec<String>)> {
    let (by_machine, warnings) = read_laws_by_machine(paths)?;
    let mut out: BTreeMap<String, OperatorData> = BTreeMap::new();
    for ((backend, _), data) in by_machine {
        let entry = out.entry(backend).or_default();
        entry.hot.extend(data.hot);
        entry.cold.extend(data.cold);
        entry.streams.extend(data.streams);
        entry.cores.extend(data.cores);
        entry.cold_working_set_bytes = entry.cold_working_set_bytes.or(data.cold_working_set_bytes);
    }
    Ok((out, warnings))
}

/// Operator data by (backend, machine key).
pub type DataByMachine = BTreeMap<(String, String), OperatorData>;

/// Reads operator files into the data of each (backend, machine key) (see
/// [`crate::fitting::machine_key`]); the newest line of each probe wins.
pub fn read_laws_by_machine(paths: &[PathBuf]) -> anyhow::Result<(DataByMachine, Vec<String>)> {
    let mut newest: BTreeMap<(String, String, String), OperatorMeasurement> = BTreeMap::new();
    let mut warnings = vec![];
    for path in paths {
        let r = ops_record::read(path).with_context(|| format!("reading {}", path.display()))?;
        for (line, why) in r.skipped {
            warnings.push(format!(
                "{}:{line}: unreadable line skipped ({why})",
                path.display()
            ));
        }
        for m in r.measurements.into_iter().filter(|m| m.status == Status::Ok) {
            let machine = crate::fitting::machine_key_of(&m.fingerprint);
            newest.insert((m.backend.clone(), machine, m.probe.key()), m);
        }
    }
    let mut out: BTreeMap<(String, String), OperatorData> = BTreeMap::new();
    for ((backend, machine, _), m) in newest {
        let Some(t) = &m.timing else { continue };
        let entry = out.entry((backend, machine)).or_default();
        match m.probe {
            Probe::Operator(op) => {
                entry.hot.push(LawPoint { op, ms: t.median_ms });
                if let Some(cores) = t.load.own_cores {
                    entry.cores.push(CoresReading { op, cores });
                }
            }
            Probe::Cold {
                op,
                working_set_bytes,
            } => {
                entry.cold.push(LawPoint { op, ms: t.median_ms });
                entry.cold_working_set_bytes = Some(working_set_bytes);
            }
            Probe::Stream { working_set_bytes } => entry.streams.push(StreamPoint {
                working_set_bytes,
                bytes_per_ms: stream_bytes_read(working_set_bytes) as f64 / t.median_ms,
            }),
        }
    }
    Ok((out, warnings))
}

/// Reads whole-model files into anchors per backend: one per (phase, shape),
/// the median of the file medians of undisturbed measurements (of all, with
/// `keep_disturbed`); also how many measurements were left out as disturbed.
pub fn read_anchors(
    paths: &[PathBuf],
    keep_disturbed: bool,
) -> anyhow::Result<(BTreeMap<String, Vec<Anchor>>, usize)> {
    let mut files = vec![];
    for p in paths {
        if p.is_dir() {
            files.extend(record::jsonl_files(p)?);
        } else {
            files.push(p.clone());
        }
    }
    let mut medians: BTreeMap<(String, Phase, String), (Shape, Vec<f64>)> = BTreeMap::new();
    let mut disturbed = 0;
    for f in &files {
        let r = record::read(f).with_context(|| format!("reading {}", f.display()))?;
        for m in r.measurements {
            let Some(t) = m.timing.as_ref().filter(|_| m.status == Status::Ok) else {
                continue;
            };
            if !keep_disturbed && t.load.disturbed() {
                disturbed += 1;
                continue;
            }
            let Ok(shape) = m.shape() else { continue };
            medians
                .entry((m.backend.clone(), m.kind, shape.key()))
                .or_insert_with(|| (shape, vec![]))
                .1
                .push(t.median_ms);
        }
    }
    let mut out: BTreeMap<String, Vec<Anchor>> = BTreeMap::new();
    for ((backend, phase, _), (shape, ms)) in medians {
        out.entry(backend).or_default().push(Anchor {
            shape,
            phase,
            measured_ms: median(&ms),
        });
    }
    Ok((out, disturbed))
}

/// Picks `n` anchors that cover the shapes: the smallest and largest
/// operator sums first, then [`operators::cover`]'s farthest shapes.
fn spread(rows: &[AdditivityRow], n: usize) -> Vec<usize> {
    let by_sum = |a: &usize, b: &usize| rows[*a].operator_sum_ms.total_cmp(&rows[*b].operator_sum_ms);
    let seeds: Vec<usize> = [(0..rows.len()).min_by(by_sum), (0..rows.len()).max_by(by_sum)]
        .into_iter()
        .flatten()
        .collect();
    let shapes: Vec<Shape> = rows.iter().map(|r| r.shape).collect();
    operators::cover(&shapes, &seeds, n)
}

/// Fits laws and checks composition for every backend with both operator and
/// whole-model data.
pub fn compose(opts: &ComposeOptions) -> anyhow::Result<(Vec<BackendCheck>, Vec<String>)> {
    let (laws_by_backend, mut warnings) = read_laws(&opts.ops)?;
    let (anchors_by_backend, disturbed) = read_anchors(&opts.measurements, opts.keep_disturbed)?;
    if disturbed > 0 {
        warnings.push(format!(
            "{disturbed} whole-model measurement(s) left out: taken while other load ran or the hypervisor stole time (--keep-disturbed keeps them)"
        ));
    }
    let mut checks = vec![];
    for (backend, data) in &laws_by_backend {
        let Some(all) = anchors_by_backend.get(backend) else {
            continue;
        };
        let (laws, fits) = operators::fit_laws(data);
        let mut phases = vec![];
        for phase in Phase::ALL {
            let anchors: Vec<Anchor> = all.iter().filter(|a| a.phase == phase).cloned().collect();
            if anchors.len() < 3 {
                continue;
            }
            let rows = operators::additivity(&laws, &anchors)
                .with_context(|| format!("composing {backend} {phase}"))?;
            let picked = spread(&rows, opts.anchors);
            let as_row = CalibrationRow::from;
            let anchor_rows: Vec<_> = picked.iter().map(|&i| as_row(&rows[i])).collect();
            let held: Vec<_> = (0..rows.len())
                .filter(|i| !picked.contains(i))
                .map(|i| as_row(&rows[i]))
                .collect();
            let calibration = operators::calibrate(&anchor_rows);
            let all_rows: Vec<_> = rows.iter().map(as_row).collect();
            phases.push(PhaseCheck {
                phase,
                summary: operators::summarize_additivity(&rows),
                calibration,
                anchor_shapes: picked.iter().map(|&i| rows[i].shape).collect(),
                uncorrected: operators::evaluate(&Calibration::IDENTITY, &held, "held out, uncorrected"),
                held_out: operators::evaluate(&calibration, &held, "held out"),
                loo_all: operators::cross_validate(&all_rows),
                additivity: rows,
            });
        }
        checks.push(BackendCheck {
            backend: backend.clone(),
            probes: data.hot.len() + data.cold.len() + data.streams.len(),
            laws,
            fits,
            phases,
        });
    }
    if checks.is_empty() {
        bail!("no backend has both operator measurements and whole-model measurements in the files given");
    }
    Ok((checks, warnings))
}

/// The text `bench compose` prints; the operator breakdown of the `explain` worst shapes per phase.
pub fn render(checks: &[BackendCheck], explain: usize, dump: bool) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for c in checks {
        let _ = writeln!(s, "## {} ({} operator measurements)\n", c.backend, c.probes);
        let _ = writeln!(
            s,
            "| law | points | correction width | held-out MAPE | base law alone |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|");
        for f in &c.fits {
            let mut name = match f.law.causal {
                Some(true) => format!("{} (causal)", f.law.class.name()),
                Some(false) => format!("{} (decode)", f.law.class.name()),
                None => f.law.class.name().to_string(),
            };
            if f.law.cold {
                name.push_str(", cold");
            }
            let width = f.law.smoothing.map_or("none".to_string(), |w| format!("{w}"));
            let _ = writeln!(
                s,
                "| {name} | {} | {width} | {:.1}% | {:.1}% |",
                f.law.points.len(),
                f.loo_mape_pct,
                f.base_mape_pct
            );
        }
        let mut streams = c.laws.streams.clone();
        streams.sort_by_key(|p| p.working_set_bytes);
        let curve: Vec<String> = streams
            .iter()
            .map(|p| {
                format!(
                    "{} MiB {:.0} GB/s",
                    p.working_set_bytes >> 20,
                    p.bytes_per_ms / 1e6
                )
            })
            .collect();
        let _ = writeln!(s, "\nbandwidth: {}\n", curve.join(", "));
        let _ = writeln!(
            s,
            "| phase | shapes | Σ within ±15% | within ±10% | median Σ/measured | anchors | calibration | held out: uncorrected MAPE | calibrated MAPE | within ±10% | pairwise | LOO all |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|");
        for p in &c.phases {
            let _ = writeln!(
                s,
                "| {} | {} | {:.0}% | {:.0}% | {:.3} | {} | {:.3}·Σ + {:.3}·cold gap + {:.3} ms·L + {:.3} ms·L·b + {:.3} ms | {:.1}% | {:.1}% | {:.0}% | {:.0}% | {:.1}% |",
                p.phase,
                p.summary.n,
                100.0 * p.summary.within_15pct,
                100.0 * p.summary.within_10pct,
                p.summary.median_ratio,
                p.anchor_shapes.len(),
                p.calibration.scale,
                p.calibration.cold_gap_share,
                p.calibration.per_layer_ms,
                p.calibration.per_layer_sequence_ms,
                p.calibration.constant_ms,
                p.uncorrected.mape_pct,
                p.held_out.mape_pct,
                100.0 * p.held_out.within_10pct,
                100.0 * p.held_out.pairwise,
                p.loo_all.mape_pct,
            );
        }
        if dump {
            let _ = writeln!(s, "\nphase\tL\td\th\tn\tb\tV\tsum_ms\tmeasured_ms");
            for p in &c.phases {
                for r in &p.additivity {
                    let sh = &r.shape;
                    let _ = writeln!(
                        s,
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        r.phase.name(),
                        sh.layers(),
                        sh.d_model(),
                        sh.heads(),
                        sh.seq(),
                        sh.batch(),
                        sh.vocab(),
                        r.operator_sum_ms,
                        r.measured_ms
                    );
                }
            }
        }
        let _ = writeln!(s, "\nworst Σ/measured per phase:");
        for p in &c.phases {
            let mut rows: Vec<&AdditivityRow> = p.additivity.iter().collect();
            rows.sort_by(|a, b| (b.ratio().ln().abs()).total_cmp(&a.ratio().ln().abs()));
            for (i, r) in rows.iter().take(5).enumerate() {
                let _ = writeln!(
                    s,
                    "  {:<8} {:<44} measured {:>9.3} ms  Σ {:>9.3} ms  ratio {:.2}",
                    r.phase.name(),
                    r.shape.to_string(),
                    r.measured_ms,
                    r.operator_sum_ms,
                    r.ratio()
                );
                if i < explain
                    && let Ok(sum) = planner::compose::operator_sum(&c.laws, &r.shape, r.phase)
                {
                    let _ = writeln!(s, "      working set {} MB", sum.working_set_bytes / 1_000_000);
                    for o in &sum.operators {
                        let _ = writeln!(
                            s,
                            "      {:<20} ×{:<3} {:>9.4} ms  {}",
                            o.operator.role,
                            o.operator.count,
                            o.ms,
                            o.operator.kind.key()
                        );
                    }
                }
            }
        }
        s.push('\n');
    }
    s
}
