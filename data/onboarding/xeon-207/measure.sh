#!/usr/bin/env bash
# Intel Xeon VM (GenuineIntel 6/207/2), 2026-12-07: a machine no profile had seen. A 5-minute
# onboarding, the held-out sets (a), flex decode's batch and depth probes. Binary: clean fc8377c.
set -u
D=/tmp/x4   # committed as data/onboarding/xeon-207/
B=/tmp/x4bin/bench
S=/work/main/data/sweeps
echo "== onboarding $(date -u +%T)"
$B profile --budget 5m --measurements-out $D/onboard-5m.jsonl --ops-out $D/ops.jsonl \
  --memory-out $D/memory.jsonl --out $D/onboard-5m.json \
  --name "xeon-207 (2-core Intel Xeon VM 6/207/2, 5-minute onboarding, 2026-12-07)" > $D/onboard-5m.log 2>&1
echo "rc=$? $(date -u +%T)"
echo "== held-out a $(date -u +%T)"
/work/main/data/onboarding/zen4-6/heldout.sh /tmp/x4bin $D/evaluate-a.jsonl
echo "== batch and depth $(date -u +%T)"
$B measure --sweep /work/main/data/onboarding/xeon-3/batch-and-depth.toml --mode decode --backend flex,ndarray \
  --out $D/batch-and-depth.jsonl --no-progress --max-time-per-shape 10 > $D/batch-and-depth.log 2>&1
echo "rc=$? $(date -u +%T)"
echo "== done $(date -u +%T)"
