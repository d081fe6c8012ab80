//! The Markdown technical report, regenerated from data (pure: returns text).

use std::collections::BTreeMap;
use std::fmt::Write;

use planner::model::{LatencyModel, Variable};
use planner::profile::Accuracy;

use planner::chart::{AxisFormat, Chart, Series, render_svg, scatter_chart};

use crate::Point;
use crate::profile_fit::{BackendFit, base_configuration};
use crate::scaling::{ScalingSeries, Vary, compare, series};

fn acc_row(out: &mut String, name: &str, a: &Accuracy, r2: Option<(f64, f64)>) {
    let r2 = r2.map_or("–".to_string(), |(r, adj)| format!("{r:.3} / {adj:.3}"));
    let _ = writeln!(
        out,
        "| {name} | {} | {:.1}% | {:.1}% | {:.1}% | {:.3} | {:.1}% | {r2} |",
        a.method,
        a.mape_pct,
        100.0 * a.within_10pct,
        a.worst_pct,
        a.spearman,
        100.0 * a.pairwise
    );
}

/// The held-out scatter of a fit as an SVG file and its Markdown link;
/// `phase` names the phase in file, title and alt text (`None` for prefill).
fn held_out_figure(
    (out, files): (&mut String, &mut Vec<(String, String)>),
    f: &BackendFit,
    pts: &[Point],
    phase: Option<&str>,
) {
    let backend = &f.profile.backend;
    let (file_tag, title_tag, alt_tag) = match phase {
        Some(p) => (format!("-{p}"), format!(" {p}"), format!("{p} ")),
        None => Default::default(),
    };
    let svg_name = format!("{backend}{file_tag}-measured-vs-predicted.svg");
    let measured: Vec<f64> = pts.iter().map(|p| p.median_ms).collect();
    files.push((
        svg_name.clone(),
        render_svg(&scatter_chart(
            &format!("{backend}{title_tag}: held-out prediction vs measurement"),
            &measured,
            &f.held_out_ms,
        )),
    ));
    let csv_name = format!("{backend}{file_tag}-held-out.csv");
    files.push((csv_name.clone(), held_out_csv(pts, &f.held_out_ms)));
    let _ = writeln!(
        out,
        "\n![{alt_tag}measured vs predicted]({svg_name})\n\nEvery shape's measurement and held-out prediction: [{csv_name}]({csv_name}).\n"
    );
    worst_predictions(out, pts, &f.held_out_ms);
}

/// Every pooled shape with its measurement, its uncertainty and its held-out
/// prediction, one CSV row each, so a reader can check the figures or fit
/// something else to the same data.
fn held_out_csv(pts: &[Point], held_out_ms: &[f64]) -> String {
    let mut csv = String::from(
        "layers,d_model,heads,seq,batch,vocab,family,measured_ms,rel_uncertainty,held_out_ms,error_pct\n",
    );
    for (p, &predicted) in pts.iter().zip(held_out_ms) {
        let _ = writeln!(
            csv,
            "{},{},{:.6},{:.4},{:.6},{:.2}",
            shape_cells(&p.shape, ","),
            p.family.tag().replace(',', ";"),
            p.median_ms,
            p.rel_uncertainty,
            predicted,
            100.0 * (predicted / p.median_ms - 1.0)
        );
    }
    csv
}

/// A shape's L, d_model, heads, seq, batch and vocab, joined by `separator`
/// (the leading columns of the report's shape tables and of its CSV files).
fn shape_cells(s: &planner::Shape, separator: &str) -> String {
    [s.layers(), s.d_model(), s.heads(), s.seq(), s.batch(), s.vocab()]
        .map(|x| x.to_string())
        .join(separator)
}

/// How many of the largest held-out errors the report lists.
const WORST_LISTED: usize = 6;

