#!/usr/bin/env bash
# Prepares a GPU measurement run for a lent NVIDIA machine (no Rust, no network
# there): builds a release `bench` with the wgpu feature here, strips and
# compresses it into .gpu/, and downloads the Vulkan/EGL loader packages into
# .gl/ (both ignored by git, carried by the device tool). Then:
#
#   device run, carry [".gl", ".gpu"], timeout_s 590:
#     bash scripts/gpu-run.sh
#
# A dry run of the same script on a CPU backend, here:
#   GPU_BACKEND=flex GPU_SWEEP=--quick OUT=/tmp/gpu-dry bash scripts/gpu-run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo /.gl/ >> .git/info/exclude
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> .git/info/exclude

cargo build --release -p bench --features wgpu
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
mkdir -p .gpu
cp "$target_dir/release/bench" .gpu/bench
strip .gpu/bench
xz -T0 -6 -f .gpu/bench
ls -la .gpu/

mkdir -p .gl /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update -qq
(cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
du -sh .gl .gpu
