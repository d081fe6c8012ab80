#!/usr/bin/env bash
# Intel Xeon VM (GenuineIntel 6/167/1), 2026-12-06: a 5-minute onboarding, held-out sets (a), the
# onboarding's link shapes and the Llama sweeps (one file per phase), the Llama calibration anchors,
# held-out sets again (b), GQA's decode effect. Binary: clean 47d208a.
set -u
D=/tmp/x3   # committed as data/onboarding/xeon-3/ (link-shapes.py lives there too; $D/heldout.sh was a
            # byte-identical copy of ../zen4-6/heldout.sh, not committed twice)
B=/tmp/x3bin/bench
S=/work/main/data/sweeps
echo "== onboarding $(date -u +%T)"
$B profile --budget 5m --measurements-out $D/onboard-5m.jsonl --ops-out $D/ops.jsonl \
  --memory-out $D/memory.jsonl --out $D/onboard-5m.json \
  --evaluate /work/main/data/onboarding/xeon-2/evaluate.jsonl \
  --name "xeon-3 (2-core Intel Xeon VM, 5-minute onboarding, 2026-12-06)" > $D/onboard-5m.log 2>&1
echo "rc=$? $(date -u +%T)"
echo "== held-out a $(date -u +%T)"
$D/heldout.sh /tmp/x3bin $D/evaluate-a.jsonl
python3 $D/link-shapes.py $D/onboard-5m.jsonl $D/link 8
echo "== link + llama sweeps $(date -u +%T)"
for s in $D/link-prefill:prefill $D/link-decode:decode $S/llama:prefill $S/llama-decode:decode \
         $S/llama-more:prefill $S/llama-more-decode:decode $S/llama-ablation:prefill $S/llama-ablation-decode:decode \
         $S/llama-large:prefill $S/llama-large-decode:decode; do
  $B measure --sweep ${s%%:*}.toml --mode ${s##*:} --backend flex,ndarray --out $D/llama-${s##*:}.jsonl \
    --no-progress --max-time-per-shape 10 >> $D/llama.log 2>&1
  echo "$(basename ${s%%:*}) rc=$? $(date -u +%T)"
done
echo "== calibration anchors $(date -u +%T)"
$B calibrate --profile /work/main/data/profiles/zen4-llama.json --anchors llama \
  --measurements $D/calibration-llama.jsonl --out $D/zen4-llama-calibrated.json > $D/calibrate.log 2>&1
echo "rc=$? $(date -u +%T)"
echo "== held-out b $(date -u +%T)"
$D/heldout.sh /tmp/x3bin $D/evaluate-b.jsonl
echo "== gqa effect $(date -u +%T)"
$B measure --sweep $S/gqa-effect-2-decode.toml --mode decode --backend flex,ndarray --out $D/gqa-effect-decode.jsonl \
  --no-progress --max-time-per-shape 10 > $D/gqa-effect-decode.log 2>&1
$B memory --sweep $S/gqa-effect-2-decode.toml --mode decode --backend flex,ndarray --out $D/gqa-effect-memory.jsonl \
  > $D/gqa-effect-memory.log 2>&1
echo "== done $(date -u +%T)"