/// The shapes the model predicts worst (held out), so a reader sees where it fails.
fn worst_predictions(out: &mut String, pts: &[Point], held_out_ms: &[f64]) {
    let mut idx: Vec<usize> = (0..pts.len()).collect();
    let error = |i: usize| held_out_ms[i] / pts[i].median_ms - 1.0;
    idx.sort_by(|&a, &b| error(b).abs().total_cmp(&error(a).abs()));
    let _ = writeln!(
        out,
        "Largest held-out errors (median prediction over the repetitions):\n\n| L | d_model | heads | seq / context | batch | vocab | measured | predicted | error |\n|---|---|---|---|---|---|---|---|---|"
    );
    for &i in idx.iter().take(WORST_LISTED) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:+.1}% |",
            shape_cells(&pts[i].shape, " | "),
            planner::format::duration_ms(pts[i].median_ms),
            planner::format::duration_ms(held_out_ms[i]),
            100.0 * error(i)
        );
    }
    let _ = writeln!(out);
}

/// Held-out accuracy of the chosen model, the alternatives and the family-out checks.
fn accuracy_table(out: &mut String, f: &BackendFit) {
    let p = &f.profile;
    let _ = writeln!(
        out,
        "| model | validation | MAPE | within ±10% | worst | Spearman ρ | pairwise | R² / adj. R² (in-sample) |\n|---|---|---|---|---|---|---|---|"
    );
    acc_row(out, "**physics (chosen)**", &p.held_out, None);
    for a in &p.alternatives {
        acc_row(out, &a.name, &a.held_out, Some((a.r2, a.adj_r2)));
    }
    for (name, a) in &f.further_checks {
        acc_row(out, name, a, None);
    }
}

/// The physics model's coefficients with their units; for an operator model,
/// its calibration and cost laws.
fn terms_table(out: &mut String, model: &LatencyModel) {
    if let LatencyModel::Operators {
        calibration: c, laws, ..
    } = model
    {
        let points: usize = laws.laws.iter().map(|l| l.points.len()).sum();
        let _ = writeln!(
            out,
            "The operator model was better held out: t = {:.3}·Σ operators + {:.3}·cold gap + {:.3} ms·L + {:.3} ms·L·b + {:.3} ms, the sum over the step's operator graph priced by {} cost laws fitted on {points} micro-benchmarks (`bench ops`).\n",
            c.scale,
            c.cold_gap_share,
            c.per_layer_ms,
            c.per_layer_sequence_ms,
            c.constant_ms,
            laws.laws.len()
        );
        let _ = writeln!(
            out,
            "| law | points | overhead ms | ms/GFLOP | ms/MB | ms/dispatch | correction width |\n|---|---|---|---|---|---|---|"
        );
        for l in &laws.laws {
            let b = l.base;
            let causal = match l.causal {
                Some(true) => " (causal)",
                Some(false) => " (decode)",
                None => "",
            };
            let _ = writeln!(
                out,
                "| {}{causal}{} | {} | {:.5} | {:.4} | {:.4} | {:.5} | {} |",
                l.class.name(),
                if l.cold { ", cold" } else { "" },
                l.points.len(),
                b.overhead_ms,
                b.ms_per_gflop,
                b.ms_per_mb,
                b.ms_per_dispatch,
                l.smoothing.map_or("none".to_string(), |w| format!("{w}"))
            );
        }
        return;
    }
    let _ = writeln!(
        out,
        "| term | coefficient | std. error | unit |\n|---|---|---|---|"
    );
    if let LatencyModel::Physics { terms, .. } = model {
        for t in terms {
            let _ = writeln!(
                out,
                "| {} | {:.5} | {} | {} |",
                t.term.name(),
                t.value,
                t.std_error.map_or("–".into(), |s| format!("{s:.5}")),
                t.term.coefficient_unit()
            );
        }
    }
}

