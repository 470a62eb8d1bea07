#!/usr/bin/env bash
# Installs what building and testing vpage needs, from Debian's packages, and
# says where the CUDA headers are. Prints the toolkit root on its last line.
set -euo pipefail
pkgs=(meson ninja-build pkg-config gcc libcriterion-dev libelf-dev valgrind python3 clang libclang-rt-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
fi
# The CUDA headers (cuda.h): the toolkit, or Debian's nvidia-cuda-dev.
for root in "${CUDA_HOME:-}" /usr/local/cuda /usr; do
  [ -n "$root" ] && [ -f "$root/include/cuda.h" ] && { echo "$root"; exit 0; }
done
echo "no cuda.h found: install the CUDA toolkit (or set CUDA_HOME)" >&2
exit 1
