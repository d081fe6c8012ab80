//! Command line of `bench` (clap derive): parse, validate, dispatch.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use bench::fitting::{DEFAULT_MEASUREMENTS, DEFAULT_PROFILE_NAME, MEMORY_FILE, OPS_FILE};
use bench::harness::rounds::Schedule;
use bench::model::Gelu;
use bench::record::Status;
use bench::runner::{self, RunOptions};
use bench::sweep::{self, Sweep};
use bench::{backend, calibrating, fitting, summary};
use clap::{Args, Parser, Subcommand};
use planner::{Phase, ShapeSpec};

/// Chimera's benchmarker: times GPT-2-style decoders on Burn backends and
/// writes fingerprinted measurements under data/.
///
/// It measures with glibc's malloc keeping freed memory: it starts itself again
/// with MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ set, recorded in each
/// line's fingerprint. CHIMERA_ALLOCATOR=system measures the allocator as
/// shipped; allocator variables already set are kept as given.
#[derive(Parser)]
#[command(version, max_term_width = 100, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    measure: MeasureArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Measure a sweep (the default command).
    Measure(MeasureArgs),
    /// Fit measurement files into a profile.
    Fit(FitArgs),
    /// Fit, then write the Markdown report with SVG figures.
    Report(ReportArgs),
    /// Onboard this machine in one command: measure within a time budget
    /// (shapes chosen for the most information per second), fit, write a profile.
    Profile(ProfileArgs),
    /// Measure the peak memory of each shape (resident set, one child process
    /// per shape) and compare it with the planner's estimate.
    Memory(MemoryArgs),
    /// Micro-benchmark every operator class (linear layers, LM head,
    /// attention, KV-cache writes, LayerNorm, GELU, adds, embeddings) over a
    /// grid of sizes, and the bandwidth against working-set size: the data
    /// of the operator-level latency model.
    Ops(OpsArgs),
    /// Compose whole-model latency from operator measurements: fit the cost
    /// laws, check how much of each measured latency the operator sum explains,
    /// calibrate on a few anchors and score the rest.
    Compose(ComposeArgs),
    /// Put a profile on this session's level: measure eight anchor shapes
    /// per backend and phase now (GPT-2-style or, with `--anchors llama`,
    /// Llama-style; about a minute each), and scale each backend's
    /// predictions by the median of their measured/predicted ratios. A
    /// shared machine runs faster or slower from one hour to the next; this
    /// corrects the level, not the shape of the model.
    Calibrate(CalibrateArgs),
    /// One shape's memory, in this process (used by `memory`).
    #[command(hide = true)]
    MemoryProbe(ProbeArgs),
}

#[derive(Args, Clone)]
struct MemoryArgs {
    /// Sweep file (TOML); default: the built-in sweeps of each mode.
    #[arg(long, conflicts_with = "quick")]
    sweep: Option<PathBuf>,
    /// The built-in sweep of tiny shapes.
    #[arg(long)]
    quick: bool,
    /// Backends, comma separated (default: every compiled-in CPU backend).
    #[arg(long, value_delimiter = ',')]
    backend: Vec<String>,
    /// Which step to measure.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    /// Measurement file to append to (a rerun resumes from it).
    #[arg(long, default_value = MEMORY_FILE)]
    out: PathBuf,
}

#[derive(Args, Clone)]
struct OpsArgs {
    /// Backends, comma separated (default: every compiled-in CPU backend).
    #[arg(long, value_delimiter = ',')]
    backend: Vec<String>,
    /// A few tiny sizes per operator class (seconds; for a smoke test).
    #[arg(long)]
    quick: bool,
    /// The onboarding grid (about half the full one, as `bench profile`
    /// measures): a rerun on an onboarding's operator file measures only
    /// the probes it lacks, e.g. the classes added since.
    #[arg(long, conflicts_with = "quick")]
    onboarding_grid: bool,
    /// GELU variant of the GELU probes.
    #[arg(long, value_enum, default_value_t = Gelu::Exact)]
    gelu: Gelu,
    /// Operator file to append to (a rerun skips what it holds).
    #[arg(long, default_value = OPS_FILE)]
    out: PathBuf,
    /// Measure every probe anew.
    #[arg(long)]
    fresh: bool,
}

#[derive(Args, Clone)]
struct ComposeArgs {
    /// Operator files (`bench ops`).
    #[arg(long, default_value = OPS_FILE)]
    ops: Vec<PathBuf>,
    /// Whole-model measurement files or folders of the same machine.
    #[arg(long, required = true)]
    measurements: Vec<PathBuf>,
    /// Shapes per phase the calibration is fitted on (spread over the
    /// operator sums); every other shape is held out.
    #[arg(long, default_value_t = 6)]
    anchors: usize,
    /// Print the operator breakdown of this many worst shapes per phase.
    #[arg(long, default_value_t = 0)]
    explain: usize,
    /// Print every shape's operator sum and measurement as a tab-separated table.
    #[arg(long)]
    dump: bool,
    /// Keep whole-model measurements taken while other load ran or the
    /// hypervisor stole time (left out by default, as the fit does).
    #[arg(long)]
    keep_disturbed: bool,
}

