#!/usr/bin/env python3
"""Splits measurement files into the lines of `bench calibrate`'s anchor shapes
(data/sweeps/llama-anchors.toml for prefill, llama-anchors-decode.toml for
decode) and the rest, so a run that measured both can be scored as `bench
calibrate` would be used: level from the anchors, accuracy on the others.

    scripts/split-anchors.py OUT_DIR MEASUREMENTS.jsonl [...]

Writes OUT_DIR/anchors.jsonl and OUT_DIR/rest.jsonl (lines unchanged).
"""
import json
import os
import sys
import tomllib

SWEEPS = {"prefill": "data/sweeps/llama-anchors.toml", "decode": "data/sweeps/llama-anchors-decode.toml"}


def key(m):
    """A GPT-2-style shape's identity (architecture fields absent)."""
    return (m["layers"], m["d_model"], m["heads"], m.get("seq", 128), m.get("batch", 1), m.get("vocab", 50257),
            m.get("kv_heads"), m.get("mlp"))


def main():
    out_dir, files = sys.argv[1], sys.argv[2:]
    if not files:
        sys.exit(__doc__)
    root = os.path.join(os.path.dirname(__file__), "..")
    anchors = {phase: {key(s) for s in tomllib.load(open(os.path.join(root, path), "rb"))["shape"]}
               for phase, path in SWEEPS.items()}
    os.makedirs(out_dir, exist_ok=True)
    counts = {"anchors": 0, "rest": 0}
    with open(os.path.join(out_dir, "anchors.jsonl"), "w") as a, open(os.path.join(out_dir, "rest.jsonl"), "w") as r:
        for f in files:
            for line in open(f):
                m = json.loads(line)
                is_anchor = key(m) in anchors[m["kind"]]
                (a if is_anchor else r).write(line)
                counts["anchors" if is_anchor else "rest"] += 1
    print(f"{counts['anchors']} anchor lines, {counts['rest']} others, in {out_dir}")


if __name__ == "__main__":
    main()
