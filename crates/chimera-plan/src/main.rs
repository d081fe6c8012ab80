//! `chimera-plan`: predict latency and recommend wide-vs-deep designs.
//! A thin shell over `planner`: parse, validate, call, render. One place prints errors.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{CommandFactory, Parser};
use planner::format::{bytes, count, duration_ms, parse_count};
use planner::plan::{DEFAULT_CONTEXT, Plan, PlanRequest, plan};
use planner::predict::{Prediction, tr121_size_class};
use planner::profile::Profile;
use planner::shape::ArchitectureSpec;
use planner::{Mlp, Norm, Phase, PositionEncoding, ShapeSpec};

/// Predict transformer latency from a measured profile, and say whether a
/// wider or a deeper model of the same size would be faster.
#[derive(Parser, Debug)]
#[command(version, max_term_width = 100)]
struct Cli {
    /// Transformer blocks L.
    #[arg(long, required_unless_present_any = ["budget", "completions", "config", "preset", "list_presets"])]
    layers: Option<u64>,
    /// Residual width d_model.
    #[arg(long, required_unless_present_any = ["budget", "completions", "config", "preset", "list_presets"])]
    d_model: Option<u64>,
    /// Attention (query) heads (default d_model/64).
    #[arg(long)]
    heads: Option<u64>,
    /// Key/value heads: = heads is multi-head attention, 1 multi-query,
    /// between grouped-query (must divide heads; default heads).
    #[arg(long)]
    kv_heads: Option<u64>,
    /// Width of one head (default d_model/heads).
    #[arg(long)]
    head_dim: Option<u64>,
    /// MLP hidden width (default 4·d for gelu; for gated 2/3 of 4·d rounded up to 256, the Llama rule).
    #[arg(long)]
    d_ff: Option<u64>,
    /// MLP: gelu (2 matrices, GPT-2) or gated (SwiGLU, 3 matrices, Llama).
    #[arg(long, value_enum)]
    mlp: Option<MlpArg>,
    /// Normalisation.
    #[arg(long, value_enum)]
    norm: Option<NormArg>,
    /// Positions: a learned table (GPT-2) or rotary embeddings (Llama).
    #[arg(long, value_enum)]
    positions: Option<PositionsArg>,
    /// Positions the model accepts (learned: the table's rows; default enough for the request, ≥ 1024).
    #[arg(long)]
    max_positions: Option<u64>,
    /// An LM head of its own instead of the token embedding.
    #[arg(long)]
    untied: bool,
    /// Biases: all (GPT-2), qkv (Qwen 2) or none (Llama).
    #[arg(long, value_enum)]
    bias: Option<BiasArg>,
    /// A Hugging Face config.json (Llama, Qwen2, Mistral, GPT-2, Gemma keys);
    /// flags given as well override its values.
    #[arg(long, conflicts_with = "preset")]
    config: Option<PathBuf>,
    /// A well-known model by name (`--list-presets`); flags override its values.
    #[arg(long)]
    preset: Option<String>,
    /// List the presets with their parameter counts and exit.
    #[arg(long)]
    list_presets: bool,
    /// Recommendations: also try other key/value head counts (group 1, 2, 4, 8).
    #[arg(long)]
    vary_kv_heads: bool,
    /// Recommendations: also try other MLP widths (d_ff/d: gelu 2,3,4,6; gated 2,8/3,3.5,4).
    #[arg(long)]
    vary_mlp_ratio: bool,
    /// Sequence length of a forward pass (the prompt).
    #[arg(long, default_value_t = planner::shape::DEFAULT_SEQ)]
    seq: u64,
    /// Headline latency and ranking: prefill (a forward over --seq tokens) or
    /// decode (one generated token per sequence at --context).
    #[arg(long, value_enum, default_value_t = Mode::Prefill)]
    mode: Mode,
    /// Decode: tokens in the KV cache, the new one included.
    #[arg(long, default_value_t = DEFAULT_CONTEXT)]
    context: u64,
    /// Generated tokens per sequence: rank by end-to-end time (prefill of
    /// --seq tokens, then this many decode steps).
    #[arg(long)]
    output_tokens: Option<u64>,
    /// Batch size.
    #[arg(long, default_value_t = planner::shape::DEFAULT_BATCH)]
    batch: u64,
    /// Vocabulary size (default 50257, or the config's).
    #[arg(long)]
    vocab: Option<u64>,
    /// Only this backend (default: every backend in the profile).
    #[arg(long)]
    backend: Option<String>,
    /// A profile written by `bench fit` (default: the embedded one).
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Non-embedding parameter budget for recommendations (25M, 1.5B, ...).
    #[arg(long, value_parser = parse_count)]
    budget: Option<u64>,
    /// Recommendations: fewest layers to consider.
    #[arg(long, default_value_t = planner::recommend::DEFAULT_MIN_LAYERS)]
    min_layers: u64,
    /// Recommendations: most layers to consider.
    #[arg(long, default_value_t = planner::recommend::DEFAULT_MAX_LAYERS)]
    max_layers: u64,
    /// Recommendations: width of one attention head.
    #[arg(long, default_value_t = planner::recommend::DEFAULT_HEAD_SIZE)]
    head_size: u64,
    /// Recommendations: accepted deviation from the budget, percent.
    #[arg(long, default_value_t = 100.0 * planner::recommend::DEFAULT_TOLERANCE)]
    tolerance: f64,
    /// Rows of alternatives to show.
    #[arg(long, default_value_t = 8)]
    top: usize,
    /// Print a stable JSON object instead of tables.
    #[arg(long)]
    json: bool,
    /// Print shell completions for SHELL and exit.
    #[arg(long, value_name = "SHELL")]
    completions: Option<clap_complete::Shell>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Mode {
    Prefill,
    Decode,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum MlpArg {
    Gelu,
    Gated,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum NormArg {
    Layernorm,
    Rmsnorm,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum PositionsArg {
    Learned,
    Rope,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum BiasArg {
    All,
    Qkv,
    None,
}

/// The model a config file or preset describes (dimensions, architecture,
/// vocabulary, positions) and the warnings of reading it.
fn base_model(cli: &Cli) -> anyhow::Result<(Option<ShapeSpec>, Vec<String>)> {
    if let Some(name) = &cli.preset {
        let preset = planner::presets::find(name)
            .with_context(|| format!("unknown preset `{name}`; known: {}", planner::presets::names()))?;
        return Ok((Some(preset.spec), vec![]));
    }
    let Some(path) = &cli.config else {
        return Ok((None, vec![]));
    };
    // Refused by size before it is read: a config is a few KiB.
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading config {}", path.display()))?
        .len();
    if size > planner::hf_config::MAX_CONFIG_BYTES as u64 {
        bail!(
            "config {}: {size} bytes; a model config.json is a few KiB (limit {} bytes)",
            path.display(),
            planner::hf_config::MAX_CONFIG_BYTES
        );
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
    let config = planner::hf_config::parse(&text).with_context(|| format!("config {}", path.display()))?;
    Ok((Some(config.spec), config.warnings))
}

/// The request's shape fields: the config or preset, overridden by flags.
fn architecture(cli: &Cli, base: Option<&ShapeSpec>) -> ArchitectureSpec {
    let mut a = base.map(ArchitectureSpec::of).unwrap_or_default();
    let or = |flag: Option<u64>, value: Option<u64>| flag.or(value);
    a.kv_heads = or(cli.kv_heads, a.kv_heads);
    a.head_dim = or(cli.head_dim, a.head_dim);
    a.d_ff = or(cli.d_ff, a.d_ff);
    if let Some(m) = cli.mlp {
        a.mlp = Some(match m {
            MlpArg::Gelu => Mlp::Gelu,
            MlpArg::Gated => Mlp::Gated,
        });
    }
    if let Some(n) = cli.norm {
        a.norm = Some(match n {
            NormArg::Layernorm => Norm::LayerNorm,
            NormArg::Rmsnorm => Norm::RmsNorm,
        });
    }
    if let Some(p) = cli.positions {
        a.position_encoding = Some(match p {
            PositionsArg::Learned => PositionEncoding::Learned,
            PositionsArg::Rope => PositionEncoding::Rope,
        });
    }
    if cli.untied {
        a.tie_embeddings = Some(false);
    }
    if let Some(b) = cli.bias {
        let (qkv, dense) = match b {
            BiasArg::All => (true, true),
            BiasArg::Qkv => (true, false),
            BiasArg::None => (false, false),
        };
        a.qkv_bias = Some(qkv);
        a.dense_bias = Some(dense);
    }
    a
}

fn list_presets() -> String {
    use std::fmt::Write;
    let mut o = format!("{:<16} {:>15}  {}\n", "preset", "parameters", "architecture");
    for p in planner::presets::PRESETS {
        let shape = p.spec.validate().expect("presets are valid (a test checks them)");
        let _ = writeln!(
            o,
            "{:<16} {:>15}  L={} d={} · {}",
            p.name,
            thousands(p.published_params),
            shape.layers(),
            shape.d_model(),
            shape.describe_architecture()
        );
    }
    o
}

/// 1235814400 → "1,235,814,400".
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn load_profile(path: &Option<PathBuf>) -> anyhow::Result<Profile> {
    match path {
        None => Ok(planner::default_profile()),
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading profile {}", p.display()))?;
            Profile::from_json(&text).with_context(|| format!("profile {}", p.display()))
        }
    }
}

/// The answer to print, and warnings for standard error.
fn run(cli: Cli) -> anyhow::Result<(String, Vec<String>)> {
    if let Some(shell) = cli.completions {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "chimera-plan", &mut buf);
        return Ok((String::from_utf8(buf)?, vec![]));
    }
    if cli.list_presets {
        return Ok((list_presets(), vec![]));
    }
    let (model, warnings) = base_model(&cli)?;
    if cli.top == 0 || cli.top > 1000 {
        bail!("--top {} is out of range: give 1 to 1000", cli.top);
    }
    let profile = load_profile(&cli.profile)?;
    let request = PlanRequest {
        layers: cli.layers.or(model.map(|m| m.layers)),
        d_model: cli.d_model.or(model.map(|m| m.d_model)),
        heads: cli.heads.or(model.and_then(|m| m.heads)),
        architecture: architecture(&cli, model.as_ref()),
        positions: cli.max_positions.or(model.and_then(|m| m.positions)),
        vary_kv_heads: cli.vary_kv_heads,
        vary_mlp_ratio: cli.vary_mlp_ratio,
        seq: cli.seq,
        batch: cli.batch,
        vocab: cli
            .vocab
            .or(model.and_then(|m| m.vocab))
            .unwrap_or(planner::shape::DEFAULT_VOCAB),
        backend: cli.backend.clone(),
        budget: cli.budget,
        min_layers: cli.min_layers,
        max_layers: cli.max_layers,
        head_size: cli.head_size,
        tolerance_pct: cli.tolerance,
        mode: match cli.mode {
            Mode::Prefill => Phase::Prefill,
            Mode::Decode => Phase::Decode,
        },
        context: cli.context,
        output_tokens: cli.output_tokens,
    };
    let answer = plan(&profile, &request)?;
    if cli.json {
        return Ok((serde_json::to_string_pretty(&answer)? + "\n", warnings));
    }
    Ok((render(&answer, cli.top, &machine_lines(&profile)), warnings))
}

/// This machine's speed-deciding fingerprint fields (`/proc/cpuinfo` and the core count).
fn local_machine() -> BTreeMap<String, String> {
    let mut m = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| planner::machine::cpu_fields(&text))
        .unwrap_or_default();
    if let Ok(n) = std::thread::available_parallelism() {
        m.insert("logical_cores".into(), n.to_string());
    }
    m
}

/// "machine  …" for the profile's CPU, and the one-line note when it is not this machine.
fn machine_lines(profile: &Profile) -> String {
    let Some(cpu) = profile
        .backends
        .iter()
        .find(|b| b.device == planner::profile::DeviceClass::Cpu)
    else {
        return String::new();
    };
    let mut s = format!("machine  {}\n", planner::machine::describe(&cpu.fingerprint));
    if let Some(note) = planner::machine::mismatch_line(&cpu.fingerprint, &local_machine()) {
        s.push_str(&note);
        s.push('\n');
    }
    s
}

fn render(answer: &Plan, top: usize, machine: &str) -> String {
    use std::fmt::Write;
    let predictions = &answer.predictions;
    let mut o = String::new();
    if let Some(s) = &answer.shape {
        let a = s.accounting();
        let _ = writeln!(o, "shape    {s}");
        if !s.is_gpt2_style() || s.d_ff() != 4 * s.d_model() {
            let _ = writeln!(o, "arch     {}", s.describe_architecture());
        }
        let _ = writeln!(
            o,
            "params   {} total, {} non-embedding ({}) · {:.1} GFLOP per forward",
            count(a.params.total),
            count(a.params.non_embedding),
            tr121_size_class(a.params.total),
            a.flops.total as f64 / 1e9
        );
    }
    let _ = writeln!(o, "profile  {}", answer.profile);
    for level in &answer.sessions {
        let _ = writeln!(o, "session  {level} (bench calibrate)");
    }
    let _ = writeln!(o, "{machine}");
    for why in &answer.unpriced {
        let _ = writeln!(
            o,
            "left out: {why} (run `bench ops` again to measure its operators)"
        );
    }
    if !predictions.is_empty() {
        let _ = writeln!(
            o,
            "{:<9} {:>10}  {:<22} {:<16} {:>11}  regime",
            "backend", "latency", "90% interval", "confidence", "depth tax"
        );
        for p in predictions {
            let _ = writeln!(
                o,
                "{:<9} {:>10}  {:<22} {:<16} {:>11}  {}{}",
                p.backend,
                duration_ms(p.latency_ms),
                interval(p),
                confidence(p),
                format!("+{}/layer", duration_ms(p.depth_tax_ms)),
                p.regime,
                extrapolation(p)
            );
        }
        if let Some(best) = predictions.first() {
            let _ = writeln!(
                o,
                "\nfastest backend: {} · where the time goes: {}",
                best.backend,
                where_time_goes(best, usize::MAX)
            );
        }
        for c in &answer.crossovers {
            let _ = writeln!(
                o,
                "crossover: {} is faster below ~{} params, {} above (first at L={} d={}, scaling this shape's depth:width)",
                c.faster_below,
                count(c.params_total),
                c.faster_above,
                c.layers,
                c.d_model
            );
        }
        if predictions.len() > 1 && answer.crossovers.is_empty() {
            let _ = writeln!(
                o,
                "no crossover: {} stays fastest from 1/16× to 16× this width at this depth:width ratio",
                predictions[0].backend
            );
        }
    }
    render_decode(&mut o, answer);
    if let Some(r) = &answer.recommendations {
        let c = &r.constraints;
        let _ = writeln!(
            o,
            "\nsame budget ({} non-embedding ±{:.0}%), {} shapes, by {}, fastest first:",
            count(c.budget_non_embedding),
            100.0 * c.tolerance,
            r.candidates.len(),
            r.objective.label()
        );
        let _ = writeln!(
            o,
            "{:>4} {:>6} {:>4} {:>4} {:>6} {:>8} {:<9} {:>10} {:>9}  error",
            "L", "d", "h", "kv", "d_ff", "params", "backend", "latency", "speedup"
        );
        for cand in r.candidates.iter().take(top) {
            let _ = writeln!(
                o,
                "{:>4} {:>6} {:>4} {:>4} {:>6} {:>8} {:<9} {:>10} {:>9}  ±{:.0}%{}",
                cand.layers,
                cand.d_model,
                cand.heads,
                cand.kv_heads,
                cand.d_ff,
                count(cand.params_non_embedding),
                cand.backend,
                duration_ms(cand.latency_ms),
                speedup(cand),
                cand.expected_error_pct,
                if cand.extrapolated { " (extrapolated)" } else { "" }
            );
        }
        if r.candidates.iter().take(top).any(|c| c.within_noise) {
            let _ = writeln!(
                o,
                "≈ within noise: the difference from the proposal lies inside the two predictions' combined uncertainty (±: expected error of the latency; two shapes on one backend are compared without its session spread, which moves both alike)"
            );
        }
        for gain in &r.axes {
            let b = &gain.best;
            let _ = writeln!(
                o,
                "axis {:<15} {:.2}× → L={} d={} kv={} d_ff={} ({} on {}){}",
                format!("{}:", gain.axis),
                gain.speedup,
                b.layers,
                b.d_model,
                b.kv_heads,
                b.d_ff,
                duration_ms(b.latency_ms),
                b.backend,
                if gain.axis == "depth and width" {
                    " vs the proposal"
                } else {
                    " on top of the best depth and width"
                }
            );
        }
        if let Some(best) = r
            .axes
            .iter()
            .max_by(|a, b| a.speedup.total_cmp(&b.speedup))
            .filter(|g| g.speedup > 1.0)
        {
            let _ = writeln!(
                o,
                "the axis that buys the most: {} ({:.2}×)",
                best.axis, best.speedup
            );
        }
        for (label, c) in [
            ("best shallow-wide", &r.best_shallow_wide),
            ("best deep-narrow", &r.best_deep_narrow),
        ] {
            if let Some(c) = c {
                let versus = if c.within_noise {
                    "within noise of the proposal".to_string()
                } else {
                    format!("{:.2}× vs proposed", c.speedup)
                };
                let _ = writeln!(
                    o,
                    "{label}: L={} d={} → {} on {} ({versus})",
                    c.layers,
                    c.d_model,
                    duration_ms(c.latency_ms),
                    c.backend,
                );
            }
        }
    }
    o
}

fn interval(p: &Prediction) -> String {
    format!(
        "{} – {}",
        duration_ms(p.interval_ms[0]),
        duration_ms(p.interval_ms[1])
    )
}

/// "good ±4.2%": the confidence label and the expected error.
fn confidence(p: &Prediction) -> String {
    format!("{} ±{:.1}%", p.confidence.label(), p.expected_error_pct)
}

/// "1.06×", or "≈ noise" when the speedup lies inside the combined uncertainty.
fn speedup(c: &planner::recommend::Candidate) -> String {
    if c.within_noise {
        "≈ noise".to_string()
    } else {
        format!("{:.2}×", c.speedup)
    }
}

fn extrapolation(p: &Prediction) -> String {
    if p.extrapolated {
        format!("  [extrapolated: {}]", p.outside.join(", "))
    } else {
        String::new()
    }
}

/// The `top` largest components with their share, those under 0.5% left out.
fn where_time_goes(p: &Prediction, top: usize) -> String {
    p.breakdown
        .iter()
        .filter(|c| c.ms / p.latency_ms >= 0.005)
        .take(top)
        .map(|c| format!("{} {:.0}%", c.component.label(), 100.0 * c.ms / p.latency_ms))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decode per token, end-to-end time and memory of the proposed shape.
fn render_decode(o: &mut String, answer: &Plan) {
    use std::fmt::Write;
    if let Some(d) = &answer.decode {
        let _ = writeln!(
            o,
            "\ndecode, one token per sequence at context {} ({:.2} GFLOP per step):",
            d.context,
            d.flops as f64 / 1e9
        );
        let _ = writeln!(
            o,
            "{:<9} {:>10}  {:<22} {:<16} {:>10}  where the time goes",
            "backend", "per token", "90% interval", "confidence", "tokens/s"
        );
        for (p, tps) in d.predictions.iter().zip(&d.tokens_per_s) {
            let _ = writeln!(
                o,
                "{:<9} {:>10}  {:<22} {:<16} {:>10.1}  {}{}",
                p.backend,
                duration_ms(p.latency_ms),
                interval(p),
                confidence(p),
                tps,
                where_time_goes(p, 3),
                extrapolation(p)
            );
        }
    } else if answer.shape.is_some() {
        let _ = writeln!(o, "\ndecode: this profile has no decode model");
    }
    if answer.decode.is_some() && !answer.without_decode.is_empty() {
        let _ = writeln!(
            o,
            "decode: no decode model for {} (measure decode with `bench profile` or `bench --mode decode`)",
            answer.without_decode.join(", ")
        );
    }
    for e in &answer.end_to_end {
        let _ = writeln!(
            o,
            "end to end on {}: prefill {} + {} tokens × {} = {} (90%: {} – {})",
            e.backend,
            duration_ms(e.prefill_ms),
            e.output,
            duration_ms(e.decode_ms_per_token),
            duration_ms(e.total_ms),
            duration_ms(e.interval_ms[0]),
            duration_ms(e.interval_ms[1])
        );
    }
    if let Some(m) = &answer.memory {
        let _ = writeln!(
            o,
            "memory   tensors (f32): prefill {} (weights {} + activations {}) · decode at context {} {} (KV cache {})",
            bytes(m.prefill.total_bytes),
            bytes(m.prefill.weights_bytes),
            bytes(m.prefill.activations_bytes),
            m.context,
            bytes(m.decode.total_bytes),
            bytes(m.decode.kv_cache_bytes)
        );
        for b in &m.backends {
            let _ = writeln!(
                o,
                "         on {}, with its measured overheads: prefill {} · decode {}",
                b.backend,
                bytes(b.prefill.total_bytes),
                bytes(b.decode.total_bytes)
            );
        }
        if !answer.without_memory.is_empty() {
            let _ = writeln!(
                o,
                "         no measured overheads for {}: tensors only (`bench memory` or `bench profile` measures them)",
                answer.without_memory.join(", ")
            );
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // Clap's first line names the problem; usage hints stay behind --help.
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: invalid arguments"));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok((text, warnings)) => {
            for w in warnings {
                eprintln!("warning: {w}");
            }
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (| head) is not an error.
            let _ = stdout.write_all(text.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    //! Thousands of argument vectors and profiles, in process (the process-level
    //! contract, exit codes included, is tested in tests/cli.rs).
    use super::*;
    use proptest::prelude::*;

    fn run_args(args: &[String]) -> Result<String, String> {
        let argv = std::iter::once("chimera-plan".to_string()).chain(args.iter().cloned());
        match Cli::try_parse_from(argv) {
            Err(e) => Err(e.to_string()),
            Ok(cli) => run(cli).map(|(text, _)| text).map_err(|e| format!("{e:#}")),
        }
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u64..5000).prop_map(|v| v.to_string()),
            (0u64..40).prop_map(|v| v.to_string()),
            Just("-1".to_string()),
            Just("1e9".to_string()),
            Just("18446744073709551616".to_string()),
            Just("25M".to_string()),
            Just("1.5B".to_string()),
            Just("nan".to_string()),
            Just("".to_string()),
            Just("flex".to_string()),
            Just("ndarray".to_string()),
            Just("decode".to_string()),
            Just("prefill".to_string()),
            Just("gated".to_string()),
            Just("rope".to_string()),
            Just("rmsnorm".to_string()),
            Just("llama-3.2-1b".to_string()),
        ]
    }

    fn flag() -> impl Strategy<Value = &'static str> {
        prop_oneof![
            Just("--layers"),
            Just("--d-model"),
            Just("--heads"),
            Just("--seq"),
            Just("--batch"),
            Just("--vocab"),
            Just("--backend"),
            Just("--budget"),
            Just("--min-layers"),
            Just("--max-layers"),
            Just("--head-size"),
            Just("--tolerance"),
            Just("--top"),
            Just("--mode"),
            Just("--context"),
            Just("--output-tokens"),
            Just("--kv-heads"),
            Just("--d-ff"),
            Just("--head-dim"),
            Just("--mlp"),
            Just("--norm"),
            Just("--positions"),
            Just("--preset"),
            Just("--bogus"),
        ]
    }

    /// Checks an answer: finite positive predictions, and (for a proposed
    /// shape) latency that does not fall when one layer is added.
    fn check_answer(args: &[String], json: &str) -> Result<(), TestCaseError> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let predictions = v["predictions"].as_array().cloned().unwrap_or_default();
        for p in &predictions {
            let ms = p["latency_ms"].as_f64().unwrap_or(f64::NAN);
            prop_assert!(ms.is_finite() && ms > 0.0, "{args:?}: {ms}");
        }
        if let Some(layers) = v["shape"]["layers"]
            .as_u64()
            .filter(|&l| l < planner::shape::MAX_LAYERS)
        {
            let mut deeper: Vec<String> = args.to_vec();
            if let Some(i) = deeper.iter().position(|a| a == "--layers") {
                deeper[i + 1] = (layers + 1).to_string();
            }
            if let Ok(text) = run_args(&deeper) {
                let w: serde_json::Value = serde_json::from_str(&text).unwrap();
                for p in &predictions {
                    let q = w["predictions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|q| q["backend"] == p["backend"])
                        .unwrap();
                    let (a, b) = (
                        p["latency_ms"].as_f64().unwrap(),
                        q["latency_ms"].as_f64().unwrap(),
                    );
                    prop_assert!(
                        b >= a * (1.0 - 1e-12),
                        "{args:?}: {a} ms at L={layers}, {b} ms at L+1"
                    );
                }
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn random_argument_vectors_answer_or_explain(
            pairs in proptest::collection::vec((flag(), value()), 0..7),
            layers in 1u64..64,
            d_model in prop_oneof![Just(64u64), Just(256), Just(512), Just(768), 1u64..2048],
        ) {
            let mut args: Vec<String> = vec![
                "--layers".into(), layers.to_string(), "--d-model".into(), d_model.to_string(),
            ];
            for (f, v) in pairs {
                args.push(f.to_string());
                args.push(v);
            }
            args.push("--json".into());
            match run_args(&args) {
                Ok(json) => check_answer(&args, &json)?,
                Err(e) => prop_assert!(!e.trim().is_empty(), "{args:?}: empty error"),
            }
        }
    }

    fn mutate(text: &str, kind: u8, at: usize, byte: u8) -> String {
        let at = at % text.len().max(1);
        let cut = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        match kind % 4 {
            0 => text[..cut].to_string(),
            1 => format!("{}{}{}", &text[..cut], byte as char, &text[cut..]),
            2 => text.replacen("\"value\": ", "\"value\": -", 1 + at % 3),
            _ => text.replace("schema_version\": 2", &format!("schema_version\": {byte}")),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(600))]
        #[test]
        fn random_profiles_answer_or_explain(kind in 0u8..4, at in 0usize..200_000, byte in 0u8..128) {
            let text = mutate(planner::DEFAULT_PROFILE_JSON, kind, at, byte);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("p.json");
            std::fs::write(&path, &text).unwrap();
            let args: Vec<String> = ["--layers", "8", "--d-model", "512", "--json", "--profile", path.to_str().unwrap()]
                .iter().map(|s| s.to_string()).collect();
            match run_args(&args) {
                Ok(json) => check_answer(&args, &json)?,
                Err(e) => prop_assert!(e.contains("profile"), "{e}"),
            }
        }
    }
}
