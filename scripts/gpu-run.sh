#!/usr/bin/env bash
# Runs on the lent GPU machine (see scripts/gpu-prepare.sh): unpacks the
# carried loaders, libraries and binary, checks that wgpu finds the NVIDIA
# Vulkan driver, then measures on wgpu, in this order, until DEADLINE_S:
#   1. the quick sweep (tiny shapes: the adapter works; cold start)
#   2. the default prefill sweep           -> wgpu-default.jsonl
#   3. the evaluation sweeps (held out)    -> wgpu-evaluate.jsonl
#   4. the default decode sweep            -> wgpu-default.jsonl
#   5. the Llama-style sweeps              -> wgpu-llama.jsonl
#   6. the host's own CPU (flex) on the smallest default shapes, the other
#      side of the CPU/GPU crossover       -> host-flex.jsonl
# Rounds interleave over a sweep's shapes, so a sweep cut off writes nothing:
# each sweep is measured in chunks of a few shapes, each chunk under its own
# timeout, and a chunk cut off loses only its own shapes. Files are copied
# to $OUT after every chunk, so even a call killed at its limit returns them.
# The fit runs afterwards, off the device (no device time).
#
# Dry run on a CPU backend here:
#   GPU_BACKEND=flex DEADLINE_S=60 OUT=/tmp/gpu-dry BENCH=<target>/release/bench bash scripts/gpu-run.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
backend=${GPU_BACKEND:-wgpu}
deadline=${DEADLINE_S:-450}
cap=${SHAPE_CAP_S:-4}
work=$(mktemp -d)
log="$OUT/gpu-run.log"
exec > >(tee "$log") 2>&1
started=$(date +%s)
elapsed() { echo $(( $(date +%s) - started )); }

if [ "$backend" != "flex" ]; then
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  ldconfig -p | grep -q libvulkan || echo "warning: no Vulkan loader after unpacking .gl"
  if [ -z "${VK_DRIVER_FILES:-}" ] && [ -e /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  fi
  echo "Vulkan ICDs: ${VK_DRIVER_FILES:-$(ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null | tr '\n' ' ')}"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
  nproc; grep -m1 "model name" /proc/cpuinfo
fi

bin=/tmp/chimera-bench
if [ -e .gpu/bench.xz ]; then
  xz -dc .gpu/bench.xz > "$bin" && chmod +x "$bin"
  # The ndarray backend links Debian's OpenBLAS; the image may lack it.
  mkdir -p /tmp/chimera-lib && tar xJf .gpu/lib.tar.xz -C /tmp/chimera-lib
  export LD_LIBRARY_PATH=/tmp/chimera-lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
else
  bin=${BENCH:-target/release/bench}
fi
"$bin" --help > /dev/null || { echo "the bench binary does not start here"; ldd "$bin"; exit 1; }

# Splits a sweep file into files of `per` shapes each (same name, same
# families), printed one path per line.
split_sweep() {
  python3 - "$1" "$2" "$work/sweeps" <<'EOF'
import os, sys
path, per, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]
text = open(path).read()
head, *shapes = text.split("[[shape]]")
os.makedirs(folder, exist_ok=True)
stem = os.path.basename(path)[:-5]
for k in range(0, len(shapes), per):
    out = os.path.join(folder, f"{stem}-{k // per}.toml")
    with open(out, "w") as f:
        f.write(head + "".join("[[shape]]" + s for s in shapes[k:k + per]))
    print(out)
EOF
}

# measure BACKEND SWEEP MODE OUTFILE PER CHUNK_LIMIT_S
measure() {
  local on=$1 sweep=$2 mode=$3 file=$4 per=$5 limit=$6 chunk rem
  for chunk in $(split_sweep "$sweep" "$per"); do
    rem=$(( deadline - $(elapsed) ))
    if [ "$rem" -lt 15 ]; then echo "skipped $chunk ($mode): deadline"; continue; fi
    [ "$rem" -lt "$limit" ] && limit=$rem
    timeout -s INT -k 5 "$limit" "$bin" measure --sweep "$chunk" --mode "$mode" --backend "$on" \
      --out "$work/$file" --no-progress --max-time-per-shape "$cap"
    echo "$(basename "$chunk") $mode on $on: exit $? at $(elapsed) s"
    cp "$work/$file" "$OUT/$file" 2>/dev/null
  done
}

timeout -s INT -k 5 90 "$bin" measure --quick --backend "$backend" --out "$work/$backend-quick.jsonl" \
  --no-progress --max-time-per-shape 5
quick=$?
cp "$work/$backend-quick.jsonl" "$OUT/" 2>/dev/null
echo "quick sweep exit $quick at $(elapsed) s"
if [ "$quick" -ne 0 ] && [ ! -s "$work/$backend-quick.jsonl" ]; then
  echo "== $backend does not run here; what the loader sees:"
  ls -la /usr/local/nvidia/share/vulkan/icd.d /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>&1
  ldconfig -p | grep -i "vulkan\|nvidia" | head -20
  exit 1
fi

measure "$backend" data/sweeps/default.toml prefill "$backend-default.jsonl" 7 90
measure "$backend" data/sweeps/evaluate-prefill.toml prefill "$backend-evaluate.jsonl" 8 80
measure "$backend" data/sweeps/decode.toml decode "$backend-default.jsonl" 10 80
measure "$backend" data/sweeps/evaluate-decode.toml decode "$backend-evaluate.jsonl" 12 80
measure "$backend" data/sweeps/llama.toml prefill "$backend-llama.jsonl" 8 80
measure "$backend" data/sweeps/llama-decode.toml decode "$backend-llama.jsonl" 11 80
if [ "$backend" != "flex" ]; then
  # The host CPU on the smallest default shapes, where a CPU can still win.
  measure flex data/sweeps/default.toml prefill host-flex.jsonl 6 60
fi
echo "done after $(elapsed) s"
ls -la "$OUT"
