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
  python3 -c "import json,sys,datetime; r=json.load(open(sys.argv[1])); print(sys.argv[2] + '/' + datetime.date.today().isoformat() + '-' + r['gpu'].replace(' ', '-') + '-gpu-suite.json')" \
    "$out/gpu-suite.json" "$out" | xargs -r mv "$out/gpu-suite.json"
  log "launch overhead"
  timeout 600 python3 bench/launch_overhead.py build-gpu --out "$out"
  log "wan 1.3B, 4096 tokens: alternately without the preload and with VPAGE_CAP=8G, three times each"
  for i in 1 2 3; do
    timeout 300 python3 bench/run_wan.py --model 1.3B --tokens 4096 --steps 8 --json "$out/wan-nopreload-$i.json" | tail -1
    VPAGE_CAP=8G VPAGE_STATS=$([ $i = 3 ] && echo 1 || echo 0) LD_PRELOAD=$PWD/build-gpu/libvpage.so timeout 300 \
      python3 bench/run_wan.py --model 1.3B --tokens 4096 --steps 8 --json "$out/wan-vpage-$i.json" | tail -2
  done
  python3 - "$out" <<'PY'
import json, statistics, sys
d = sys.argv[1]
a = [json.load(open(f"{d}/wan-nopreload-{i}.json")) for i in (1, 2, 3)]
b = [json.load(open(f"{d}/wan-vpage-{i}.json")) for i in (1, 2, 3)]
sums = {r["checksum"] for r in a + b}
ma = statistics.median(r["median_step_s"] for r in a); mb = statistics.median(r["median_step_s"] for r in b)
print(f"checksums identical across all six runs: {len(sums) == 1} {sorted(sums)}")
print(f"median step without {ma:.4f} s, with vpage {mb:.4f} s, ratio {mb / ma:.3f}")
import datetime
tag = a[0]["gpu"].replace(" ", "-")
json.dump({"without": a, "with_vpage": b, "identical": len(sums) == 1, "ratio": mb / ma},
          open(f"{d}/{datetime.date.today().isoformat()}-{tag}-wan.json", "w"), indent=1)
PY
  rm -f "$out"/wan-nopreload-*.json "$out"/wan-vpage-*.json
} 2>&1 | tee "$out/gpu-check.log"