fn coef(model: &LatencyModel, v: Variable) -> Option<(f64, Option<f64>)> {
    match model {
        LatencyModel::Linear { coefficients } | LatencyModel::LogLinear { coefficients } => coefficients
            .iter()
            .find(|c| c.variable == v)
            .map(|c| (c.value, c.std_error)),
        LatencyModel::Physics { .. } | LatencyModel::Operators { .. } => None,
    }
}

fn fmt_coef(c: Option<(f64, Option<f64>)>) -> String {
    match c {
        Some((v, Some(se))) => format!("{v:.4} ± {se:.4}"),
        Some((v, None)) => format!("{v:.4}"),
        None => "not fitted (constant in data)".into(),
    }
}

/// Renders the report. `points[i]` are the points `fits[i]` was fitted on;
/// `sessions` says how each measuring session was scaled to its backend's
/// reference session. Returns the Markdown and the SVG files it links to.
pub fn render(
    fits: &[BackendFit],
    points: &[Vec<Point>],
    sessions: &[String],
    decode: &DecodeInputs,
) -> (String, Vec<(String, String)>) {
    let mut out = String::new();
    let mut files = vec![];
    let mut findings: Vec<String> = vec![];
    for (f, pts) in fits.iter().zip(points) {
        let p = &f.profile;
        let _ = writeln!(out, "## Backend `{}`\n", p.backend);
        let _ = writeln!(
            out,
            "Machine: {} ({} threads), burn {}, features {}, commit {}. {} shapes.\n",
            p.fingerprint.get("cpu").map_or("?", |s| s),
            p.fingerprint.get("threads").map_or("?", |s| s),
            p.fingerprint.get("burn").map_or("?", |s| s),
            p.fingerprint.get("build_features").map_or("?", |s| s),
            p.fingerprint.get("commit").map_or("?", |s| s),
            p.measurements
        );
        if let Some(nf) = p.noise_floor_pct {
            let _ = writeln!(
                out,
                "Noise floor (median relative difference between two full passes of the sweep): **{nf:.1}%**.\n"
            );
        }
        if let Some(spread) = p.session_spread_pct {
            let _ = writeln!(
                out,
                "Session spread (median relative difference between two sessions' measurements of the same shape, before scaling): **{spread:.1}%**.\n"
            );
        }
        let _ = writeln!(out, "### Accuracy (held out)\n");
        accuracy_table(&mut out, f);
        let _ = writeln!(
            out,
            "\nR² of log models is of ln t. Pairwise: over held-out pairs whose measured latencies differ by more than 2%, how often the model names the faster one.\n"
        );
        let _ = writeln!(
            out,
            "### Physics-informed model\n\nTerms chosen by stepwise selection (add, drop or swap a term) on held-out MAPE, {}-fold repeated over {} different splits (a change stays only if it lowers it by ≥ {} points):\n",
            crate::profile_fit::FOLDS,
            crate::profile_fit::REPEATS,
            crate::profile_fit::MIN_TERM_GAIN_PCT
        );
        terms_table(&mut out, &p.model);
        let _ = writeln!(out, "\nSelection trail (terms → held-out MAPE):\n");
        let mut trail = f.selection.clone();
        trail.sort_by(|a, b| a.1.total_cmp(&b.1));
        for (terms, mape) in trail.iter().take(6) {
            let names: Vec<&str> = terms.iter().map(|t| t.name()).collect();
            let _ = writeln!(out, "- {} → {mape:.2}%", names.join(" + "));
        }
        held_out_figure((&mut out, &mut files), f, pts, None);

        let _ = writeln!(
            out,
            "### Iso-parameter families (same non-embedding params, different depth/width)\n"
        );
        let _ = writeln!(
            out,
            "| family | L | d_model | non-emb. params | measured | predicted (held out) |\n|---|---|---|---|---|---|"
        );
        let mut fam: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, pt) in pts.iter().enumerate() {
            if pt.family.is_iso_parameter() {
                fam.entry(pt.family.tag()).or_default().push(i);
            }
        }
        for (name, idx) in &fam {
            let mut idx = idx.clone();
            idx.sort_by_key(|&i| pts[i].shape.layers());
            for i in idx {
                let s = &pts[i].shape;
                let _ = writeln!(
                    out,
                    "| {name} | {} | {} | {} | {} | {} |",
                    s.layers(),
                    s.d_model(),
                    planner::format::count(s.accounting().params.non_embedding),
                    planner::format::duration_ms(pts[i].median_ms),
                    planner::format::duration_ms(f.held_out_ms[i])
                );
            }
        }
        let (base_seq, base_batch) = base_configuration(pts.iter().map(|p| &p.shape));
        let _ = writeln!(
            out,
            "\n### Regimes (segmented regression of ln t on ln params at the base configuration n={}, b={})\n",
            base_seq, base_batch
        );
        for (i, s) in p.regimes.segments.iter().enumerate() {
            let _ = writeln!(
                out,
                "- segment {}: {} – {} params, latency ∝ params^{:.2}",
                i + 1,
                planner::format::count(s.from_params as u64),
                planner::format::count(s.to_params as u64),
                s.exponent
            );
        }
        let _ = writeln!(
            out,
            "\nTR121's claims on this backend: see Findings at the top.\n"
        );
        let mut claims = String::new();
        let _ = writeln!(claims, "### TR121's claims on `{}` (prefill)\n", p.backend);
        let lin = p.alternatives.iter().find(|a| a.name == "tr121_linear");
        let pl = p.alternatives.iter().find(|a| a.name == "power_law_total");
        if let Some(lin) = lin {
            let bl = coef(&lin.model, Variable::Layers);
            let bd = coef(&lin.model, Variable::DModel);
            let bh = coef(&lin.model, Variable::Heads);
            let _ = writeln!(
                claims,
                "- Linear model (ms): β_L = {}, β_d = {}, β_h = {} (TR121 CPU: 0.0142, 0.0018, 0.0011).",
                fmt_coef(bl),
                fmt_coef(bd),
                fmt_coef(bh)
            );
            if let (Some((l, _)), Some((d, _))) = (bl, bd) {
                let _ = writeln!(
                    claims,
                    "- Depth/width coefficient ratio β_L/β_d = {:.0}× (TR121: ~12× on GPU, ~8× on CPU). The ratio compares a layer with one unit of width, so it depends on units; at equal parameters the iso-family table in the backend's section below is the real test.",
                    l / d
                );
            }
            let _ = writeln!(
                claims,
                "- Held-out MAPE of this linear model: {:.1}% vs {:.1}% for the physics model.",
                lin.held_out.mape_pct, p.held_out.mape_pct
            );
        }
        if let Some((pl, (alpha, se))) =
            pl.and_then(|pl| coef(&pl.model, Variable::ParamsTotal).map(|c| (pl, c)))
        {
            let verdict = if (alpha - 0.55).abs() <= 2.0 * se.unwrap_or(0.05).max(0.05) {
                "consistent with"
            } else {
                "refutes"
            };
            let _ = writeln!(
                claims,
                "- Power law: latency ∝ params^{alpha:.2} (R² of ln t = {:.3}); {verdict} TR121's CPU exponent 0.55 (R² 0.987).",
                pl.r2
            );
        }
        for (name, idx) in &fam {
            let mut members: Vec<&Point> = idx.iter().map(|&i| &pts[i]).collect();
            members.sort_by_key(|p| p.shape.layers());
            if let (Some(shallow), Some(deep)) = (members.first(), members.last()) {
                let r = deep.median_ms / shallow.median_ms;
                let verdict = if r > 1.05 {
                    "deep is slower: wide-over-deep confirmed"
                } else if r < 0.95 {
                    "deep is faster: wide-over-deep refuted"
                } else {
                    "within 5%: no clear winner"
                };
                let _ = writeln!(
                    claims,
                    "- {name}: L={} d={} takes {} vs L={} d={} {} → deep/shallow = {r:.2}× ({verdict}).",
                    deep.shape.layers(),
                    deep.shape.d_model(),
                    planner::format::duration_ms(deep.median_ms),
                    shallow.shape.layers(),
                    shallow.shape.d_model(),
                    planner::format::duration_ms(shallow.median_ms)
                );
            }
        }
        for (vary, claim) in [(Vary::Depth, 1.25), (Vary::Width, f64::NAN)] {
            let Some(ser) = series(pts, vary) else { continue };
            let (what, file) = match vary {
                Vary::Depth => ("depth", format!("{}-latency-vs-depth.svg", p.backend)),
                Vary::Width => ("width", format!("{}-latency-vs-width.svg", p.backend)),
            };
            let mut line = format!(
                "- Latency vs {what} at {}: latency ∝ {}^{:.2} (R² of ln t {:.3}, {} shapes)",
                ser.fixed,
                if vary == Vary::Depth { "L" } else { "d_model" },
                ser.exponent,
                ser.r2,
                ser.points.len()
            );
            if claim.is_finite() {
                let verdict = if (ser.exponent - claim).abs() <= 0.15 {
                    "consistent with"
                } else {
                    "refutes"
                };
                line.push_str(&format!(
                    "; {verdict} TR121's CPU L^{claim} (GPU claim L^1.95 not testable here)"
                ));
            }
            let _ = writeln!(claims, "{line}. Figure: `{file}`.");
            files.push((file, series_svg(&p.backend, &p.model, &ser, vary)));
        }
        let _ = writeln!(
            claims,
            "- GPU claims (β_L/β_d on GPU, params^0.95, L^1.95, CPU→GPU crossover at ~50M): not testable here, no GPU was measured.\n"
        );
        findings.push(claims);
        for (vary, name) in [(Vary::Depth, "depth"), (Vary::Width, "width")] {
            if series(pts, vary).is_some() {
                let _ = writeln!(out, "![latency vs {name}]({}-latency-vs-{name}.svg)\n", p.backend);
            }
        }
    }
    render_comparisons(&mut out, fits, points);
    render_decode(&mut out, &mut files, decode);
    if !sessions.is_empty() {
        let _ = writeln!(
            out,
            "## Appendix: provenance\n\nSessions: measurements taken while the machine was not their own are left out; and this machine's speed drifts between measuring sessions far more than within one, so each session (file) is scaled to its backend's reference session by latency ratios over the shapes measured in several sessions, before fitting:\n"
        );
        for s in sessions {
            let _ = writeln!(out, "- {s}");
        }
        let _ = writeln!(out);
    }
    let mut report = String::new();
    let _ = writeln!(report, "# Chimera latency report\n");
    let _ = writeln!(
        report,
        "Regenerated from the committed measurements by `cargo run -p bench --release -- report`. Every number below is computed from data; nothing is typed in by hand. Findings first; the details per backend follow, and the appendix says which sessions the data came from and how they were scaled.\n"
    );
    let _ = writeln!(report, "## Findings\n");
    accuracy_summary(&mut report, fits, decode.fits);
    for claims in findings {
        report.push_str(&claims);
    }
    report.push_str(&out);
    (report, files)
}

