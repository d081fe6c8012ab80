#!/usr/bin/env bash
# Prepares a GPU measurement run for a lent NVIDIA machine (no Rust, no network
# there): builds a release `bench` with the wgpu feature here (in its own
# target folder, commit first: the binary records the commit), strips and
# compresses it into .gpu/ with the OpenBLAS libraries it links (the device's
# image has none), and downloads the Vulkan/EGL loader packages into .gl/
# (both ignored by git, carried by the device tool). Then:
#
#   device run, carry [".gl", ".gpu"], timeout_s 520:
#     DEADLINE_S=420 bash scripts/gpu-run.sh
#
# The working tree travels too and must stay under 64 MiB: move the large
# measurement folders of data/ aside for the call (data/sweeps must stay).
#
# A dry run of the same script on a CPU backend, here:
#   GPU_BACKEND=flex DEADLINE_S=60 OUT=/tmp/gpu-dry BENCH=<target>/release/bench bash scripts/gpu-run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.gl/' .git/info/exclude 2>/dev/null || echo /.gl/ >> .git/info/exclude
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo /.gpu/ >> .git/info/exclude

target_dir=${GPU_TARGET_DIR:-/var/cache/chimera-gpu}
CARGO_TARGET_DIR=$target_dir cargo build --release -p bench --features wgpu
mkdir -p .gpu
cp "$target_dir/release/bench" .gpu/bench
strip .gpu/bench
xz -T0 -6 -f .gpu/bench

# Debian's OpenBLAS and the Fortran runtime it needs, for the ndarray backend.
libs=$(mktemp -d)
(cd "$libs" && apt-get download libopenblas0-pthread libgfortran5 libquadmath0 && for f in *.deb; do dpkg -x "$f" x; done)
mkdir -p "$libs/lib"
cp -L "$libs"/x/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0 \
  "$libs"/x/usr/lib/x86_64-linux-gnu/libgfortran.so.5 "$libs"/x/usr/lib/x86_64-linux-gnu/libquadmath.so.0 "$libs/lib/"
strip "$libs"/lib/*
tar cJf .gpu/lib.tar.xz -C "$libs/lib" .
ls -la .gpu/

mkdir -p .gl /tmp/amd64/partial
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
apt-get $o update -qq
(cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
du -sh .gl .gpu
