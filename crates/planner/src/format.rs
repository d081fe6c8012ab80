//! Units that adapt: µs/ms/s and K/M/B.

/// Formats milliseconds as µs, ms or s with three significant digits.
pub fn duration_ms(ms: f64) -> String {
    if !ms.is_finite() {
        return "n/a".into();
    }
    let (v, unit) = if ms.abs() < 1.0 {
        (ms * 1e3, "µs")
    } else if ms.abs() < 1e3 {
        (ms, "ms")
    } else {
        (ms / 1e3, "s")
    };
    let digits = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

/// Formats a count with K/M/B suffixes.
pub fn count(x: u64) -> String {
    let v = x as f64;
    if v >= 1e9 {
        format!("{:.2}B", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}K", v / 1e3)
    } else {
        x.to_string()
    }
}

/// Formats bytes in binary units (KiB, MiB, GiB), three significant digits.
pub fn bytes(x: u64) -> String {
    let v = x as f64;
    let (v, unit) = if v >= 1024f64.powi(3) {
        (v / 1024f64.powi(3), "GiB")
    } else if v >= 1024f64.powi(2) {
        (v / 1024f64.powi(2), "MiB")
    } else if v >= 1024.0 {
        (v / 1024.0, "KiB")
    } else {
        return format!("{x} B");
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

/// Parses a count with an optional K/M/B suffix (`25M`, `1.5B`, `300k`).
pub fn parse_count(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (num, mult) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 1e3),
        Some('M') => (&t[..t.len() - 1], 1e6),
        Some('B') | Some('G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number (examples: 25M, 1.5B, 300K)"))?;
    let total = v * mult;
    if !(total.is_finite() && (1.0..=1e13).contains(&total)) {
        return Err(format!(
            "`{text}` is out of range: give a count between 1 and 10T"
        ));
    }
    Ok(total.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(2048), "2.00 KiB");
        assert_eq!(bytes(124_439_808 * 4), "475 MiB");
        assert_eq!(bytes(3 << 30), "3.00 GiB");
    }

    #[test]
    fn units_adapt() {
        assert_eq!(duration_ms(0.0123), "12.3 µs");
        assert_eq!(duration_ms(1.5), "1.50 ms");
        assert_eq!(duration_ms(291.2), "291 ms");
        assert_eq!(duration_ms(1500.0), "1.50 s");
        assert_eq!(count(124_439_808), "124.4M");
    }

    #[test]
    fn counts_parse() {
        assert_eq!(parse_count("25M"), Ok(25_000_000));
        assert_eq!(parse_count("1.5b"), Ok(1_500_000_000));
        assert_eq!(parse_count("300k"), Ok(300_000));
        assert_eq!(parse_count("1234"), Ok(1234));
        assert!(parse_count("lots").is_err());
        assert!(parse_count("-5M").is_err());
        assert!(parse_count("0").is_err());
    }
}
