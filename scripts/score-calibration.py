#!/usr/bin/env python3
"""Scores `bench calibrate` as a user would use it: the profile calibrated
from anchor measurements of one session, judged on other shapes of the same
session that neither the fit nor the calibration saw — against the profile
as fitted.

    scripts/score-calibration.py PROFILE.json ANCHORS.jsonl EVAL.jsonl [...] [--bench PATH] [--plan PATH]

Prints calibrate's table, then per backend and phase the held-out MAPE,
share within ±10% and pairwise order without and with the calibration
(disturbed lines left out, as score-profile.py and the fit do).
"""
import importlib.util
import os
import subprocess
import sys
import tempfile
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("score_profile", os.path.join(HERE, "score-profile.py"))
score_profile = importlib.util.module_from_spec(spec)
spec.loader.exec_module(score_profile)


def main():
    argv = sys.argv[1:]
    target = os.environ.get("CARGO_TARGET_DIR", "/var/cache/chimera-target")
    bench = score_profile.take_option(argv, "--bench", os.path.join(target, "release/bench"))
    plan = score_profile.take_option(argv, "--plan", os.path.join(target, "release/chimera-plan"))
    if len(argv) < 3:
        sys.exit(__doc__)
    profile, anchors, files = argv[0], argv[1], argv[2:]
    with tempfile.TemporaryDirectory() as tmp:
        calibrated = os.path.join(tmp, "calibrated.json")
        run = subprocess.run([bench, "calibrate", "--profile", profile, "--from", anchors, "--out", calibrated],
                             capture_output=True, text=True)
        print(run.stdout, end="")
        if run.returncode != 0:
            sys.exit(run.stderr)
        groups = defaultdict(list)
        for m in score_profile.undisturbed(files):
            before = score_profile.predict(plan, profile, m)[0]
            after = score_profile.predict(plan, calibrated, m)[0]
            groups[(m["backend"], m["kind"])].append((m["median_ms"], before, after))
    print()
    print("| backend | phase | shapes | MAPE as fitted | within ±10% | pairwise | MAPE calibrated | within ±10% | pairwise |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for (backend, kind), rows in sorted(groups.items()):
        b = score_profile.score([(t, p) for t, p, _ in rows])
        a = score_profile.score([(t, p) for t, _, p in rows])
        print(f"| {backend} | {kind} | {len(rows)} | {b[0]:.1f}% | {b[1]:.0f}% | {b[2]:.1f}% "
              f"| {a[0]:.1f}% | {a[1]:.0f}% | {a[2]:.1f}% |")


if __name__ == "__main__":
    main()
