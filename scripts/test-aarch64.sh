#!/usr/bin/env bash
# vpage built for aarch64 (Grace Hopper's CPU) with Debian's cross compiler
# (scripts/cross/aarch64-linux-gnu.ini) and its fake-driver checks run under
# qemu-user: the hooks, dlsym found without the x86-64 assembly path, the
# fail-closed cases, the replayed table, the recorder with CUPTI, vpage's
# files, the paging demo and the signal-handler hooks. Criterion is not
# cross-installed, so the Criterion suites run on x86-64 only. A check
# script runs the aarch64 program through a wrapper that starts qemu (the
# x86-64 shell and qemu each say once that they cannot preload the aarch64
# library: expected). Ends with "aarch64: N passed, N failed".
#   scripts/test-aarch64.sh [BUILD-DIR] [TOOLKIT]
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-aarch64} toolkit=${2:-/usr/local/cuda}
sysroot=/usr/aarch64-linux-gnu
if [ -d "$build" ]; then meson setup "$build" --reconfigure -Dtoolkit="$toolkit" >/dev/null
else meson setup "$build" --cross-file scripts/cross/aarch64-linux-gnu.ini -Dtoolkit="$toolkit" >/dev/null; fi &&
    ninja -C "$build" >/dev/null || { echo "aarch64: the cross build failed"; exit 1; }
b=$(cd "$build" && pwd)
file -L "$b/libvpage.so" | grep -q aarch64 || { echo "aarch64: $b/libvpage.so is not an aarch64 library"; exit 1; }
wrap=$(mktemp -d)
trap 'rm -rf "$wrap"' EXIT
for p in demo replay_loop record_loop foreign_driver signal_open; do
    printf '#!/bin/sh\nexec qemu-aarch64 -L %s %s "$@"\n' "$sysroot" "$b/tests/$p" > "$wrap/$p"
done
printf '#!/bin/sh\nexec qemu-aarch64 -L %s %s "$@"\n' "$sysroot" "$b/vpage-table" > "$wrap/vpage-table"
chmod +x "$wrap"/*
passed=0 failed=0
check() { # NAME COMMAND...: runs it with the aarch64 preload and fake driver
    local name=$1
    shift
    if timeout 300 env LD_PRELOAD="$b/libvpage.so" LD_LIBRARY_PATH="$b/tests" VPAGE_CAP=none VPAGE_LOG=warn "$@" \
        > "$wrap/$name.out" 2>&1; then
        passed=$((passed + 1)); echo "ok $name"
    else
        failed=$((failed + 1)); echo "not ok $name"; grep -v "cannot be preloaded" "$wrap/$name.out" | tail -20
    fi
}
check demo sh -c "VPAGE_CAP=512M VPAGE_PAGING=stream $wrap/demo | grep -q 'same output: yes'"
# a signal every 200 us: under the emulator a handler takes longer than
# the 20 us of the native test
check signal-open "$wrap/signal_open" 3000 200
check fail-closed tests/check_fail_closed.sh "$wrap/foreign_driver"
check replay tests/check_replay.sh "$wrap/replay_loop" "$wrap/vpage-table"
check record tests/check_record.sh "$wrap/record_loop" "$wrap/vpage-table"
check files tests/check_files.sh "$wrap/record_loop"
echo "aarch64: $passed passed, $failed failed"
[ "$failed" = 0 ]