/// The headline accuracy of every fitted backend and phase, one row each.
fn accuracy_summary(out: &mut String, fits: &[BackendFit], decode_fits: &[BackendFit]) {
    let _ = writeln!(
        out,
        "### Accuracy of the chosen models (held out)\n\n| backend | phase | shapes | MAPE | within ±10% | pairwise | nested MAPE | nested within ±10% | noise floor | session spread |\n|---|---|---|---|---|---|---|---|---|---|"
    );
    for (f, phase) in fits
        .iter()
        .map(|f| (f, "prefill"))
        .chain(decode_fits.iter().map(|f| (f, "decode")))
    {
        let p = &f.profile;
        let nested = f
            .further_checks
            .iter()
            .map(|(_, a)| a)
            .find(|a| a.method.starts_with("nested"));
        let _ = writeln!(
            out,
            "| {} | {phase} | {} | {:.1}% | {:.1}% | {:.1}% | {} | {} | {} | {} |",
            p.backend,
            p.measurements,
            p.held_out.mape_pct,
            100.0 * p.held_out.within_10pct,
            100.0 * p.held_out.pairwise,
            nested.map_or("–".into(), |a| format!("{:.1}%", a.mape_pct)),
            nested.map_or("–".into(), |a| format!("{:.1}%", 100.0 * a.within_10pct)),
            p.noise_floor_pct.map_or("–".into(), |n| format!("{n:.1}%")),
            p.session_spread_pct.map_or("–".into(), |n| format!("{n:.1}%"))
        );
    }
    let _ = writeln!(
        out,
        "\nk-fold: {}-fold cross-validation repeated over {} splits; nested: the terms reselected in every outer fold; noise floor: two back-to-back runs of the same shapes; session spread: the median difference between two sessions' measurements of the same shape (every pair of files, before scaling), which the planner's intervals and expected errors take where it is the larger. Details and the other models per backend below.\n",
        crate::profile_fit::FOLDS,
        crate::profile_fit::REPEATS
    );
}

