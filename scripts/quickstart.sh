#!/usr/bin/env bash
# Sets up and runs vpage's main job on a fresh machine.
#   With an NVIDIA GPU and PyTorch: the Wan 2.1 1.3B transformer for five
#   denoising steps under VPAGE_CAP (default 8G), with vpage's stats.
#   Without: says so, and runs the demo on the fake driver from tests/, which
#   shows the interposition, the accounting and the cap at work.
set -euo pipefail
cd "$(dirname "$0")/.."
toolkit=$(scripts/install-deps.sh | tail -n 1)
if [ -d build ]; then meson setup build --reconfigure -Dtoolkit="$toolkit" -Dchecks=false >/dev/null
else meson setup build -Dtoolkit="$toolkit" >/dev/null; fi
ninja -C build >/dev/null
lib=$PWD/build/libvpage.so
if nvidia-smi -L >/dev/null 2>&1 && python3 -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
  cap=${VPAGE_CAP:-8G}
  echo "GPU: $(nvidia-smi --query-gpu=name --format=csv,noheader -i 0). Running Wan 2.1 1.3B under VPAGE_CAP=$cap"
  VPAGE_CAP=$cap VPAGE_STATS=1 LD_PRELOAD=$lib python3 bench/run_wan.py --model 1.3B --tokens 4096 --steps 5
else
  echo "No NVIDIA GPU with PyTorch here: running the demo on the fake driver (tests/fake) instead."
  VPAGE_CAP=${VPAGE_CAP:-1G} VPAGE_STATS=1 LD_PRELOAD=$lib LD_LIBRARY_PATH=$PWD/build/tests build/tests/demo
fi