#[derive(Args, Clone)]
struct CalibrateArgs {
    /// The profile to calibrate (default: the embedded one).
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Where to write the calibrated profile.
    #[arg(long)]
    out: PathBuf,
    /// Calibrate from these measurement files (every line an anchor)
    /// instead of measuring now.
    #[arg(long, num_args = 1..)]
    from: Vec<PathBuf>,
    /// Backends to measure (default: the profile's that this build has).
    #[arg(long, value_delimiter = ',')]
    backend: Vec<String>,
    /// Which steps to calibrate (with `--from`: which lines to use).
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    /// Which built-in anchors to measure: shapes of the architecture the
    /// profile will be asked about level it best.
    #[arg(long, value_enum, default_value_t = sweep::Anchors::Gpt2)]
    anchors: sweep::Anchors,
    /// Measurement file the anchors are appended to (default:
    /// ~/.local/share/chimera/measurements/calibration.jsonl, outside the committed data).
    #[arg(long)]
    measurements: Option<PathBuf>,
    /// Time cap per anchor, seconds.
    #[arg(long, default_value_t = 10.0)]
    max_time_per_shape: f64,
    /// Keep anchors taken while other load ran or the hypervisor stole time
    /// (left out by default, as the fit does).
    #[arg(long)]
    keep_disturbed: bool,
}

#[derive(Args, Clone)]
struct ProbeArgs {
    #[arg(long)]
    backend: String,
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long, value_name = "L,D,H,N,B,V", required_unless_present = "shape_json")]
    shape: Option<String>,
    /// The whole shape as JSON (every field, the architecture included).
    #[arg(long, conflicts_with = "shape")]
    shape_json: Option<String>,
    #[arg(long, value_enum, default_value_t = Gelu::Exact)]
    gelu: Gelu,
}

#[derive(Args, Clone)]
struct ProfileArgs {
    /// Backends, comma separated (default: every compiled-in CPU backend).
    #[arg(long, value_delimiter = ',')]
    backend: Vec<String>,
    /// Measuring time per backend: 90s, 5m, 1m30s.
    #[arg(long, default_value = "5m", value_parser = parse_budget)]
    budget: Duration,
    /// MLP activation.
    #[arg(long, value_enum, default_value_t = Gelu::Exact)]
    gelu: Gelu,
    /// How the next shape is chosen: best predictions over the candidate pool
    /// (i-optimal) or most precise coefficients (d-optimal), per second.
    #[arg(long, value_enum, default_value_t = Design::IOptimal)]
    design: Design,
    /// Measurement file to append to (a rerun resumes from it).
    #[arg(long, default_value = "data/measurements/onboard.jsonl")]
    measurements_out: PathBuf,
    /// Where to write the profile.
    #[arg(long, default_value = "data/profiles/this-machine.json")]
    out: PathBuf,
    /// Name stored in the profile.
    #[arg(long, default_value = "this machine (onboarded by `bench profile`)")]
    name: String,
    /// Measurement files or folders to check the new profile against
    /// (shapes measured independently, e.g. by a full sweep).
    #[arg(long)]
    evaluate: Vec<PathBuf>,
    /// Operator file the onboarding's micro-benchmarks go to (a rerun resumes).
    #[arg(long, default_value = "data/ops/onboard.jsonl")]
    ops_out: PathBuf,
    /// Decode shapes measured as anchors of the decode model (24: on a Zen 4
    /// VM, 8 more than 16 took flex decode on held-out shapes of the same
    /// session from 32% to 17–23%, README).
    #[arg(long, default_value_t = 24)]
    decode_anchors: usize,
    /// Shapes per phase measured at the start and again at the end, for the
    /// machine's run-to-run variability (0: none).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Memory file the onboarding's peak-memory probes go to (a rerun resumes).
    #[arg(long, default_value = "data/memory/onboard.jsonl")]
    memory_out: PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    Prefill,
    Decode,
    Both,
}