/// The decode half of the report.
pub struct DecodeInputs<'a> {
    /// Decode fits, one per backend measured in decode.
    pub fits: &'a [BackendFit],
    /// `points[i]` are the points `fits[i]` was fitted on (`seq` = context).
    pub points: &'a [Vec<Point>],
    /// Memory: predicted vs measured peak, as a rendered table, if measured.
    pub memory_table: Option<String>,
    /// Per backend: overheads fitted from the memory measurements.
    pub memory_calibrations: Vec<(String, planner::memory::MemoryCalibration)>,
}

fn render_decode(out: &mut String, files: &mut Vec<(String, String)>, d: &DecodeInputs) {
    if d.fits.is_empty() && d.memory_table.is_none() {
        return;
    }
    let _ = writeln!(out, "## Decode: one generated token with a KV cache\n");
    let _ = writeln!(
        out,
        "Each sample times one step: b new tokens (one per sequence) against a KV cache of c tokens (`seq` = c, the new one included), written in place into a static cache. The physics model chooses among decode terms: weight bytes read per step, KV-cache bytes read, per-layer fixed cost, projection/MLP and LM-head FLOPs of the b tokens, and cache-cliff terms (see README).\n"
    );
    for (f, pts) in d.fits.iter().zip(d.points) {
        let p = &f.profile;
        let _ = writeln!(
            out,
            "### Backend `{}` (decode, {} shapes)\n",
            p.backend, p.measurements
        );
        if let Some(nf) = p.noise_floor_pct {
            let _ = writeln!(out, "Noise floor (two passes): **{nf:.1}%**.\n");
        }
        if let Some(spread) = p.session_spread_pct {
            let _ = writeln!(out, "Session spread: **{spread:.1}%**.\n");
        }
        accuracy_table(out, f);
        let _ = writeln!(out);
        terms_table(out, &p.model);
        if let LatencyModel::Physics { terms, .. } = &p.model {
            // Reading speeds: these coefficients are ms per MB. The batched and
            // streamed terms add to the weight term, so they are extra time, not speeds.
            for t in terms.iter().filter(|t| t.value > 0.0) {
                let what = match t.term {
                    planner::Term::DecodeWeightMb => "weights are read at",
                    planner::Term::KvCacheMb => "the KV cache is read at",
                    _ => continue,
                };
                let _ = writeln!(out, "\nAlone, {what} {:.1} GB/s.", 1.0 / t.value);
            }
        }
        held_out_figure((out, files), f, pts, Some("decode"));
        let _ = writeln!(
            out,
            "Wide vs deep in decode (iso-parameter families, measured per-token latency):\n\n| family | c | L | d_model | measured | predicted (held out) |\n|---|---|---|---|---|---|"
        );
        let mut idx: Vec<usize> = (0..pts.len())
            .filter(|&i| pts[i].family.is_iso_parameter())
            .collect();
        idx.sort_by_key(|&i| (pts[i].family.clone(), pts[i].shape.layers()));
        for i in idx {
            let s = &pts[i].shape;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                pts[i].family.tag(),
                s.seq(),
                s.layers(),
                s.d_model(),
                planner::format::duration_ms(pts[i].median_ms),
                planner::format::duration_ms(f.held_out_ms[i])
            );
        }
        let _ = writeln!(out);
    }
    if let Some(table) = &d.memory_table {
        let _ = writeln!(
            out,
            "### Peak memory: planner estimate vs measured resident set\n\nEach shape runs in a fresh process (`bench memory`); the peak resident set of one step above the process's baseline is compared with `planner::memory::estimate` (weights + KV cache + activations, f32). Error = predicted / measured − 1.\n\n```text\n{table}```\n"
        );
        if !d.memory_calibrations.is_empty() {
            let _ = writeln!(
                out,
                "With each backend's overheads fitted (median of measured − estimated: a runtime constant, plus a workspace when a step multiplies matrices by matrices), scored leave-one-shape-out:\n\n| backend | runtime | matrix-product workspace | shapes | MAPE | within ±10% | worst |\n|---|---|---|---|---|---|---|"
            );
            for (b, c) in &d.memory_calibrations {
                let _ = writeln!(
                    out,
                    "| {b} | {} | {} | {} | {:.1}% | {:.0}% | {:.1}% |",
                    planner::format::bytes(c.runtime_bytes),
                    planner::format::bytes(c.matmul_workspace_bytes),
                    c.measurements,
                    c.held_out_mape_pct,
                    100.0 * c.held_out_within_10pct,
                    c.held_out_worst_pct
                );
            }
            let _ = writeln!(out);
        }
    }
}

