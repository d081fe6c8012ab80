#!/usr/bin/env bash
# A second 5-minute onboarding of the session, with 24 decode anchors (28de183, clean), scored on the
# held-out sets A-D measured before it.
set -u
D=/tmp/z7   # committed as data/onboarding/zen4-6/onboard-24-*
echo "== onboarding $(date -u +%T)"
/tmp/bin-c/bench profile --budget 5m --measurements-out $D/onboard-24.jsonl --ops-out $D/ops-24.jsonl \
  --memory-out $D/memory-24.jsonl --out $D/onboard-24.json --evaluate /tmp/z6/evaluate-c.jsonl --evaluate /tmp/z6/evaluate-d.jsonl \
  --name "zen4-6 (2-core AMD EPYC Zen 4 VM, 5-minute onboarding with 24 decode anchors, 2026-12-04)" > $D/onboard-24.log 2>&1
echo "rc=$? $(date -u +%T)"
