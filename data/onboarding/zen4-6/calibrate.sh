#!/usr/bin/env bash
# The committed zen4-llama profile (fitted 2026-12-01/02 with glibc's default allocator state) put on this
# session's level by `bench calibrate --anchors llama`, then the held-out sets a third time (evaluate-c).
set -u
D=/tmp/z6
echo "== calibrate $(date -u +%T)"
/tmp/bin-b/bench calibrate --profile /work/main/data/profiles/zen4-llama.json --anchors llama \
  --measurements $D/calibration-llama.jsonl --out $D/zen4-llama-calibrated.json > $D/calibrate.log 2>&1
echo "rc=$? $(date -u +%T)"
echo "== held-out a third time $(date -u +%T)"
$D/heldout.sh /tmp/bin-b $D/evaluate-c.jsonl
echo "== done $(date -u +%T)"