impl Mode {
    fn phases(self) -> Vec<Phase> {
        match self {
            Mode::Prefill => vec![Phase::Prefill],
            Mode::Decode => vec![Phase::Decode],
            Mode::Both => Phase::ALL.to_vec(),
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Design {
    IOptimal,
    DOptimal,
}

/// Parses a duration such as `300`, `90s`, `5m` or `1m30s`.
fn parse_budget(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration: write e.g. 90s, 5m or 1m30s");
    let mut total = 0.0;
    let mut number = String::new();
    for c in text.trim().chars() {
        match c {
            '0'..='9' | '.' => number.push(c),
            'h' | 'm' | 's' => {
                let v: f64 = number.parse().map_err(|_| bad())?;
                total += v * match c {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
                number.clear();
            }
            _ => return Err(bad()),
        }
    }
    if !number.is_empty() {
        total += number.parse::<f64>().map_err(|_| bad())?;
    }
    if !(10.0..=86_400.0).contains(&total) {
        return Err(format!("`{text}`: the budget must be between 10s and 24h"));
    }
    Ok(Duration::from_secs_f64(total))
}

#[derive(Args, Clone)]
struct FitArgs {
    /// Measurement files or folders of *.jsonl.
    #[arg(long, default_value = DEFAULT_MEASUREMENTS)]
    measurements: Vec<PathBuf>,
    /// Where to write the profile.
    #[arg(long, default_value = "data/profiles/default.json")]
    out: PathBuf,
    /// Name stored in the profile.
    #[arg(long, default_value = DEFAULT_PROFILE_NAME)]
    name: String,
    /// Measurement files or folders to check the new profile against
    /// (shapes measured independently, e.g. by a full sweep).
    #[arg(long)]
    evaluate: Vec<PathBuf>,
    /// Memory measurements (`bench memory`) to calibrate each backend's
    /// overheads from; skipped if missing.
    #[arg(long, default_value = MEMORY_FILE)]
    memory: PathBuf,
    /// Fit only the measurements of the machine whose key (CPU (vendor f/m/s SIMD)|threads|features|burn,
    /// as `bench fit` lists them) contains this text: one profile per machine.
    #[arg(long)]
    machine: Option<String>,
    /// Operator measurements (`bench ops`): a backend whose fitted machine
    /// has them also gets the operator model, kept where it is better held
    /// out (a missing file is none).
    #[arg(long, default_value = OPS_FILE)]
    ops: Vec<PathBuf>,
    /// Operator measurements of another machine whose busy-core readings say
    /// which operators split across threads, for a fitted machine whose own
    /// lack them; used only where backend, threads, build features, Burn and
    /// allocator settings match, and the fit says so.
    #[arg(long)]
    parallelism_from: Vec<PathBuf>,
    /// Fit measurements taken while other load ran or the hypervisor stole
    /// time too (left out by default; the fit says how many).
    #[arg(long)]
    keep_disturbed: bool,
}

#[derive(Args, Clone)]
struct ReportArgs {
    #[command(flatten)]
    fit: FitArgs,
    /// Folder for report.md and its figures.
    #[arg(long, default_value = "data/reports")]
    dir: PathBuf,
}

#[derive(Args, Clone)]
struct MeasureArgs {
    /// Sweep file (TOML); default: the built-in default sweep.
    #[arg(long, conflicts_with_all = ["quick", "shape"])]
    sweep: Option<PathBuf>,
    /// The built-in sweep of tiny shapes (seconds).
    #[arg(long, conflicts_with = "shape")]
    quick: bool,
    /// One ad-hoc shape: L,d_model,heads,seq,batch[,vocab].
    #[arg(long, value_name = "L,D,H,N,B[,V]")]
    shape: Option<String>,
    /// One ad-hoc shape as JSON, every field (the architecture included):
    /// `{"layers":4,"d_model":512,"kv_heads":2,"mlp":"gated",...}`.
    #[arg(long, conflicts_with_all = ["shape", "sweep", "quick"])]
    shape_json: Option<String>,
    /// Backends, comma separated (default: every compiled-in CPU backend).
    #[arg(long, value_delimiter = ',')]
    backend: Vec<String>,
    /// MLP activation.
    #[arg(long, value_enum, default_value_t = Gelu::Exact)]
    gelu: Gelu,
    /// What to time: prefill (a forward over n tokens), decode (one token per
    /// sequence against a KV cache of c = seq tokens), or both. The default
    /// sweep measures prefill on data/sweeps/default.toml and decode on
    /// data/sweeps/decode.toml; a given sweep or shape is measured in each mode.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    /// Measurement file to append to (default: data/measurements/<sweep>.jsonl;
    /// for --shape, ~/.local/share/chimera/measurements/ad-hoc.jsonl, outside the
    /// committed data). Every round is saved as taken in <file>.journal, so a
    /// killed run continues where it stood when run again.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Target half-width of the 95% CI of the median, percent.
    #[arg(long, default_value_t = 2.0)]
    target_ci: f64,
    /// Time cap per shape, seconds.
    #[arg(long, default_value_t = 25.0)]
    max_time_per_shape: f64,
    /// Build each shape's model anew before each round, so its rounds time
    /// different instances (on flex decode an instance's time depends on
    /// where it was built: data/probes/position/). The new instance is built
    /// beside the old one: the largest shape needs room for two copies.
    #[arg(long)]
    renew_each_round: bool,
    /// Print the measurements as JSON (one object for one shape, else an
    /// array), those already in the file included.
    #[arg(long)]
    json: bool,
    /// Measure again shapes the file already holds for this machine and build.
    #[arg(long)]
    fresh: bool,
    /// One line on stderr per step saved to the journal (for tests and logs).
    #[arg(long, hide = true)]
    log_steps: bool,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
}

fn parse_shape(text: &str) -> anyhow::Result<ShapeSpec> {
    let parts: Vec<u64> = text
        .split(',')
        .map(|p| p.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!("--shape `{text}`: expected whole numbers L,d_model,heads,seq,batch[,vocab]")
        })?;
    let [layers, d_model, heads, seq, batch, rest @ ..] = parts.as_slice() else {
        bail!(
            "--shape `{text}`: expected 5 or 6 numbers L,d_model,heads,seq,batch[,vocab], got {}",
            parts.len()
        );
    };
    if rest.len() > 1 {
        bail!("--shape `{text}`: expected at most 6 numbers");
    }
    Ok(ShapeSpec {
        layers: *layers,
        d_model: *d_model,
        heads: Some(*heads),
        seq: Some(*seq),
        batch: Some(*batch),
        vocab: rest.first().copied(),
        positions: Some(planner::shape::DEFAULT_POSITIONS.max(*seq)),
        ..ShapeSpec::default()
    })
}

/// The sweep to measure in each phase of `mode`: one ad-hoc shape, the quick
/// sweep, a sweep file, or the built-in sweep of that phase. All are parsed
/// before anything is measured.
fn sweeps_for(
    mode: Mode,
    file: Option<&std::path::Path>,
    quick: bool,
    shape: Option<&str>,
) -> anyhow::Result<Vec<(Phase, Sweep)>> {
    let sweep_for = |phase: Phase| -> anyhow::Result<Sweep> {
        Ok(if let Some(text) = shape {
            Sweep::single(
                parse_shape(text)?
                    .validate()
                    .with_context(|| format!("--shape `{text}`"))?,
            )
        } else if quick {
            Sweep::parse(sweep::QUICK_SWEEP)?
        } else if let Some(path) = file {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Sweep::parse(&text).with_context(|| format!("in {}", path.display()))?
        } else {
            Sweep::built_in(phase)?
        })
    };
    mode.phases()
        .into_iter()
        .map(|phase| Ok((phase, sweep_for(phase)?)))
        .collect()
}

/// Where an ad-hoc shape's measurements go unless `--out` says: outside the
/// committed data (which `bench fit` reads by default), in the user's data folder.
fn ad_hoc_file() -> PathBuf {
    user_measurements().join("ad-hoc.jsonl")
}

/// The user's own measurement folder, outside the committed data.
fn user_measurements() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("target"));
    data.join("chimera/measurements")
}

/// Ctrl-C presses so far: the first finishes the step in flight, the second stops at once.
static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

fn install_interrupt_handler() {
    // A second handler (tests calling twice) is not an error worth stopping for.
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTS.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!(
                "\ninterrupted: finishing the round in flight and saving it (Ctrl-C again stops at once)"
            );
        } else {
            eprintln!("\nstopped; every step saved so far is kept in the journal");
            std::process::exit(130);
        }
    });
}

