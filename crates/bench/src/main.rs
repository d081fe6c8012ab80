//! `bench`: measure, fit, profile and report. One place prints errors.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    // Measure with glibc's malloc keeping freed memory (bench::allocator says why).
    match bench::allocator::decide_here() {
        Ok(bench::allocator::Decision::Restart) => {
            let e = bench::allocator::restart();
            eprintln!(
                "warning: measuring with the allocator as shipped: starting again with it keeping freed memory failed: {e}"
            );
        }
        Ok(bench::allocator::Decision::AsIs) => {}
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<cli::Interrupted>() => {
            eprintln!("{e}");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
