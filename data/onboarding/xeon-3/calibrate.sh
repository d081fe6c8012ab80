#!/usr/bin/env bash
# The committed xeon-llama put on this session's level an hour after its sweeps by `bench calibrate
# --anchors llama` (the user's workflow), then the held-out sets a third time (evaluate-c).
set -u
D=/tmp/x3   # committed as data/onboarding/xeon-3/ ($D/heldout.sh: a copy of ../zen4-6/heldout.sh)
echo "== calibrate $(date -u +%T)"
/tmp/x3bin/bench calibrate --profile /work/main/data/profiles/xeon-llama.json --anchors llama \
  --measurements $D/calibration-llama-2.jsonl --out $D/xeon-llama-calibrated.json > $D/calibrate-2.log 2>&1
echo "rc=$? $(date -u +%T)"
echo "== held-out c $(date -u +%T)"
$D/heldout.sh /tmp/x3bin $D/evaluate-c.jsonl
echo "== done $(date -u +%T)"