fn interrupted() -> bool {
    INTERRUPTS.load(Ordering::SeqCst) > 0
}

/// A run stopped by Ctrl-C: `main` prints this and exits with 130.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Interrupted(String);

fn measure(args: MeasureArgs) -> anyhow::Result<()> {
    let sweeps = match &args.shape_json {
        Some(json) => {
            let shape: planner::Shape = serde_json::from_str(json).context("--shape-json")?;
            args.mode
                .phases()
                .into_iter()
                .map(|phase| (phase, Sweep::single(shape)))
                .collect()
        }
        None => sweeps_for(
            args.mode,
            args.sweep.as_deref(),
            args.quick,
            args.shape.as_deref(),
        )?,
    };
    let ad_hoc = args.shape.is_some() || args.shape_json.is_some();
    let backends: Vec<String> = if args.backend.is_empty() {
        cpu_backends()
    } else {
        args.backend.clone()
    };
    // Check every name before measuring anything.
    for name in &backends {
        backend::info(name)?;
    }
    warn_about_blas(&backends);
    if !(0.1..=50.0).contains(&args.target_ci) {
        bail!(
            "--target-ci {} is out of range: give a percentage between 0.1 and 50",
            args.target_ci
        );
    }
    if !(args.max_time_per_shape.is_finite() && args.max_time_per_shape > 0.0) {
        bail!("--max-time-per-shape must be a positive number of seconds");
    }
    let schedule = Schedule {
        target_rel_ci: args.target_ci / 100.0,
        job_time_cap: Duration::from_secs_f64(args.max_time_per_shape),
        renew_each_round: args.renew_each_round,
        ..Schedule::default()
    };
    install_interrupt_handler();
    let log_saved = |s: &runner::SavedStep| {
        if args.log_steps {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            eprintln!(
                "saved t={now:.3} step={} samples={} shape={}",
                s.step, s.samples, s.shape
            );
        }
    };
    let mut all = Vec::new();
    let mut outs = Vec::new();
    for (phase, sweep) in &sweeps {
        let out = match &args.out {
            Some(out) => out.clone(),
            None if ad_hoc => ad_hoc_file(),
            None => PathBuf::from(format!("data/measurements/{}.jsonl", sweep.name)),
        };
        for name in &backends {
            let started = std::time::Instant::now();
            let report = runner::run(
                sweep,
                &RunOptions {
                    backend: name,
                    gelu: args.gelu,
                    phase: *phase,
                    schedule: schedule.clone(),
                    out: &out,
                    fresh: args.fresh,
                    progress: !args.no_progress && !args.json,
                    stop: &interrupted,
                    on_saved: &log_saved,
                },
            )?;
            for (line, why) in &report.journal_skipped {
                eprintln!(
                    "warning: {}: skipped line {line}: {why}",
                    report.journal.display()
                );
            }
            eprintln!(
                "{name} {}: measured {} shapes in {:.0} s, {:.0} ms of it saving rounds to the journal ({} continued from saved rounds; {} already in {}, reused)",
                phase.name(),
                report.written.len(),
                started.elapsed().as_secs_f64(),
                1e3 * report.journal_write_s,
                report.resumed,
                report.skipped,
                out.display()
            );
            for m in &report.reused {
                if args.json {
                    eprintln!(
                        "reused the measurement of {} taken {} (same machine and build) from {}; --fresh measures again",
                        m.shape.shape().map_or_else(|_| m.shape.key(), |s| s.to_string()),
                        m.timestamp_utc,
                        out.display()
                    );
                }
            }
            if report.interrupted {
                return Err(Interrupted(format!(
                    "interrupted: {name} {phase}: {} shapes finished and written to {}; every step taken of the others is saved in {}: run the same command again to continue",
                    report.written.len(),
                    out.display(),
                    report.journal.display()
                ))
                .into());
            }
            all.extend(report.written);
            all.extend(report.reused);
        }
        outs.push(out.display().to_string());
    }
    if args.json {
        let json = if all.len() == 1 {
            serde_json::to_string_pretty(&all[0])?
        } else {
            serde_json::to_string_pretty(&all)?
        };
        println!("{json}");
    } else {
        print!("{}", summary::table(&all));
    }
    let failed = all.iter().filter(|m| m.status == Status::Failed).count();
    if failed > 0 {
        eprintln!(
            "{failed} shape(s) failed; their errors are recorded in {}",
            outs.join(" and ")
        );
    }
    Ok(())
}

/// Warns, before measuring ndarray, where OpenBLAS runs its generic kernels
/// on a CPU with wider vector units (`bench::blas`).
fn warn_about_blas(backends: &[String]) {
    if !backends.iter().any(|b| b == "ndarray") {
        return;
    }
    let here = bench::fingerprint::Fingerprint::current("ndarray");
    if let (Some(core), Some(cpu)) = (&here.blas_core, &here.cpu_details)
        && let Some(warning) = bench::blas::generic_kernels_warning(core, &cpu.simd)
    {
        eprintln!("warning: {warning}");
    }
}

