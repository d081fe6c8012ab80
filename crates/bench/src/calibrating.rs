//! `bench calibrate`'s files and table: reading the profile to calibrate,
//! writing the calibrated one, and what the anchors said. The level itself is
//! fitted in `fit::session_level`.

use std::path::Path;

use anyhow::Context;
use fit::session_level::LevelFit;
use planner::Profile;
use planner::profile::MAX_PROFILE_BYTES;

/// Reads and checks a profile file, refusing one above the size limit before reading it.
pub fn read_profile(path: &Path) -> anyhow::Result<Profile> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size > MAX_PROFILE_BYTES as u64 {
        anyhow::bail!(
            "{} is {size} bytes, above the {MAX_PROFILE_BYTES} byte limit of a profile",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Profile::from_json(&text).with_context(|| format!("reading {}", path.display()))
}

/// Writes a profile (creating its folder).
pub fn write_profile(path: &Path, profile: &Profile) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, profile.to_json() + "\n").with_context(|| format!("writing {}", path.display()))
}

/// One row per backend and phase: anchors, the level, and how evenly they moved.
pub fn table(fits: &[LevelFit]) -> String {
    let mut out = String::from(
        "| backend | phase | anchors | left out (disturbed) | measured / predicted (median) | 95% CI | moved | anchors' spread around it |\n|---|---|---:|---:|---:|---|---|---|\n",
    );
    for f in fits {
        let [lo, hi] = f.ratio_range;
        out.push_str(&format!(
            "| {} | {} | {} | {} | ×{:.3} | {:.3}–{:.3} | {} | {:+.1}% … {:+.1}% |\n",
            f.backend,
            f.phase.name(),
            f.anchors.len(),
            f.disturbed,
            f.ratio,
            f.ratio_ci95[0],
            f.ratio_ci95[1],
            if f.applied {
                "yes".to_string()
            } else {
                format!("no: {}", f.not_moved_because)
            },
            100.0 * (lo - 1.0),
            100.0 * (hi - 1.0)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fit::session_level::AnchorRatio;
    use planner::{Phase, ShapeSpec};

    #[test]
    fn the_table_shows_level_and_spread() {
        let shape = ShapeSpec::new(2, 128).validate().unwrap();
        let anchor = |measured_ms| AnchorRatio {
            shape,
            measured_ms,
            predicted_ms: 10.0,
        };
        let fit = LevelFit {
            backend: "flex".into(),
            phase: Phase::Decode,
            ratio: 1.2,
            ratio_ci95: [1.14, 1.32],
            applied: true,
            not_moved_because: String::new(),
            ratio_range: [0.95, 1.1],
            anchors: vec![anchor(11.4), anchor(12.0), anchor(13.2)],
            disturbed: 1,
            other_machine: None,
        };
        insta::assert_snapshot!(table(&[fit]));
    }

    #[test]
    fn an_oversized_or_invalid_profile_is_refused() {
        let dir = std::env::temp_dir().join(format!("chimera-calibrating-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{\"schema_version\": 4}").unwrap();
        let err = format!("{:#}", read_profile(&bad).unwrap_err());
        assert!(err.contains("bad.json"), "{err}");
        let big = dir.join("big.json");
        std::fs::write(&big, vec![b' '; MAX_PROFILE_BYTES + 1]).unwrap();
        assert!(read_profile(&big).unwrap_err().to_string().contains("byte limit"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
