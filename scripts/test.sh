#!/usr/bin/env bash
# Every test of the project, on a fresh Debian machine with Rust: installs what
# is missing (OpenBLAS, Chromium, the wasm32 target, wasm-bindgen-cli at the
# Cargo.lock version, playwright-core from npm), then runs
#   1. cargo test --workspace --release            (unit, integration, property, snapshot)
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

echo "== web: build (installs the wasm target and wasm-bindgen-cli if needed)"
scripts/build-web.sh

echo "== web: wasm-bindgen tests under Node.js"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test -p chimera-web --target wasm32-unknown-unknown --release

echo "== web: browser test (headless Chromium)"
cargo build --release -p chimera-plan
(cd web && npm ci --no-audit --no-fund --loglevel=error && node --test tests/)