fn cpu_backends() -> Vec<String> {
    backend::BACKENDS
        .iter()
        .filter(|b| b.compiled && b.device == planner::profile::DeviceClass::Cpu)
        .map(|b| b.name.to_string())
        .collect()
}

fn onboard(args: &ProfileArgs) -> anyhow::Result<()> {
    let backends = if args.backend.is_empty() {
        cpu_backends()
    } else {
        args.backend.clone()
    };
    for name in &backends {
        backend::info(name)?;
    }
    warn_about_blas(&backends);
    if let Some(dir) = args.measurements_out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    install_interrupt_handler();
    let interrupted_at = |what: &str, file: &std::path::Path| -> anyhow::Error {
        Interrupted(format!(
            "interrupted: every finished {what} is in {}; rerun the same command to go on",
            file.display()
        ))
        .into()
    };
    let program = std::env::current_exe().context("finding this program to run the memory probe")?;
    let repeats = bench::onboard::repeat_shapes(args.repeats);
    for name in &backends {
        let started = std::time::Instant::now();
        let measure = |sweep: &bench::sweep::Sweep, phase: Phase, fresh: bool| {
            runner::run(
                sweep,
                &RunOptions {
                    backend: name,
                    gelu: args.gelu,
                    phase,
                    schedule: bench::onboard::schedule(args.budget),
                    out: &args.measurements_out,
                    fresh,
                    progress: false,
                    stop: &interrupted,
                    on_saved: &runner::ignore_saved,
                },
            )
        };
        // 0. The run-to-run repeats, first pass (kept on a rerun).
        let first_started = std::time::Instant::now();
        let first = measure(&repeats, Phase::Prefill, false)?;
        let first_s = first_started.elapsed().as_secs_f64();
        if first.interrupted {
            return Err(interrupted_at("step", &args.measurements_out));
        }
        // 1. Every operator class over the onboarding grid.
        let ops = bench::ops::run(&bench::ops::OpsOptions {
            backend: name,
            gelu: args.gelu,
            grid: bench::ops::grid::Grid::Onboarding,
            schedule: bench::ops::schedule(),
            out: &args.ops_out,
            fresh: false,
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            stop: &interrupted,
            max_held_bytes: bench::ops::DEFAULT_MAX_HELD_BYTES,
        })?;
        let failed = ops.written.iter().filter(|m| m.status == Status::Failed).count();
        eprintln!(
            "{name}: {} operator probes measured ({} already in {}, {failed} failed) in {:.0} s",
            ops.written.len() - failed,
            ops.skipped,
            args.ops_out.display(),
            started.elapsed().as_secs_f64()
        );
        if ops.interrupted {
            return Err(interrupted_at("probe", &args.ops_out));
        }
        // 2. Decode anchors.
        let anchors = bench::onboard::decode_anchors(args.decode_anchors)?;
        let decode_started = std::time::Instant::now();
        let decode = measure(&anchors, Phase::Decode, false)?;
        // The fit leaves out steps the hypervisor disturbed: measure those
        // anchors once more, so a few seconds of steal cannot cost the
        // profile its decode model.
        let disturbed = bench::onboard::disturbed(
            &anchors,
            decode.written.iter().chain(&decode.reused),
            "onboard-decode-again",
        );
        if !disturbed.entries.is_empty() && !decode.interrupted {
            eprintln!(
                "{name}: {} decode anchors disturbed; measuring them again",
                disturbed.entries.len()
            );
            if measure(&disturbed, Phase::Decode, true)?.interrupted {
                return Err(interrupted_at("step", &args.measurements_out));
            }
        }
        let decode_s = decode_started.elapsed().as_secs_f64();
        eprintln!(
            "{name}: {} decode anchors measured ({} already in {}); {:.0} s so far",
            decode.written.len(),
            decode.skipped,
            args.measurements_out.display(),
            started.elapsed().as_secs_f64()
        );
        if decode.interrupted {
            return Err(interrupted_at("step", &args.measurements_out));
        }
        // 3. Prefill shapes chosen by information per second, in what is left
        // after the repeats' second pass and the memory probes (priced by what
        // their first pass and the decode anchors took).
        let decode_repeats = bench::onboard::first_entries(&anchors, args.repeats, "onboard-repeat-decode");
        let memory_sweeps = [
            (
                Phase::Prefill,
                bench::onboard::memory_shapes(
                    &bench::onboard::pool_sweep(),
                    Phase::Prefill,
                    MEMORY_PROBES_PER_PHASE,
                    "onboard-memory",
                ),
            ),
            (
                Phase::Decode,
                bench::onboard::memory_shapes(
                    &anchors,
                    Phase::Decode,
                    MEMORY_PROBES_PER_PHASE,
                    "onboard-memory-decode",
                ),
            ),
        ];
        let probes: usize = memory_sweeps.iter().map(|(_, s)| s.entries.len()).sum();
        let reserve = Duration::from_secs_f64(
            first_s
                + decode_s * decode_repeats.entries.len() as f64 / anchors.entries.len().max(1) as f64
                + MEMORY_PROBE_ESTIMATE_S * probes as f64,
        );
        let left = args
            .budget
            .saturating_sub(started.elapsed() + reserve)
            .max(Duration::from_secs(20));
        eprintln!(
            "{name}: measuring prefill for up to {:.0} s into {}",
            left.as_secs_f64(),
            args.measurements_out.display()
        );
        let criterion = match args.design {
            Design::IOptimal => fit::design::Criterion::IOptimal,
            Design::DOptimal => fit::design::Criterion::DOptimal,
        };
        let report = bench::onboard::onboard(
            name,
            args.gelu,
            left,
            criterion,
            &args.measurements_out,
            |m, s| {
                let what = match &m.timing {
                    Some(t) => planner::format::duration_ms(t.median_ms),
                    None => format!("failed: {}", m.error.as_deref().unwrap_or("unknown error")),
                };
                eprintln!(
                    "  L={:<3} d={:<5} h={:<3} n={:<4} b={:<2} V={:<6} {what:>10}   ({s:.1} s)",
                    m.shape.layers, m.shape.d_model, m.shape.heads, m.shape.seq, m.shape.batch, m.shape.vocab
                );
            },
        )?;
        eprintln!(
            "{name}: {} shapes measured in {:.0} s ({} in the file for this machine)",
            report.measured_now,
            report.spent_s,
            report.measurements.len()
        );
        // 4. The repeats' second pass: prefill and the first decode anchors again.
        for (sweep, phase) in [(&repeats, Phase::Prefill), (&decode_repeats, Phase::Decode)] {
            if measure(sweep, phase, true)?.interrupted {
                return Err(interrupted_at("step", &args.measurements_out));
            }
        }
        // 5. Peak memory of three prefill and three decode shapes large enough
        // to calibrate, each in a fresh child process.
        let failed = bench::memory::run(
            &bench::memory::RunOptions {
                backends: std::slice::from_ref(name),
                sweeps: &memory_sweeps,
                out: &args.memory_out,
                probe_program: &program,
            },
            |progress| {
                if let bench::memory::Progress::Failed(name, phase, s, e) = progress {
                    eprintln!("{name} {phase} {s}: memory probe failed: {e:#}");
                }
            },
        )?;
        eprintln!(
            "{name}: repeats and {} memory probes done ({} failed); {:.0} s in all",
            probes - failed.len(),
            failed.len(),
            started.elapsed().as_secs_f64()
        );
    }
    fit(&FitArgs {
        measurements: vec![args.measurements_out.clone()],
        out: args.out.clone(),
        name: args.name.clone(),
        evaluate: args.evaluate.clone(),
        memory: args.memory_out.clone(),
        machine: None,
        ops: vec![args.ops_out.clone()],
        parallelism_from: vec![],
        keep_disturbed: false,
    })?;
    Ok(())
}

