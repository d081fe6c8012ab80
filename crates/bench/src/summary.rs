//! The end-of-run table.

use std::fmt::Write;

use crate::record::{Measurement, Status};

/// A plain-text table: shape, params, median ± CI, GFLOP/s, spread.
pub fn table(measurements: &[Measurement]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:<7} {:>4} {:>5} {:>3} {:>4} {:>2} {:>7} {:>10} {:>14} {:>8} {:>7}  notes",
        "backend", "phase", "L", "d", "h", "n", "b", "params", "median ms", "95% CI ms", "GFLOP/s", "rounds%"
    );
    for m in measurements {
        let head = format!(
            "{:<8} {:<7} {:>4} {:>5} {:>3} {:>4} {:>2} {:>7}",
            m.backend,
            m.kind,
            m.shape.layers,
            m.shape.d_model,
            m.shape.heads,
            m.shape.seq,
            m.shape.batch,
            planner::format::count(m.params_total)
        );
        match (&m.status, &m.timing) {
            (Status::Ok, Some(t)) => {
                let _ = writeln!(
                    out,
                    "{head} {:>10.3} {:>14} {:>8.1} {:>7.1}  {}",
                    t.median_ms,
                    format!("{:.3}–{:.3}", t.ci95_ms[0], t.ci95_ms[1]),
                    t.gflops,
                    t.between_round_spread_pct,
                    m.warnings.join("; ")
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "{head}  FAILED: {}",
                    m.error.as_deref().unwrap_or("unknown error")
                );
            }
        }
    }
    out
}
