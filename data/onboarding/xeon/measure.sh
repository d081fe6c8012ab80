#!/usr/bin/env bash
# Intel Xeon VM (2026-12-04): onboarding as shipped (A) and with glibc's malloc told to keep its memory (B),
# then the held-out sets in each state. Binary /tmp/bin-m/bench (clean 62f3e1a, features flex,ndarray,wgpu).
set -u
B=/tmp/bin-m/bench
D=/tmp/xeon   # committed as data/onboarding/xeon/, its default-* files renamed as-shipped-*
KEEP="MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296"
onboard() { # tag env...
  local tag=$1; shift
  echo "== onboarding $tag $(date -u +%T)"
  env "$@" $B profile --budget 5m --measurements-out $D/$tag-5m.jsonl --ops-out $D/$tag-ops.jsonl \
    --memory-out $D/$tag-memory.jsonl --out $D/$tag-5m.json \
    --name "xeon $tag (2-core Intel Xeon VM, 5-minute onboarding, 2026-12-04)" > $D/$tag-5m.log 2>&1
  echo "rc=$? $(date -u +%T)"
}
evaluate() { # tag env...
  local tag=$1; shift
  echo "== held-out $tag $(date -u +%T)"
  for s in evaluate-llama-2:prefill evaluate-llama-2-decode:decode evaluate-prefill:prefill evaluate-decode:decode; do
    env "$@" $B measure --sweep /work/main/data/sweeps/${s%%:*}.toml --mode ${s##*:} --backend flex,ndarray \
      --out $D/$tag-evaluate.jsonl --no-progress --max-time-per-shape 10 >> $D/$tag-evaluate.log 2>&1
    echo "$s rc=$? $(date -u +%T)"
  done
}
onboard default
onboard kept $KEEP
evaluate default
evaluate kept $KEEP
echo "== done $(date -u +%T)"
