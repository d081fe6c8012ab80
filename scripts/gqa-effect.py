#!/usr/bin/env python3
"""GQA's decode effect, measured vs predicted: for the `gqa-effect` family
(one model, kv_heads = h, h/4, h/8, contexts 512 and 2048) the measured
per-token latency and peak memory next to a profile's predictions.

    scripts/gqa-effect.py PROFILE.json LATENCY.jsonl MEMORY.jsonl [--family NAME] [--plan PATH]

`--family` picks the sweep family of the grid (default `gqa-effect`, the
first grid, L=8 d=1024 h=16; `gqa-effect-2` is L=12 d=512 h=8).

The last column is the share of CPU time the hypervisor stole during the
latency measurement (the fit leaves out lines above 2%). Latency lines are `bench --mode decode` measurements, memory lines `bench
memory --mode decode` ones; predictions come from `chimera-plan --json`.
"""
import importlib.util
import json
import os
import subprocess
import sys


def score_profile():
    """scripts/score-profile.py as a module (its name has a hyphen)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "score-profile.py")
    spec = importlib.util.spec_from_file_location("score_profile", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    argv = sys.argv[1:]
    sp = score_profile()
    plan = sp.plan_path(argv)
    family = sp.take_option(argv, "--family", "gqa-effect")
    profile, latency_file, memory_file = argv
    shape_args = sp.shape_args
    key = lambda m: (m["backend"], m["kv_heads"], m["seq"])
    latency = {key(m): m for m in map(json.loads, open(latency_file))
               if m.get("family") == family and m.get("status") == "ok"}
    memory = {key(m): m for m in map(json.loads, open(memory_file)) if m.get("kind") == "decode" and "kv_heads" in m}
    print("| backend | kv_heads | context | measured ms/token | predicted | error | 90% interval | measured peak | predicted peak | error | KV cache | stolen |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for k in sorted(latency, key=lambda k: (k[0], k[2], -k[1])):
        m = latency[k]
        out = json.loads(subprocess.run([plan, "--profile", profile, "--json", *shape_args(m)],
                                        check=True, capture_output=True, text=True).stdout)
        p = next(p for p in out["decode"]["predictions"] if p["backend"] == m["backend"])
        calibrated = [b["decode"] for b in out["memory"]["backends"] if b["backend"] == m["backend"]]
        predicted_mem = (calibrated[0] if calibrated else out["memory"]["decode"])["total_bytes"]
        mem = memory.get(k)
        peak = f"{mem['peak_bytes'] / 2**20:.0f} MiB" if mem else "–"
        mem_err = f"{100 * (predicted_mem / mem['peak_bytes'] - 1):+.1f}%" if mem else "–"
        print(f"| {m['backend']} | {m['kv_heads']} | {m['seq']} | {m['median_ms']:.2f} | {p['latency_ms']:.2f} "
              f"| {100 * (p['latency_ms'] / m['median_ms'] - 1):+.1f}% "
              f"| {p['interval_ms'][0]:.2f}–{p['interval_ms'][1]:.2f} | {peak} | {predicted_mem / 2**20:.0f} MiB "
              f"| {mem_err} | {out['memory']['decode']['kv_cache_bytes'] / 2**20:.0f} MiB "
              f"| {(m.get('load') or {}).get('steal_pct', 0):.1f}% |")


if __name__ == "__main__":
    main()
