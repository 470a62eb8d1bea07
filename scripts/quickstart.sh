#!/usr/bin/env bash
# Sets up and runs vpage's main job on a fresh machine: a model larger than
# the cap, run once without vpage and once under `vpage run`, with the same
# output.
#   With an NVIDIA GPU and PyTorch: the Wan 2.1 14B transformer (28.6 GB)
#   under an 8 GiB cap where the card has 40 GiB free and the host 64 GiB
#   (the uncapped run must fit), else the 1.3B (2.8 GB) under 2 GiB; five
#   denoising steps each, random weights with a fixed seed.
#   Without: the demo on the fake driver from tests/, a program twice the
#   cap run through the pager.
# QUICKSTART_MODEL=1.3B|14B and QUICKSTART_CAP=SIZE choose for you.
set -euo pipefail
cd "$(dirname "$0")/.."
toolkit=$(scripts/install-deps.sh | tail -n 1)
if [ -d build ]; then meson setup build --reconfigure -Dtoolkit="$toolkit" -Dchecks=false > build-setup.log 2>&1 ||
    { cat build-setup.log; exit 1; }
else meson setup build -Dtoolkit="$toolkit" > build-setup.log 2>&1 || { cat build-setup.log; exit 1; }; fi
rm -f build-setup.log
ninja -C build > build.log 2>&1 || { cat build.log; exit 1; }
rm -f build.log
if ! nvidia-smi -L >/dev/null 2>&1 || ! python3 -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
  echo "No NVIDIA GPU with PyTorch here: the demo on the fake driver (tests/fake), a program twice a 512 MiB cap."
  LD_LIBRARY_PATH=$PWD/build/tests scripts/vpage run --cap 512M -- build/tests/demo 2>&1 | grep -v ' -> '
  exit 0
fi
free_gib=$(nvidia-smi --query-gpu=memory.free --format=csv,noheader,nounits -i 0 | awk '{print int($1/1024)}')
host_gib=$(awk '/MemAvailable/ {print int($2/1048576)}' /proc/meminfo)
model=${QUICKSTART_MODEL:-}
if [ -z "$model" ]; then
  if [ "$free_gib" -ge 40 ] && [ "$host_gib" -ge 64 ]; then model=14B; else model=1.3B; fi
fi
case $model in 14B) cap=${QUICKSTART_CAP:-8G} ;; *) cap=${QUICKSTART_CAP:-2G} ;; esac
echo "GPU: $(nvidia-smi --query-gpu=name --format=csv,noheader -i 0) ($free_gib GiB free). Wan 2.1 $model, 5 steps:"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "== without vpage (the whole model on the GPU)"
python3 bench/run_wan.py --model "$model" --steps 5 --json "$out/plain.json"
echo "== under vpage run --cap $cap"
scripts/vpage run --cap "$cap" -- python3 bench/run_wan.py --model "$model" --steps 5 --json "$out/vpage.json"
python3 - "$out/plain.json" "$out/vpage.json" "$cap" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
steps = lambda r: ", ".join(f"{s:.2f}" for s in r["step_s"])
print(f"steps without vpage (s): {steps(a)}")
print(f"steps under a {sys.argv[3]} cap (s): {steps(b)}")
print(f"median step: {b['median_step_s'] / a['median_step_s']:.2f}x the uncapped run's")
print("same output: " + ("yes" if a["checksum"] == b["checksum"] else f"NO ({a['checksum']} vs {b['checksum']})"))
PY