/// Shapes per phase whose peak memory onboarding measures: three give the
/// two overheads of a backend a leave-one-out check.
const MEMORY_PROBES_PER_PHASE: usize = 3;

/// Seconds one peak-memory probe is expected to take (a child process that
/// builds a small model and runs two steps), to reserve its time in the budget.
const MEMORY_PROBE_ESTIMATE_S: f64 = 1.5;

/// "MAPE 6.2%, 85.5% within ±10%": every accuracy line prints these two alike
/// (to one decimal, so 84.9% never reads as 85%).
fn mape_and_within(mape_pct: f64, within_10pct: f64) -> String {
    format!("MAPE {mape_pct:.1}%, {:.1}% within ±10%", 100.0 * within_10pct)
}

impl FitArgs {
    fn options(&self) -> fitting::FitOptions {
        fitting::FitOptions {
            measurements: self.measurements.clone(),
            evaluate: self.evaluate.clone(),
            memory: self.memory.clone(),
            name: self.name.clone(),
            machine: self.machine.clone(),
            ops: self.ops.clone(),
            parallelism_from: self.parallelism_from.clone(),
            keep_disturbed: self.keep_disturbed,
        }
    }
}

/// Fits, writes the profile, and prints what the fit found.
fn fit(args: &FitArgs) -> anyhow::Result<fitting::Fitted> {
    let fitted = fitting::fit(&args.options())?;
    let o = &fitted.outcome;
    for line in &fitted.skipped_lines {
        eprintln!("warning: {line}");
    }
    for note in &fitted.notes {
        eprintln!("note: {note}");
    }
    for note in &o.evaluation_left_out {
        eprintln!("evaluation {note}");
    }
    for note in &o.left_out {
        eprintln!("{note}");
    }
    for f in o.factors.iter().filter(|f| !f.reference) {
        eprintln!("{f}");
    }
    for (d, phase) in o
        .data
        .iter()
        .map(|d| (d, Phase::Prefill))
        .chain(o.decode_data.iter().map(|d| (d, Phase::Decode)))
    {
        let others: Vec<String> = d
            .other_machines
            .iter()
            .map(|(m, n)| format!("`{m}` ({n} measurements)"))
            .collect();
        let tie = d.other_machines.iter().any(|(_, n)| *n == d.machine_observations);
        if others.is_empty() {
            eprintln!("{} {phase}: machine `{}`", d.backend, d.machine);
        } else {
            eprintln!(
                "{} {phase}: fitted machine `{}` ({} measurements, {}); left out, another machine each: {}; fit one of them with --machine",
                d.backend,
                d.machine,
                d.machine_observations,
                if tie {
                    "as many as another: the choice is arbitrary"
                } else {
                    "the most"
                },
                others.join(", ")
            );
        }
    }
    for (backend, shapes) in &o.decode_too_few {
        eprintln!(
            "{backend} decode: {shapes} undisturbed shapes, fewer than the {} a fit needs: the profile has no decode model for {backend}; measure more decode shapes (a rerun of `bench profile` measures the disturbed ones again)",
            fit::profile_fit::MIN_POINTS
        );
    }
    for b in &o.profile.backends {
        if let Some(c) = &b.memory {
            eprintln!(
                "{} memory: runtime {}, matrix-product workspace {}; leave-one-out {} ({} shapes)",
                b.backend,
                planner::format::bytes(c.runtime_bytes),
                planner::format::bytes(c.matmul_workspace_bytes),
                mape_and_within(c.held_out_mape_pct, c.held_out_within_10pct),
                c.measurements
            );
        }
    }
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.out, o.profile.to_json() + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    for (f, phase) in o
        .fits
        .iter()
        .map(|f| (f, Phase::Prefill))
        .chain(o.decode_fits.iter().map(|f| (f, Phase::Decode)))
    {
        let p = &f.profile;
        eprintln!(
            "{} {phase}: {} shapes, held-out {}, pairwise {:.1}%, noise floor {}, session spread {}",
            p.backend,
            p.measurements,
            mape_and_within(p.held_out.mape_pct, p.held_out.within_10pct),
            100.0 * p.held_out.pairwise,
            p.noise_floor_pct.map_or("unknown".into(), |n| format!("{n:.1}%")),
            p.session_spread_pct
                .map_or("none (no shape measured in two sessions)".into(), |n| format!(
                    "{n:.1}%"
                ))
        );
    }
    eprintln!("wrote {}", args.out.display());
    for e in &o.evaluations {
        let a = &e.accuracy;
        eprintln!(
            "{} {}: on {} shapes of {}: {}, worst {:.0}%, pairwise {:.1}%",
            e.backend,
            e.phase,
            a.n,
            e.source,
            mape_and_within(a.mape_pct, a.within_10pct),
            a.worst_pct,
            100.0 * a.pairwise
        );
    }
    Ok(fitted)
}

