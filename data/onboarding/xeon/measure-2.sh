#!/usr/bin/env bash
# Xeon VM, kept: the Llama sweeps the Zen 4/5 profiles were fitted on (llama.toml, llama-decode.toml), both backends.
set -u
B=/tmp/bin-m/bench
D=/tmp/xeon
export MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=4294967296
for s in llama:prefill llama-decode:decode; do
  $B measure --sweep /work/main/data/sweeps/${s%%:*}.toml --mode ${s##*:} --backend flex,ndarray \
    --out $D/kept-llama-${s##*:}.jsonl --no-progress --max-time-per-shape 10 >> $D/kept-llama.log 2>&1
  echo "$s rc=$? $(date -u +%T)"
done
