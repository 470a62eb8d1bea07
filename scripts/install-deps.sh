#!/usr/bin/env bash
# Installs, from Debian's packages, what is missing to build vpage (and, with
# --test, to run its tests), judged by what is usable rather than by package
# names, so a machine that has the tools another way needs no network. Prints
# the CUDA toolkit root (where cuda.h is) on its last line.
#   scripts/install-deps.sh [--test]
set -euo pipefail
want=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || want+=("$2"); }
need_cmd meson meson
need_cmd ninja ninja-build
need_cmd cc gcc
need_cmd pkg-config pkg-config
need_cmd python3 python3
if [ "${1:-}" = "--test" ]; then
  pkg-config --exists criterion 2>/dev/null || want+=(libcriterion-dev)
  need_cmd valgrind valgrind
  need_cmd clang clang
  # libFuzzer's runtime comes with clang's compiler-rt package
  if ! command -v clang >/dev/null 2>&1 || [ ! -f "$(clang -print-file-name=libclang_rt.fuzzer-x86_64.a)" ]; then
    want+=(libclang-rt-dev)
  fi
  [ -f /usr/include/gelf.h ] || want+=(libelf-dev)
  # the aarch64 build and its checks under emulation (scripts/test-aarch64.sh)
  need_cmd aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
  [ -f /usr/aarch64-linux-gnu/include/stdio.h ] || want+=(libc6-dev-arm64-cross)
  need_cmd qemu-aarch64 qemu-user
  need_cmd file file
  # the wheel's check (tests/check_install.sh): a Python with meson-python and pip
  if ! python3 -c 'import mesonpy, pip' 2>/dev/null && ! /usr/bin/python3 -c 'import mesonpy, pip' 2>/dev/null; then
    want+=(python3-mesonpy python3-pip)
  fi
fi
if [ ${#want[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  echo "installing: ${want[*]}" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${want[@]}" >&2
fi
# The CUDA headers (cuda.h): the toolkit, or Debian's nvidia-cuda-dev.
for root in "${CUDA_HOME:-}" /usr/local/cuda /usr; do
  [ -n "$root" ] && [ -f "$root/include/cuda.h" ] && { echo "$root"; exit 0; }
done
echo "no cuda.h found: install the CUDA toolkit (or set CUDA_HOME)" >&2
exit 1