/// Measured points of a series and the physics model along it, as SVG.
fn series_svg(backend: &str, model: &LatencyModel, ser: &ScalingSeries, vary: Vary) -> String {
    let first = ser.points[0].2;
    let (lo, hi) = (ser.points[0].0 as u64, ser.points[ser.points.len() - 1].0 as u64);
    let model_points: Vec<(f64, f64)> = match vary {
        Vary::Depth => (lo..=hi)
            .filter_map(|l| first.with_depth_width(l, first.d_model(), first.heads()).ok())
            .map(|s| (s.layers() as f64, model.predict_ms(&s)))
            .collect(),
        Vary::Width => (lo / 64..=hi / 64)
            .filter_map(|k| {
                first
                    .with_depth_width(first.layers(), 64 * k.max(1), k.max(1))
                    .ok()
            })
            .map(|s| (s.d_model() as f64, model.predict_ms(&s)))
            .collect(),
    };
    let (title, x_label) = match vary {
        Vary::Depth => (format!("{backend}: latency vs depth"), "layers"),
        Vary::Width => (format!("{backend}: latency vs width"), "d_model"),
    };
    render_svg(&Chart {
        title,
        x_label: format!("{x_label} ({})", ser.fixed),
        y_label: "latency".into(),
        x_format: AxisFormat::Plain,
        y_format: AxisFormat::Duration,
        series: vec![
            Series {
                name: "measured".into(),
                points: ser.points.iter().map(|p| (p.0, p.1)).collect(),
                points_only: true,
            },
            Series {
                name: "physics model".into(),
                points: model_points,
                points_only: false,
            },
        ],
        marker: None,
        guides: vec![],
    })
}

