#!/usr/bin/env bash
# Fuzzes the safetensors header parser with libFuzzer for a bounded time
# (default 30 s), starting from the committed corpus. New inputs go to a
# temporary directory; a crash leaves its input in build/fuzz/ and fails.
#   scripts/fuzz.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
mkdir -p build/fuzz
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  tests/fuzz/fuzz_safetensors.c books/safetensors.c -o build/fuzz/fuzz_safetensors
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build/fuzz/fuzz_safetensors -max_total_time="$secs" -max_len=65536 -timeout=10 \
  -artifact_prefix=build/fuzz/ "$work" tests/fuzz/corpus 2>&1 | tail -n 3
