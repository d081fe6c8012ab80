#!/usr/bin/env bash
# held-out sets, both backends: $1 = binary dir, $2 = output file
set -u
B=$1/bench
for s in evaluate-llama-2:prefill evaluate-llama-2-decode:decode evaluate-prefill:prefill evaluate-decode:decode; do
  $B measure --sweep /work/main/data/sweeps/${s%%:*}.toml --mode ${s##*:} --backend flex,ndarray \
    --out $2 --no-progress --max-time-per-shape 10 >> ${2%.jsonl}.log 2>&1
  echo "$s rc=$? $(date -u +%T)"
done
