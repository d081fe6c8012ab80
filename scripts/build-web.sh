#!/usr/bin/env bash
# Builds the static web calculator into web/dist/ (serve it with any static
# server, e.g. `python3 -m http.server -d web/dist 8000`).
#
# Installs what it needs: the wasm32 target, and wasm-bindgen-cli at exactly
# the version of the wasm-bindgen crate in Cargo.lock (the CLI and the crate
# must match). Without network access and with both present, it only builds.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if [ -z "$version" ]; then
  echo "build-web: wasm-bindgen not found in Cargo.lock" >&2
  exit 1
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  # Not --locked: the CLI's own lock file names a crate version the registry
  # no longer serves; resolving afresh works.
  cargo install wasm-bindgen-cli --version "$version"
fi

cargo build -p chimera-web --target wasm32-unknown-unknown --profile wasm-release
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
wasm="$target_dir/wasm32-unknown-unknown/wasm-release/chimera_web.wasm"

rm -rf web/dist
mkdir -p web/dist/pkg web/dist/profiles
wasm-bindgen --target web --no-typescript --out-dir web/dist/pkg "$wasm"
cp web/index.html web/app.js web/style.css web/dist/
# Every committed profile is selectable on the page.
names=()
for p in data/profiles/*.json; do
  cp "$p" web/dist/profiles/
  names+=("\"$(basename "$p")\"")
done
(IFS=,; echo "[${names[*]}]") > web/dist/profiles/index.json

wasm_bytes=$(stat -c %s web/dist/pkg/chimera_web_bg.wasm)
wasm_gzip=$(gzip -9 -c web/dist/pkg/chimera_web_bg.wasm | wc -c)
total=$(du -sb web/dist | cut -f1)
echo "build-web: web/dist ready: .wasm ${wasm_bytes} B (${wasm_gzip} B gzip -9), whole folder ${total} B"
