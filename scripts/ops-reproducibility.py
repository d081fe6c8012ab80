#!/usr/bin/env python3
"""How well two sessions' operator micro-benchmarks (`bench ops` files)
reproduce each other, per backend and operator class: the probes both hold,
the level between them (median ratio B/A), and each probe's deviation from
that level (median and p90 of |ratio / level - 1|). The level is what a
whole-model calibration can absorb; the deviation is what every cost law
fitted on one session carries into its predictions.

    scripts/ops-reproducibility.py A.jsonl B.jsonl

A probe is its kind and sizes (hot, cold or stream); failed lines are left out.
"""
import json
import sys
from collections import defaultdict
from statistics import median


def load(path):
    """(backend, probe) → median ms of the successful lines (the last one wins)."""
    out = {}
    for line in open(path):
        m = json.loads(line)
        if m["status"] == "ok":
            out[(m["backend"], json.dumps(m["probe"], sort_keys=True))] = m["median_ms"]
    return out


def class_of(probe):
    """The operator class of a probe, `-cold` for cold probes, `stream` for bandwidth probes."""
    kind, body = next(iter(probe.items()))
    if kind == "stream":
        return "stream"
    if kind == "cold":
        return body["op"]["kind"] + "-cold"
    return body["kind"]


def main():
    a, b = load(sys.argv[1]), load(sys.argv[2])
    ratios = defaultdict(list)
    for key, ms in a.items():
        if key in b and ms > 0:
            ratios[(key[0], class_of(json.loads(key[1])))].append(b[key] / ms)
    print("| backend | class | probes in both | level B/A | median deviation | p90 deviation |")
    print("|---|---|---:|---:|---:|---:|")
    for backend in sorted({k[0] for k in ratios}):
        pooled = []
        for (be, cls), rs in sorted(ratios.items()):
            if be != backend:
                continue
            level = median(rs)
            dev = sorted(abs(r / level - 1) for r in rs)
            pooled.extend(dev)
            print(f"| {be} | {cls} | {len(rs)} | ×{level:.3f} | {100 * median(dev):.1f}% | {100 * dev[int(0.9 * (len(dev) - 1))]:.1f}% |")
        pooled.sort()
        print(f"| {backend} | **all** | {len(pooled)} | (per class) | {100 * median(pooled):.1f}% "
              f"| {100 * pooled[int(0.9 * (len(pooled) - 1))]:.1f}% |")


if __name__ == "__main__":
    main()
