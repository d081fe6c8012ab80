#!/usr/bin/env bash
# Intel Xeon VM (GenuineIntel 6/207/2), 2026-12-08, after measure-blas.sh: ndarray alone with
# OPENBLAS_CORETYPE=SkylakeX — a 5-minute onboarding and the held-out sets (Llama- and GPT-2-style),
# so that the accuracy of an onboarding is judged with the kernels this CPU can run as well; then the
# Llama-style prefill set with the generic kernels again (generic, SkylakeX, generic: the ratio is not
# the session's drift). Binary: clean 80d9425.
set -u
D=/tmp/x4
B=/tmp/x4bin2/bench
S=/work/main/data/sweeps
echo "== onboarding ndarray SkylakeX $(date -u +%T)"
OPENBLAS_CORETYPE=SkylakeX $B profile --backend ndarray --budget 5m --measurements-out $D/onboard-skx.jsonl \
  --ops-out $D/ops-skx.jsonl --memory-out $D/memory-skx.jsonl --out $D/onboard-skx.json \
  --name "xeon-207 ndarray, OPENBLAS_CORETYPE=SkylakeX (5-minute onboarding, 2026-12-08)" > $D/onboard-skx.log 2>&1
echo "rc=$? $(date -u +%T)"
for s in evaluate-llama-2:prefill evaluate-llama-2-decode:decode evaluate-prefill:prefill evaluate-decode:decode; do
  OPENBLAS_CORETYPE=SkylakeX $B measure --sweep $S/${s%%:*}.toml --mode ${s##*:} --backend ndarray \
    --out $D/evaluate-skx.jsonl --no-progress --max-time-per-shape 10 >> $D/evaluate-skx.log 2>&1
  echo "skylakex $s rc=$? $(date -u +%T)"
done
$B measure --sweep $S/evaluate-llama-2.toml --mode prefill --backend ndarray --out $D/blas-generic-2.jsonl \
  --no-progress --max-time-per-shape 10 > $D/blas-generic-2.log 2>&1
echo "generic evaluate-llama-2:prefill rc=$? $(date -u +%T)"
echo "== done $(date -u +%T)"
