#!/usr/bin/env bash
# Intel Xeon VM, a second session (2026-12-04 ~05:15 UTC): a 5-minute onboarding with the grid that measures
# 64-row and 4×32-row linear layouts (clean 08c1ed0; bench keeps glibc's freed memory by default), then the
# held-out sets of the first session (02:40–02:50), both backends.
set -u
B=/tmp/bin-n/bench
D=/tmp/xeon2   # committed as data/onboarding/xeon-2/
echo "== onboarding $(date -u +%T)"
$B profile --budget 5m --measurements-out $D/onboard-5m.jsonl --ops-out $D/ops.jsonl \
  --memory-out $D/memory.jsonl --out $D/onboard-5m.json \
  --name "xeon-2 (2-core Intel Xeon VM, 5-minute onboarding, 2026-12-04, second session)" > $D/onboard-5m.log 2>&1
echo "rc=$? $(date -u +%T)"
echo "== held-out $(date -u +%T)"
for s in evaluate-llama-2:prefill evaluate-llama-2-decode:decode evaluate-prefill:prefill evaluate-decode:decode; do
  $B measure --sweep /work/main/data/sweeps/${s%%:*}.toml --mode ${s##*:} --backend flex,ndarray \
    --out $D/evaluate.jsonl --no-progress --max-time-per-shape 10 >> $D/evaluate.log 2>&1
  echo "$s rc=$? $(date -u +%T)"
done
echo "== done $(date -u +%T)"
