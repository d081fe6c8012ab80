//! `chimera-plan`: predict latency and recommend wide-vs-deep designs.
//! A thin shell over `planner`: parse, validate, call, render. One place prints errors.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{CommandFactory, Parser};
use planner::format::{count, duration_ms, parse_count};
use planner::predict::{Prediction, predict_all, tr121_size_class};
use planner::profile::Profile;
use planner::recommend::{Constraints, Recommendation, recommend};
use planner::{Shape, ShapeSpec};
use serde::Serialize;

/// Predict transformer latency from a measured profile, and say whether a
/// wider or a deeper model of the same size would be faster.
#[derive(Parser, Debug)]
#[command(version, max_term_width = 100)]
struct Cli {
    /// Transformer blocks L.
    #[arg(long, required_unless_present_any = ["budget", "completions"])]
    layers: Option<u64>,
    /// Residual width d_model.
    #[arg(long, required_unless_present_any = ["budget", "completions"])]
    d_model: Option<u64>,
    /// Attention heads (default d_model/64).
    #[arg(long)]
    heads: Option<u64>,
    /// Sequence length of a forward pass.
    #[arg(long, default_value_t = 128)]
    seq: u64,
    /// Batch size.
    #[arg(long, default_value_t = 1)]
    batch: u64,
    /// Vocabulary size.
    #[arg(long, default_value_t = 50257)]
    vocab: u64,
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
    #[arg(long, default_value_t = 1)]
    min_layers: u64,
    /// Recommendations: most layers to consider.
    #[arg(long, default_value_t = 128)]
    max_layers: u64,
    /// Recommendations: width of one attention head.
    #[arg(long, default_value_t = 64)]
    head_size: u64,
    /// Recommendations: accepted deviation from the budget, percent.
    #[arg(long, default_value_t = 10.0)]
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

/// The `--json` output (stable: fields are only ever added).
#[derive(Serialize)]
struct JsonOutput<'a> {
    profile: &'a str,
    shape: Option<Shape>,
    params: Option<JsonParams>,
    flops: Option<u64>,
    predictions: Vec<Prediction>,
    recommendations: Option<Recommendation>,
}

#[derive(Serialize)]
struct JsonParams {
    total: u64,
    non_embedding: u64,
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

fn run(cli: Cli) -> anyhow::Result<String> {
    if let Some(shell) = cli.completions {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "chimera-plan", &mut buf);
        return Ok(String::from_utf8(buf)?);
    }
    let mut profile = load_profile(&cli.profile)?;
    if let Some(name) = &cli.backend {
        let only = profile.backend(name)?.clone();
        profile.backends = vec![only];
    }
    if cli.top == 0 || cli.top > 1000 {
        bail!("--top {} is out of range: give 1 to 1000", cli.top);
    }
    let base = ShapeSpec {
        layers: cli.layers.unwrap_or(1),
        d_model: cli.d_model.unwrap_or(64),
        heads: cli.heads,
        vocab: Some(cli.vocab),
        seq: Some(cli.seq),
        batch: Some(cli.batch),
        positions: Some(planner::shape::DEFAULT_POSITIONS.max(cli.seq)),
        ..ShapeSpec::default()
    };
    let proposed = match (cli.layers, cli.d_model) {
        (Some(_), Some(_)) => Some(base.validate()?),
        _ => None,
    };
    let base_shape = match proposed {
        Some(s) => s,
        None => ShapeSpec { heads: None, ..base }.validate()?,
    };
    let predictions = proposed.map(|s| predict_all(&profile, &s)).unwrap_or_default();
    let budget = cli
        .budget
        .or(proposed.map(|s| s.accounting().params.non_embedding));
    if cli.min_layers == 0 || cli.min_layers > cli.max_layers || cli.max_layers > planner::shape::MAX_LAYERS {
        bail!(
            "--min-layers {} / --max-layers {}: need 1 <= min <= max <= {}",
            cli.min_layers,
            cli.max_layers,
            planner::shape::MAX_LAYERS
        );
    }
    if !(8..=1024).contains(&cli.head_size) {
        bail!("--head-size {} is out of range: give 8 to 1024", cli.head_size);
    }
    if !(cli.tolerance > 0.0 && cli.tolerance <= 50.0) {
        bail!(
            "--tolerance {} is out of range: give a percentage above 0 and at most 50",
            cli.tolerance
        );
    }
    let constraints = |b| Constraints {
        min_layers: cli.min_layers,
        max_layers: cli.max_layers,
        head_size: cli.head_size,
        tolerance: cli.tolerance / 100.0,
        ..Constraints::new(b)
    };
    let recommendation = budget.map(|b| recommend(&profile, &base_shape, proposed.as_ref(), &constraints(b)));
    if cli.json {
        let out = JsonOutput {
            profile: &profile.name,
            shape: proposed,
            params: proposed.map(|s| {
                let a = s.accounting();
                JsonParams {
                    total: a.params.total,
                    non_embedding: a.params.non_embedding,
                }
            }),
            flops: proposed.map(|s| s.accounting().flops.total),
            predictions,
            recommendations: recommendation,
        };
        return Ok(serde_json::to_string_pretty(&out)? + "\n");
    }
    Ok(render(
        &profile,
        proposed.as_ref(),
        &predictions,
        recommendation.as_ref(),
        cli.top,
    ))
}

