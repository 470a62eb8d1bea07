#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build vpage, make the peers importable
# (scripts/peer-wheels.sh) and run bench/compare.py for the given workloads,
# adding its rows to today's result file in OUTDIR.
#
#   scripts/bench-compare.sh OUTDIR [wan-14B,llm-8B] [extra bench/compare.py arguments]
set -euo pipefail
out=${1:?usage: scripts/bench-compare.sh OUTDIR [WORKLOADS] [ARGS...]}
workloads=${2:-wan-14B,llm-8B}
shift $(( $# >= 2 ? 2 : 1 ))
cd "$(dirname "$0")/.."
[ -d build-gpu ] || meson setup build-gpu -Dtests=false >/dev/null
ninja -C build-gpu >/dev/null
peer=$(scripts/peer-wheels.sh install "$PWD/build-gpu/peer")
export PYTHONPATH="$peer${PYTHONPATH:+:$PYTHONPATH}"
exec python3 bench/compare.py build-gpu/libvpage.so --out "$out" --workloads "$workloads" --merge "$@"
