#!/usr/bin/env bash
# Intel Xeon VM (GenuineIntel 6/207/2), 2026-12-07, after measure-3.sh: ndarray on the Llama-style
# held-out shapes with the kernels Debian's OpenBLAS 0.3.21 picks here (Prescott, its generic SSE3
# set: it does not know the model) and with OPENBLAS_CORETYPE=SkylakeX (AVX-512), back to back.
# Binary: clean 80d9425 (records blas_core and OPENBLAS_CORETYPE).
set -u
D=/tmp/x4
B=/tmp/x4bin2/bench
S=/work/main/data/sweeps
for setting in generic skylakex; do
  for s in evaluate-llama-2:prefill evaluate-llama-2-decode:decode; do
    if [ $setting = skylakex ]; then export OPENBLAS_CORETYPE=SkylakeX; else unset OPENBLAS_CORETYPE; fi
    $B measure --sweep $S/${s%%:*}.toml --mode ${s##*:} --backend ndarray --out $D/blas-$setting.jsonl \
      --no-progress --max-time-per-shape 10 >> $D/blas-$setting.log 2>&1
    echo "$setting $s rc=$? $(date -u +%T)"
  done
done
echo "== done $(date -u +%T)"
