#!/usr/bin/env python3
"""Scores a profile on measured shapes it never saw, per backend and phase:
MAPE, share within ±10%, pairwise order, and the same after one level factor
per backend and phase (the median measured/predicted ratio divided out), which
separates a session's drift from the model's shape error.

    scripts/score-profile.py PROFILE.json MEASUREMENTS.jsonl [...] [--plan PATH]

Predictions come from `chimera-plan --json` (the planner itself). Failed lines
and lines taken while the hypervisor stole > 2% or other processes kept
> 0.25 cores busy (the fit's thresholds) are left out, as the fit does.
"""
import json
import os
import subprocess
import sys
from collections import defaultdict
from statistics import median


def predict(plan, profile, m):
    args = [plan, "--profile", profile, "--json", "--layers", str(m["layers"]), "--d-model", str(m["d_model"]),
            "--heads", str(m["heads"]), "--vocab", str(m["vocab"]), "--batch", str(m["batch"]), "--backend", m["backend"]]
    if m["kind"] == "decode":
        args += ["--mode", "decode", "--context", str(m["seq"]), "--seq", "1"]
    else:
        args += ["--seq", str(m["seq"])]
    out = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    preds = out["decode"]["predictions"] if m["kind"] == "decode" else out["predictions"]
    return next(p["latency_ms"] for p in preds if p["backend"] == m["backend"])


def score(pairs):
    errs = [abs(p / t - 1) for t, p in pairs]
    n = len(pairs)
    right = total = 0
    for i in range(n):
        for j in range(i + 1, n):
            (ti, pi), (tj, pj) = pairs[i], pairs[j]
            if ti == tj:
                continue
            total += 1
            right += (ti < tj) == (pi < pj)
    return 100 * sum(errs) / n, 100 * sum(e <= 0.10 for e in errs) / n, 100 * right / max(total, 1)


def main():
    argv = sys.argv[1:]
    plan = os.environ.get("CHIMERA_PLAN", "/var/cache/chimera-target/release/chimera-plan")
    if "--plan" in argv:
        i = argv.index("--plan")
        plan = argv[i + 1]
        del argv[i:i + 2]
    profile, files = argv[0], argv[1:]
    groups = defaultdict(list)
    for f in files:
        for line in open(f):
            m = json.loads(line)
            load = m.get("load") or {}
            if m.get("status") != "ok" or load.get("steal_pct", 0) > 2 or load.get("other_cores", 0) > 0.25:
                continue
            groups[(m["backend"], m["kind"])].append((m["median_ms"], predict(plan, profile, m)))
    print("| backend | phase | shapes | MAPE | within ±10% | pairwise | level factor | MAPE after it | within ±10% after |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for (backend, kind), pairs in sorted(groups.items()):
        mape, within, pairwise = score(pairs)
        factor = median(t / p for t, p in pairs)
        mape_f, within_f, _ = score([(t, p * factor) for t, p in pairs])
        print(f"| {backend} | {kind} | {len(pairs)} | {mape:.1f}% | {within:.0f}% | {pairwise:.1f}% | ×{factor:.3f} | {mape_f:.1f}% | {within_f:.0f}% |")


if __name__ == "__main__":
    main()
