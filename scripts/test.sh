#!/usr/bin/env bash
# The test command. Builds vpage and runs:
#   - the CPU suite (Criterion, against the fake libcuda.so.1 in tests/),
#     plain, under valgrind, and built with ASan+UBSan, each with the
#     stream pager's books checked after every round (-Dchecks=true);
#   - the structure of the library (scripts/check-structure.py);
#   - the GPU suite (PyTorch on a real GPU), which reports itself skipped
#     where there is no NVIDIA GPU or no PyTorch;
#   - 30 seconds of libFuzzer on the safetensors header parser;
#   - the library built for aarch64 and its fake-driver checks run under
#     qemu-user (scripts/test-aarch64.sh).
# Ends with one line 'vpage: N passed, N failed, N skipped' (Criterion cases,
# GPU checks and single tests counted together).
set -uo pipefail
cd "$(dirname "$0")/.."
toolkit=$(scripts/install-deps.sh --test | tail -n 1) || exit 1
status=0
setup() { # dir, extra options
  local dir=$1; shift
  if [ -d "$dir" ]; then meson setup "$dir" --reconfigure -Dtoolkit="$toolkit" "$@" >/dev/null
  else meson setup "$dir" -Dtoolkit="$toolkit" "$@" >/dev/null; fi && ninja -C "$dir" >/dev/null
}
run() { # name, dir, meson test arguments
  local name=$1 dir=$2; shift 2
  echo "== $name"
  meson test -C "$dir" --print-errorlogs "$@" || status=1
  # meson names the log after the test setup (testlog-valgrind.json): take the newest
  cp "$(ls -t "$dir"/meson-logs/testlog*.json | head -n 1)" "build/testlog-$name.json" 2>/dev/null
}
setup build -Dchecks=true || exit 1
run plain build
run valgrind build --suite cpu --setup valgrind
setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dchecks=true || exit 1
run asan build-asan --suite cpu --suite docs --suite cli --suite hooks
echo "== fuzz"
if scripts/fuzz.sh 30; then r=OK; else r=FAIL; status=1; fi
echo "{\"name\": \"fuzz safetensors header\", \"result\": \"$r\"}" > build/testlog-fuzz.json
echo "== aarch64"
scripts/test-aarch64.sh build-aarch64 "$toolkit" | tee build/aarch64.out || status=1
python3 - build/aarch64.out > build/testlog-aarch64.json <<'PY'
import json, sys
print(json.dumps({"name": "aarch64", "result": "OK", "stdout": open(sys.argv[1]).read()}))
PY
python3 - build/testlog-*.json <<'PY'
import json, re, sys
passed = failed = skipped = 0
for path in sys.argv[1:]:
    for line in open(path):
        t = json.loads(line)
        out = t.get("stdout") or ""
        oks = len(re.findall(r"^ok ", out, re.M)); bad = len(re.findall(r"^not ok ", out, re.M))
        gpu = re.search(r"^(\d+) passed, (\d+) failed$", out, re.M)
        if t["result"] == "SKIP":
            skipped += 1
        elif oks or bad:            # a TAP suite: count its cases
            passed += oks; failed += bad
        elif gpu:                   # the GPU suite: count its checks
            passed += int(gpu.group(1)); failed += int(gpu.group(2))
        elif t["result"] == "OK":
            passed += 1
        else:
            failed += 1
print(f"vpage: {passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
