#!/usr/bin/env python3
"""Scores a profile on measured shapes it never saw, per backend and phase:
MAPE, share within ±10%, pairwise order, and the same after one level factor
per backend and phase (the median measured/predicted ratio divided out), which
separates a session's drift from the model's shape error; and how honest the
confidence is: the mean expected error the planner stated, the share of
measurements inside its 90% interval, and the labels it gave.

    scripts/score-profile.py PROFILE.json MEASUREMENTS.jsonl [...] [--plan PATH]

Predictions come from `chimera-plan --json` (the planner itself). Failed lines
and lines taken while the hypervisor stole > 2% or other processes kept
> 0.25 cores busy (the fit's thresholds) are left out, as the fit does.
"""
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from statistics import median


def shape_args(m):
    """chimera-plan's arguments for a measurement line's shape, backend and phase."""
    args = ["--layers", str(m["layers"]), "--d-model", str(m["d_model"]), "--heads", str(m["heads"]),
            "--vocab", str(m["vocab"]), "--batch", str(m["batch"]), "--backend", m["backend"]]
    # The architecture, where the line is not GPT-2-style (absent fields: GPT-2's).
    args += ["--d-ff", str(m["d_ff"]), "--max-positions", str(m["positions"])]
    if "kv_heads" in m:
        args += ["--kv-heads", str(m["kv_heads"]), "--head-dim", str(m["head_dim"]), "--mlp", m["mlp"],
                 "--norm", m["norm"], "--positions", m["position_encoding"],
                 "--bias", {(True, True): "all", (True, False): "qkv", (False, False): "none"}[(m["qkv_bias"], m["dense_bias"])]]
        if not m["tie_embeddings"]:
            args.append("--untied")
    if m["kind"] == "decode":
        args += ["--mode", "decode", "--context", str(m["seq"]), "--seq", "1"]
    else:
        args += ["--seq", str(m["seq"])]
    return args


def predict(plan, profile, m):
    args = [plan, "--profile", profile, "--json", *shape_args(m)]
    out = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
    preds = out["decode"]["predictions"] if m["kind"] == "decode" else out["predictions"]
    p = next(p for p in preds if p["backend"] == m["backend"])
    return p["latency_ms"], p["interval_ms"], p["expected_error_pct"], p["confidence"]


def take_option(argv, name, default):
    """Removes `name VALUE` from argv and returns VALUE (or `default`)."""
    if name in argv:
        i = argv.index(name)
        value = argv[i + 1]
        del argv[i:i + 2]
        return value
    return default


def plan_path(argv):
    """The chimera-plan binary: `--plan PATH`, else $CHIMERA_PLAN, else the shared target's."""
    return take_option(argv, "--plan", os.environ.get("CHIMERA_PLAN", "/var/cache/chimera-target/release/chimera-plan"))


def undisturbed(files):
    """The successful lines of `files` taken while the machine was its own (the fit's thresholds)."""
    for f in files:
        for line in open(f):
            m = json.loads(line)
            load = m.get("load") or {}
            if m.get("status") == "ok" and load.get("steal_pct", 0) <= 2 and load.get("other_cores", 0) <= 0.25:
                yield m


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
    plan = plan_path(argv)
    profile, files = argv[0], argv[1:]
    groups = defaultdict(list)
    for m in undisturbed(files):
        groups[(m["backend"], m["kind"])].append((m["median_ms"], *predict(plan, profile, m)))
    print("| backend | phase | shapes | MAPE | within ±10% | pairwise | level factor | MAPE after it | within ±10% after "
          "| mean expected error | inside the 90% interval | labels |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for (backend, kind), rows in sorted(groups.items()):
        pairs = [(t, p) for t, p, _, _, _ in rows]
        mape, within, pairwise = score(pairs)
        factor = median(t / p for t, p in pairs)
        mape_f, within_f, _ = score([(t, p * factor) for t, p in pairs])
        expected = sum(e for *_, e, _ in rows) / len(rows)
        inside = 100 * sum(lo <= t <= hi for t, _, (lo, hi), _, _ in rows) / len(rows)
        labels = ", ".join(f"{k} {v}" for k, v in sorted(Counter(c for *_, c in rows).items()))
        print(f"| {backend} | {kind} | {len(pairs)} | {mape:.1f}% | {within:.0f}% | {pairwise:.1f}% | ×{factor:.3f} "
              f"| {mape_f:.1f}% | {within_f:.0f}% | {expected:.1f}% | {inside:.0f}% | {labels} |")


if __name__ == "__main__":
    main()
