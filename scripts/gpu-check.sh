#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build vpage, run the GPU suite, the
# launch-overhead benchmark and the Wan main job with and without the
# preload. Everything it prints, and the result files, go to OUTDIR.
#
#   scripts/gpu-check.sh OUTDIR
set -u
out=${1:?usage: scripts/gpu-check.sh OUTDIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
log() { echo "== $*"; }
{
  log "machine"; nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv
  log "build"
  meson setup build-gpu --reconfigure >/dev/null 2>&1 || meson setup build-gpu || exit 1
  ninja -C build-gpu || exit 1
  log "gpu suite"
  timeout 900 python3 tests/gpu/run_gpu_suite.py build-gpu/libvpage.so --out "$out"
  echo "gpu suite exit: $?"
  log "launch overhead"
  timeout 600 python3 bench/launch_overhead.py build-gpu --out "$out"
  log "wan 1.3B, 4096 tokens: no preload, then VPAGE_CAP=8G"
  timeout 300 python3 bench/run_wan.py --model 1.3B --tokens 4096 --steps 5 --json "$out/wan-nopreload.json"
  VPAGE_CAP=8G VPAGE_STATS=1 LD_PRELOAD=$PWD/build-gpu/libvpage.so timeout 300 \
    python3 bench/run_wan.py --model 1.3B --tokens 4096 --steps 5 --json "$out/wan-vpage.json"
  python3 - "$out" <<'PY'
import json, sys
a = json.load(open(sys.argv[1] + "/wan-nopreload.json")); b = json.load(open(sys.argv[1] + "/wan-vpage.json"))
print(f"checksums {a['checksum']} {b['checksum']} identical={a['checksum'] == b['checksum']}; "
      f"median step {a['median_step_s']:.3f} s vs {b['median_step_s']:.3f} s (ratio {b['median_step_s'] / a['median_step_s']:.3f})")
PY
} 2>&1 | tee "$out/gpu-check.log"
