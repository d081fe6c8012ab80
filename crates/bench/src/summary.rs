//! The end-of-run table.

use std::fmt::Write;

use crate::record::{Measurement, Status};

/// Formats params with K/M/B suffixes.
pub fn human_count(x: u64) -> String {
    let x = x as f64;
    match x {
        x if x >= 1e9 => format!("{:.2}B", x / 1e9),
        x if x >= 1e6 => format!("{:.1}M", x / 1e6),
        x if x >= 1e3 => format!("{:.0}K", x / 1e3),
        x => format!("{x:.0}"),
    }
}

/// A plain-text table: shape, params, median ± CI, GFLOP/s, spread.
pub fn table(measurements: &[Measurement]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:>4} {:>5} {:>3} {:>4} {:>2} {:>7} {:>10} {:>14} {:>8} {:>7}  notes",
        "backend", "L", "d", "h", "n", "b", "params", "median ms", "95% CI ms", "GFLOP/s", "rounds%"
    );
    for m in measurements {
        let head = format!(
            "{:<8} {:>4} {:>5} {:>3} {:>4} {:>2} {:>7}",
            m.backend,
            m.layers,
            m.d_model,
            m.heads,
            m.seq,
            m.batch,
            human_count(m.params_total)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_humane() {
        assert_eq!(human_count(124_439_808), "124.4M");
        assert_eq!(human_count(65_000), "65K");
        assert_eq!(human_count(1_500_000_000), "1.50B");
        assert_eq!(human_count(12), "12");
    }
}
