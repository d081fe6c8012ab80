#!/usr/bin/env bash
# Runs on the lent GPU machine (see scripts/gpu-prepare.sh): unpacks the
# carried loaders and binary, checks that the NVIDIA Vulkan driver is found,
# measures the default sweep on wgpu, fits a GPU profile, and leaves
# everything in $OUT. Sized to finish inside one 10-minute call.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
backend=${GPU_BACKEND:-wgpu}
sweep=${GPU_SWEEP:-}   # e.g. --quick for a dry run
log="$OUT/gpu-run.log"
exec > >(tee "$log") 2>&1

if [ "$backend" != "flex" ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  ldconfig -p | grep -q libvulkan || echo "warning: no Vulkan loader after unpacking .gl"
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -e /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  fi
  echo "Vulkan ICDs: ${VK_DRIVER_FILES:-$(ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null | tr '\n' ' ')}"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
fi

bin=/tmp/chimera-bench
if [ -e .gpu/bench.xz ]; then
  xz -dc .gpu/bench.xz > "$bin" && chmod +x "$bin"
else
  bin=${BENCH:-target/release/bench}
fi

started=$(date +%s)
# The whole call must end inside 10 minutes: shapes are capped at 15 s each
# and the sweep at 420 s; a shape cut off is simply missing, never half-written.
timeout 420 "$bin" $sweep --backend "$backend" --out "$OUT/gpu-$backend.jsonl" \
  --no-progress --max-time-per-shape 15
echo "sweep exit $? after $(( $(date +%s) - started )) s"
"$bin" fit --measurements "$OUT/gpu-$backend.jsonl" --out "$OUT/gpu-profile.json" \
  --name "GPU ($backend) $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
echo "done after $(( $(date +%s) - started )) s"
