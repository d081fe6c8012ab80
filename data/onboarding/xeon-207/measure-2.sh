#!/usr/bin/env bash
# Intel Xeon VM (GenuineIntel 6/207/2), 2026-12-07, after measure.sh: the Xeon profile of 2026-12-06
# (another Xeon VM type) calibrated here with eight Llama-style anchors per phase, then the held-out sets
# again (b). Binary: clean fc8377c.
set -u
D=/tmp/x4
B=/tmp/x4bin/bench
echo "== calibrate xeon-llama $(date -u +%T)"
$B calibrate --profile /work/main/data/profiles/xeon-llama.json --anchors llama \
  --measurements $D/calibration-llama.jsonl --out $D/xeon-llama-calibrated.json > $D/calibrate.log 2>&1
echo "rc=$? $(date -u +%T)"
echo "== held-out b $(date -u +%T)"
/work/main/data/onboarding/zen4-6/heldout.sh /tmp/x4bin $D/evaluate-b.jsonl
echo "== done $(date -u +%T)"
