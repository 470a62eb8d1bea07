#!/usr/bin/env bash
# Fuzzes vpage's parsers with libFuzzer for a bounded time (default 30 s in
# all, split between them), each starting from its committed corpus: the
# safetensors header (books/safetensors.c), the weight-file books around it
# (books/weights.c: copies matched to a file's bytes, writes, remaps) and
# the page table's file (books/table.c). New inputs go to a temporary
# directory; a crash leaves its input in build/fuzz/ and fails.
#   scripts/fuzz.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
mkdir -p build/fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fuzz() { # name, corpus, seconds, the sources it tests (the parser first)
  local name=$1 corpus=$2 t=$3
  shift 3
  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    "tests/fuzz/fuzz_$name.c" "$@" -o "build/fuzz/fuzz_$name"
  mkdir -p "$work/$name"
  VPAGE_LOG=error "build/fuzz/fuzz_$name" -max_total_time="$t" -max_len=65536 -timeout=10 \
    -artifact_prefix=build/fuzz/ "$work/$name" "$corpus" 2>&1 | tail -n 3
}
fuzz safetensors tests/fuzz/corpus $(( (secs + 2) / 3 )) books/safetensors.c
fuzz weights tests/fuzz/corpus_weights $(( (secs + 1) / 3 )) books/weights.c books/safetensors.c books/pageout.c \
  common/log.c common/options.c common/file.c -lpthread
fuzz table tests/fuzz/corpus_table $(( secs / 3 )) books/table.c books/tablestep.c policy/replay.c policy/plan.c \
  policy/stream.c policy/demand.c
