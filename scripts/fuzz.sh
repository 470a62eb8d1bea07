#!/usr/bin/env bash
# Fuzzes vpage's parsers with libFuzzer for a bounded time (default 30 s in
# all, split between them), each starting from its committed corpus: the
# safetensors header (books/safetensors.c) and the page table's file
# (books/table.c). New inputs go to a temporary directory; a crash leaves
# its input in build/fuzz/ and fails.
#   scripts/fuzz.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
mkdir -p build/fuzz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fuzz() { # name, source of the parser, corpus, seconds
  clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    "tests/fuzz/fuzz_$1.c" "$2" -o "build/fuzz/fuzz_$1"
  mkdir -p "$work/$1"
  "build/fuzz/fuzz_$1" -max_total_time="$4" -max_len=65536 -timeout=10 \
    -artifact_prefix=build/fuzz/ "$work/$1" "$3" 2>&1 | tail -n 3
}
fuzz safetensors books/safetensors.c tests/fuzz/corpus $(( (secs + 1) / 2 ))
fuzz table books/table.c tests/fuzz/corpus_table $(( secs / 2 ))