fn report(args: &ReportArgs) -> anyhow::Result<()> {
    let fitted = fit(&args.fit)?;
    let (markdown, files) = fitting::report(&fitted);
    std::fs::create_dir_all(&args.dir)?;
    std::fs::write(args.dir.join("report.md"), markdown)?;
    for (name, svg) in files {
        std::fs::write(args.dir.join(name), svg)?;
    }
    eprintln!("wrote {}", args.dir.join("report.md").display());
    Ok(())
}

fn memory_probe(args: &ProbeArgs) -> anyhow::Result<()> {
    let shape: planner::Shape = match (&args.shape_json, &args.shape) {
        (Some(json), _) => serde_json::from_str(json).context("--shape-json")?,
        (None, Some(text)) => parse_shape(text)?.validate()?,
        (None, None) => bail!("give --shape or --shape-json"),
    };
    let phase = match args.mode {
        Mode::Prefill => Phase::Prefill,
        Mode::Decode => Phase::Decode,
        Mode::Both => bail!("memory-probe measures one mode"),
    };
    let reading = bench::memory::probe(&args.backend, &shape, phase, args.gelu)?;
    println!("{}", serde_json::to_string(&reading)?);
    Ok(())
}

fn memory(args: &MemoryArgs) -> anyhow::Result<()> {
    use bench::memory::Progress;
    let sweeps = sweeps_for(args.mode, args.sweep.as_deref(), args.quick, None)?;
    let backends = if args.backend.is_empty() {
        cpu_backends()
    } else {
        args.backend.clone()
    };
    for name in &backends {
        if backend::info(name)?.device != planner::profile::DeviceClass::Cpu {
            bail!(
                "--backend {name}: memory is measured as the process's resident set, so only on CPU backends"
            );
        }
    }
    warn_about_blas(&backends);
    let program = std::env::current_exe().context("finding this program to run the probe")?;
    let failed = bench::memory::run(
        &bench::memory::RunOptions {
            backends: &backends,
            sweeps: &sweeps,
            out: &args.out,
            probe_program: &program,
        },
        |progress| match progress {
            Progress::Measured(m) => eprintln!(
                "{:<8} {:<7} {:<40} peak {:>9}  predicted {:>9}  {:+.1}%",
                m.backend,
                m.kind,
                m.shape.shape().map_or_else(|_| m.shape.key(), |s| s.to_string()),
                planner::format::bytes(m.peak_bytes),
                planner::format::bytes(m.predicted.total_bytes),
                100.0 * m.relative_error()
            ),
            Progress::Failed(name, phase, s, e) => eprintln!("{name} {phase} {s}: {e:#}"),
        },
    )?;
    let all = fitting::memory_observations(&bench::memory::read(&args.out)?);
    print!(
        "{}\n{}",
        fit::memory::accuracy_table(&all),
        fit::memory::calibrated_table(&all)
    );
    if !failed.is_empty() {
        bail!(
            "{} shape(s) could not be measured: {}",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

fn compose(args: &ComposeArgs) -> anyhow::Result<()> {
    let (checks, warnings) = bench::composing::compose(&bench::composing::ComposeOptions {
        ops: args.ops.clone(),
        measurements: args.measurements.clone(),
        anchors: args.anchors,
        keep_disturbed: args.keep_disturbed,
    })?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    print!("{}", bench::composing::render(&checks, args.explain, args.dump));
    Ok(())
}

fn ops(args: &OpsArgs) -> anyhow::Result<()> {
    let backends = if args.backend.is_empty() {
        cpu_backends()
    } else {
        args.backend.clone()
    };
    warn_about_blas(&backends);
    install_interrupt_handler();
    let mut failed = 0;
    for name in &backends {
        let started = std::time::Instant::now();
        let report = bench::ops::run(&bench::ops::OpsOptions {
            backend: name,
            gelu: args.gelu,
            grid: if args.quick {
                bench::ops::grid::Grid::Quick
            } else if args.onboarding_grid {
                bench::ops::grid::Grid::Onboarding
            } else {
                bench::ops::grid::Grid::Full
            },
            schedule: bench::ops::schedule(),
            out: &args.out,
            fresh: args.fresh,
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            stop: &interrupted,
            max_held_bytes: bench::ops::DEFAULT_MAX_HELD_BYTES,
        })?;
        for (line, why) in &report.file_skipped {
            eprintln!(
                "warning: {}:{line}: unreadable line skipped ({why})",
                args.out.display()
            );
        }
        let bad: Vec<_> = report
            .written
            .iter()
            .filter(|m| m.status == bench::record::Status::Failed)
            .collect();
        for m in &bad {
            eprintln!(
                "{name}: {} failed: {}",
                m.probe.key(),
                m.error.as_deref().unwrap_or("unknown error")
            );
        }
        failed += bad.len();
        eprintln!(
            "{name}: {} probes measured, {} already in {}, {} failed, {:.0} s",
            report.written.len() - bad.len(),
            report.skipped,
            args.out.display(),
            bad.len(),
            started.elapsed().as_secs_f64()
        );
        if report.interrupted {
            return Err(Interrupted(format!(
                "interrupted: every finished probe is in {}; rerun the same command to measure the rest",
                args.out.display()
            ))
            .into());
        }
    }
    if failed > 0 {
        bail!("{failed} probe(s) failed; the others are saved");
    }
    Ok(())
}

fn calibrate(args: &CalibrateArgs) -> anyhow::Result<()> {
    let profile = match &args.profile {
        Some(path) => calibrating::read_profile(path)?,
        None => planner::default_profile(),
    };
    let (observations, source) = if args.from.is_empty() {
        let out = args
            .measurements
            .clone()
            .unwrap_or_else(|| user_measurements().join("calibration.jsonl"));
        let backends: Vec<String> = if args.backend.is_empty() {
            let names = profile.backend_names();
            let here: Vec<String> = names
                .iter()
                .filter(|n| backend::info(n).is_ok())
                .cloned()
                .collect();
            if here.is_empty() {
                bail!(
                    "this build has none of the profile's backends ({}); build with their features",
                    names.join(", ")
                );
            }
            here
        } else {
            args.backend.clone()
        };
        for name in &backends {
            backend::info(name)?;
        }
        warn_about_blas(&backends);
        if !(args.max_time_per_shape.is_finite() && args.max_time_per_shape > 0.0) {
            bail!("--max-time-per-shape must be a positive number of seconds");
        }
        install_interrupt_handler();
        let schedule = Schedule {
            job_time_cap: Duration::from_secs_f64(args.max_time_per_shape),
            ..Schedule::default()
        };
        let mut observations = vec![];
        for phase in args.mode.phases() {
            let sweep = Sweep::calibration(args.anchors, phase)?;
            for name in &backends {
                let report = runner::run(
                    &sweep,
                    &RunOptions {
                        backend: name,
                        gelu: Gelu::Exact,
                        phase,
                        schedule: schedule.clone(),
                        out: &out,
                        fresh: true,
                        progress: true,
                        stop: &interrupted,
                        on_saved: &|_| {},
                    },
                )?;
                if report.interrupted {
                    return Err(Interrupted(format!(
                        "interrupted: the anchors measured so far are in {}; nothing was calibrated",
                        out.display()
                    ))
                    .into());
                }
                observations.extend(report.written.iter().filter_map(fitting::observation));
            }
        }
        (observations, out.display().to_string())
    } else {
        let mut skipped = vec![];
        let sessions = fitting::read_sessions(&args.from, &mut skipped)?;
        for line in &skipped {
            eprintln!("warning: {line}");
        }
        let names: Vec<String> = args.from.iter().map(|p| p.display().to_string()).collect();
        let phases = args.mode.phases();
        let observations = sessions
            .into_iter()
            .flat_map(|s| s.observations)
            .filter(|o| phases.contains(&o.phase))
            .collect();
        (observations, names.join(", "))
    };
    let mut observations = observations;
    if args.keep_disturbed {
        observations.iter_mut().for_each(|o| o.disturbed = None);
    }
    let (calibrated, fits) = fit::session_level::calibrate_profile(&profile, &observations, &source)?;
    print!("{}", calibrating::table(&fits));
    for f in &fits {
        if let Some(note) = &f.other_machine {
            eprintln!(
                "warning: {} {}: {note}; a level moves the profile's predictions, it does not make them another machine's (its regimes and kernel thresholds stay the profile's)",
                f.backend,
                f.phase.name()
            );
        }
    }
    calibrating::write_profile(&args.out, &calibrated)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// Parses the command line and runs it.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None => measure(cli.measure),
        Some(Command::Measure(args)) => measure(args),
        Some(Command::Fit(args)) => fit(&args).map(drop),
        Some(Command::Report(args)) => report(&args),
        Some(Command::Profile(args)) => onboard(&args),
        Some(Command::Memory(args)) => memory(&args),
        Some(Command::Ops(args)) => ops(&args),
        Some(Command::Compose(args)) => compose(&args),
        Some(Command::Calibrate(args)) => calibrate(&args),
        Some(Command::MemoryProbe(args)) => memory_probe(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse_with_units() {
        assert_eq!(parse_budget("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_budget("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_budget("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_budget("120").unwrap(), Duration::from_secs(120));
        assert!(parse_budget("5x").is_err());
        assert!(parse_budget("1s").unwrap_err().contains("between"));
        assert!(parse_budget("m").is_err());
    }
}