/// Backends measured on the same shapes: side by side, and where the faster one changes.
fn render_comparisons(out: &mut String, fits: &[BackendFit], points: &[Vec<Point>]) {
    for i in 0..fits.len() {
        for j in i + 1..fits.len() {
            let (a, b) = (&fits[i].profile, &fits[j].profile);
            let Some(c) = compare(&a.backend, &points[i], &b.backend, &points[j]) else {
                continue;
            };
            let _ = writeln!(out, "## Backends compared: `{}` vs `{}`\n", c.a, c.b);
            let _ = writeln!(
                out,
                "Measured on the same {} shapes (smallest first); ratio > 1 means `{}` is faster.\n",
                c.rows.len(),
                c.b
            );
            let _ = writeln!(
                out,
                "| shape | params | {} | {} | {}/{} |\n|---|---|---|---|---|",
                c.a, c.b, c.a, c.b
            );
            for (s, ta, tb) in &c.rows {
                let _ = writeln!(
                    out,
                    "| {s} | {} | {} | {} | {:.2} |",
                    planner::format::count(s.accounting().params.total),
                    planner::format::duration_ms(*ta),
                    planner::format::duration_ms(*tb),
                    ta / tb
                );
            }
            if c.switches.is_empty() {
                let _ = writeln!(
                    out,
                    "\nMeasured: the faster backend does not change with size at the base sequence and batch."
                );
            }
            for (params, below, above) in &c.switches {
                let _ = writeln!(
                    out,
                    "\nMeasured crossover: `{below}` is faster below ~{} params, `{above}` above (between neighbouring measured shapes at the base sequence and batch).",
                    planner::format::count(*params)
                );
            }
            let profile = planner::Profile {
                schema_version: planner::profile::PROFILE_SCHEMA_VERSION,
                name: String::new(),
                created_utc: String::new(),
                source: String::new(),
                backends: vec![a.clone(), b.clone()],
            };
            let gpt2 = planner::ShapeSpec::new(12, 768)
                .validate()
                .expect("GPT-2 small is valid");
            let scaling = planner::crossover::backend_scaling(&profile, &gpt2, planner::Objective::Prefill);
            for x in &scaling.crossovers {
                let _ = writeln!(
                    out,
                    "\nModel crossover along GPT-2 small's depth:width ratio: `{}` is faster below ~{} params, `{}` above (first at L={} d={}).",
                    x.faster_below,
                    planner::format::count(x.params_total),
                    x.faster_above,
                    x.layers,
                    x.d_model
                );
            }
            let _ = writeln!(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::Family;
    use crate::observation::fixtures::{SHAPES, flop_law_ms};

    #[test]
    fn names_read_from_data_are_escaped_in_every_figure() {
        // A backend named by a file: everything the report draws must escape it.
        let backend = "<script>alert(1)</script> & co";
        let points: Vec<Point> = SHAPES
            .iter()
            .map(|&(l, d)| {
                let shape = planner::ShapeSpec::new(l, d).validate().unwrap();
                Point {
                    family: Family::Other(String::new()),
                    median_ms: flop_law_ms(&shape),
                    shape,
                    rel_uncertainty: 0.01,
                }
            })
            .collect();
        let fit = crate::profile_fit::fit_backend(
            backend,
            planner::profile::DeviceClass::Cpu,
            Default::default(),
            &points,
            None,
            planner::Phase::Prefill,
            None,
        )
        .unwrap();
        let (_, files) = render(
            std::slice::from_ref(&fit),
            std::slice::from_ref(&points),
            &[],
            &DecodeInputs {
                fits: &[],
                points: &[],
                memory_table: None,
                memory_calibrations: vec![],
            },
        );
        let svgs: Vec<&(String, String)> = files.iter().filter(|(name, _)| name.ends_with(".svg")).collect();
        assert!(!svgs.is_empty());
        for (name, svg) in svgs {
            assert!(!svg.contains("<script>"), "{name} carries the raw name");
            assert!(
                svg.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"),
                "{name}"
            );
        }
    }
}
