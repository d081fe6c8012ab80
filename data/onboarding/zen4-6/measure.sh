#!/usr/bin/env bash
# AMD EPYC Zen 4 VM (AuthenticAMD 25/17/1), 2026-12-04 evening: held-out sets with the clean 8c8ab2d
# (evaluate-a), a 5-minute onboarding with the decode anchors of 80fc508 (clean), the three anchors the
# old rule took and the new one does not (ablation), then the held-out sets again (evaluate-b).
set -u
D=/tmp/z6   # committed as data/onboarding/zen4-6/
# 1. (18:41–18:47) ./heldout.sh /tmp/bin-a $D/evaluate-a.jsonl   (8c8ab2d)
B=/tmp/bin-b/bench
echo "== onboarding $(date -u +%T)"
$B profile --budget 5m --measurements-out $D/onboard-5m.jsonl --ops-out $D/ops.jsonl \
  --memory-out $D/memory.jsonl --out $D/onboard-5m.json --evaluate $D/evaluate-a.jsonl \
  --name "zen4-6 (2-core AMD EPYC Zen 4 VM, 5-minute onboarding, 2026-12-04)" > $D/onboard-5m.log 2>&1
echo "rc=$? $(date -u +%T)"
echo "== old anchors $(date -u +%T)"
$B measure --sweep $D/old-anchors.toml --mode decode --backend flex,ndarray --out $D/old-anchors.jsonl \
  --no-progress --max-time-per-shape 5 > $D/old-anchors.log 2>&1
echo "rc=$? $(date -u +%T)"
echo "== held-out again $(date -u +%T)"
$D/heldout.sh /tmp/bin-b $D/evaluate-b.jsonl
echo "== done $(date -u +%T)"
