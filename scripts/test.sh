#!/usr/bin/env bash
# Every test of the project, on a fresh Debian machine with Rust: installs what
# is missing (OpenBLAS, Chromium, the wasm32 target, wasm-bindgen-cli at the
# Cargo.lock version, playwright-core from npm), then runs
#   1. cargo test --workspace --release            (unit, integration, property, snapshot)
#      and a quick benchmark sweep on both CPU backends
#   2. the wasm-bindgen tests of the web bindings   (under Node.js)
#   3. the static site build and its browser test   (headless Chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

need_apt=()
[ -e /usr/lib/x86_64-linux-gnu/libopenblas.so ] || need_apt+=(libopenblas-dev)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

echo "== cargo test --workspace --release"
cargo test --workspace --release

# A real benchmark run with the bench binary the tests just built: `cargo run`
# would build it again without the dev-dependencies' feature unification,
# which recompiles Burn (~10 extra minutes on a cold cache).
echo "== smoke: quick sweep on both CPU backends"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
smoke=$(mktemp -d)
"$target_dir/release/bench" --quick --out "$smoke/quick.jsonl" --no-progress --max-time-per-shape 3
test "$(wc -l < "$smoke/quick.jsonl")" -ge 6

echo "== web: build (installs the wasm target and wasm-bindgen-cli if needed)"
scripts/build-web.sh

echo "== web: wasm-bindgen tests under Node.js"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p chimera-web --target wasm32-unknown-unknown --release

echo "== web: browser test (headless Chromium)"
# Compared against the chimera-plan binary the cargo tests built.
export CHIMERA_PLAN="$target_dir/release/chimera-plan"
(cd web && npm ci --no-audit --no-fund --loglevel=error && node --test tests/)
