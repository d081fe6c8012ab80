#!/usr/bin/env python3
"""How well one session's measurements predict another session's, on the same
shapes: the ceiling of any model judged on data from another session of this
machine. Each file is one session; for every ordered pair of files sharing at
least 3 shapes of a backend and phase, the second file's medians are taken as
"predictions" of the first's, scored as score-profile.py scores a profile
(MAPE, share within ±10%, pairwise order), raw and after one level factor
(the median ratio divided out).

    scripts/reproducibility.py SESSION.jsonl SESSION.jsonl [...]

Prints per backend and phase the median over pairs and the range. Disturbed
lines are left out (score-profile.py's `undisturbed`, the fit's thresholds).
"""
import importlib.util
import itertools
import os
import sys
from statistics import median

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("score_profile", os.path.join(HERE, "score-profile.py"))
score_profile = importlib.util.module_from_spec(spec)
spec.loader.exec_module(score_profile)


def shape_key(m):
    """A measurement line's shape, backend and phase (its planner arguments)."""
    return (m["backend"], m["kind"], tuple(score_profile.shape_args(m)))


def main():
    files = sys.argv[1:]
    if len(files) < 2:
        sys.exit(__doc__)
    sessions = {f: {shape_key(m): m["median_ms"] for m in score_profile.undisturbed([f])} for f in files}
    scores = {}
    for a, b in itertools.permutations(files, 2):
        for group in sorted({k[:2] for k in sessions[a]}):
            keys = [k for k in sessions[a] if k[:2] == group and k in sessions[b]]
            if len(keys) < 3:
                continue
            pairs = [(sessions[a][k], sessions[b][k]) for k in keys]
            level = median(t / p for t, p in pairs)
            raw = score_profile.score(pairs)
            after = score_profile.score([(t, p * level) for t, p in pairs])
            scores.setdefault(group, []).append((len(keys), raw, after))
    print("| backend | phase | session pairs | shapes per pair | MAPE | within ±10% | pairwise "
          "| MAPE after a level factor | within ±10% after |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")

    def cell(values, fmt):
        return f"{fmt.format(median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"

    for (backend, kind), rows in sorted(scores.items()):
        n = [r[0] for r in rows]
        print(f"| {backend} | {kind} | {len(rows)} | {min(n)}–{max(n)} "
              f"| {cell([r[1][0] for r in rows], '{:.1f}%')} | {cell([r[1][1] for r in rows], '{:.0f}%')} "
              f"| {cell([r[1][2] for r in rows], '{:.1f}%')} "
              f"| {cell([r[2][0] for r in rows], '{:.1f}%')} | {cell([r[2][1] for r in rows], '{:.0f}%')} |")


if __name__ == "__main__":
    main()