fn render(
    profile: &Profile,
    shape: Option<&Shape>,
    predictions: &[Prediction],
    rec: Option<&Recommendation>,
    top: usize,
) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    if let Some(s) = shape {
        let a = s.accounting();
        let _ = writeln!(o, "shape    {s}");
        let _ = writeln!(
            o,
            "params   {} total, {} non-embedding ({}) · {:.1} GFLOP per forward",
            count(a.params.total),
            count(a.params.non_embedding),
            tr121_size_class(a.params.total),
            a.flops.total as f64 / 1e9
        );
    }
    let _ = writeln!(o, "profile  {}\n", profile.name);
    if !predictions.is_empty() {
        let _ = writeln!(
            o,
            "{:<9} {:>10}  {:<22} {:>11}  regime",
            "backend", "latency", "90% interval", "depth tax"
        );
        for p in predictions {
            let _ = writeln!(
                o,
                "{:<9} {:>10}  {:<22} {:>11}  {}{}",
                p.backend,
                duration_ms(p.latency_ms),
                format!(
                    "{} – {}",
                    duration_ms(p.interval_ms[0]),
                    duration_ms(p.interval_ms[1])
                ),
                format!("+{}/layer", duration_ms(p.depth_tax_ms)),
                p.regime,
                if p.extrapolated {
                    format!("  [extrapolated: {}]", p.outside.join(", "))
                } else {
                    String::new()
                }
            );
        }
        if let Some(best) = predictions.first() {
            let parts: Vec<String> = best
                .breakdown
                .iter()
                .map(|c| format!("{} {:.0}%", c.component.label(), 100.0 * c.ms / best.latency_ms))
                .collect();
            let _ = writeln!(
                o,
                "\nfastest backend: {} · where the time goes: {}",
                best.backend,
                parts.join(", ")
            );
        }
    }
    if let Some(r) = rec {
        let c = &r.constraints;
        let _ = writeln!(
            o,
            "\nsame budget ({} non-embedding ±{:.0}%), {} shapes, fastest first:",
            count(c.budget_non_embedding),
            100.0 * c.tolerance,
            r.candidates.len()
        );
        let _ = writeln!(
            o,
            "{:>4} {:>6} {:>4} {:>8} {:<9} {:>10} {:>9}",
            "L", "d", "h", "params", "backend", "latency", "speedup"
        );
        for cand in r.candidates.iter().take(top) {
            let _ = writeln!(
                o,
                "{:>4} {:>6} {:>4} {:>8} {:<9} {:>10} {:>8.2}×{}",
                cand.layers,
                cand.d_model,
                cand.heads,
                count(cand.params_non_embedding),
                cand.backend,
                duration_ms(cand.latency_ms),
                cand.speedup,
                if cand.extrapolated { " (extrapolated)" } else { "" }
            );
        }
        for (label, c) in [
            ("best shallow-wide", &r.best_shallow_wide),
            ("best deep-narrow", &r.best_deep_narrow),
        ] {
            if let Some(c) = c {
                let _ = writeln!(
                    o,
                    "{label}: L={} d={} → {} on {} ({:.2}× vs proposed)",
                    c.layers,
                    c.d_model,
                    duration_ms(c.latency_ms),
                    c.backend,
                    c.speedup
                );
            }
        }
    }
    o
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
        Ok(text) => {
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
