#!/usr/bin/env bash
# The peers of bench/compare.py that may be missing on a GPU machine without
# a package index (diffusers, for its group offloading), as wheels.
#
#   scripts/peer-wheels.sh fetch          on a machine with network: download into .whl/
#   scripts/peer-wheels.sh install DIR    on the GPU machine: install from .whl/ into DIR
#                                         (no index, no dependencies resolved; only what the
#                                         running Python cannot import), then prints DIR for
#                                         PYTHONPATH
# diffusers 0.35.2 is the newest release whose huggingface-hub requirement (>=0.34)
# transformers 4.x and 5.x installs both satisfy.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
fetch)
  mkdir -p .whl
  pip download -q --no-deps -d .whl diffusers==0.35.2 importlib_metadata zipp
  pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
    -d .whl Pillow regex ;;
install)
  dir=${2:?usage: scripts/peer-wheels.sh install DIR}
  mkdir -p "$dir"
  for mod in diffusers:diffusers importlib_metadata:importlib_metadata zipp:zipp PIL:pillow regex:regex; do
    name=${mod%%:*} wheel=${mod##*:}
    if ! PYTHONPATH="$dir" python3 -c "import $name" 2>/dev/null; then
      w=$(ls .whl/"$wheel"-*.whl 2>/dev/null | head -n 1) || true
      if [ -n "$w" ]; then pip install -q --no-index --no-deps --target "$dir" "$w" >&2
      else echo "peer-wheels: $name is missing and .whl/ has no $wheel wheel" >&2; fi
    fi
  done
  echo "$dir" ;;
*) echo "usage: scripts/peer-wheels.sh fetch | install DIR" >&2; exit 2 ;;
esac
