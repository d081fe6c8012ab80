#!/usr/bin/env bash
# Intel Xeon VM (GenuineIntel 6/207/2), 2026-12-07, after measure-2.sh: its calibration's flex prefill
# anchors were taken while a stray compiler ran (left out, exit 2), so the calibration again, then the
# held-out sets a third time (c), right after it. Binary: clean fc8377c.
set -u
D=/tmp/x4
B=/tmp/x4bin/bench
echo "== calibrate xeon-llama $(date -u +%T)"
$B calibrate --profile /work/main/data/profiles/xeon-llama.json --anchors llama \
  --measurements $D/calibration-llama-2.jsonl --out $D/xeon-llama-calibrated.json > $D/calibrate-2.log 2>&1
echo "rc=$? $(date -u +%T)"
echo "== held-out c $(date -u +%T)"
/work/main/data/onboarding/zen4-6/heldout.sh /tmp/x4bin $D/evaluate-c.jsonl
echo "== done $(date -u +%T)"
