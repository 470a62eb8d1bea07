#!/usr/bin/env bash
# The page table recorded from a run (VPAGE_TABLE): tests/record_loop runs
# ten steps of six launches (kernels ro ro rw ro rw rw) on six 4 MiB buffers
# under stream mode and a 16 MiB cap (pieces of 2 MiB), after a warm-up of
# another pattern and before three launches of its own. The table it leaves
# must be one step: six launches of two kernels on six allocations of two
# pieces each; vpage-table reads it, and its plan under the cap brings in
# less than the whole loop's 24 MiB a step (what evicting the least recently
# used would).
. "$(dirname "$0")/check-lib.sh"
prog=$1 tool=$2
export VPAGE_PAGING=stream VPAGE_CAP=16M VPAGE_CHUNK=2M VPAGE_LOG=info VPAGE_TABLE=$dir/run.table
LD_PRELOAD=$pre "$prog" > "$dir/out" 2>&1 || { cat "$dir/out"; echo "record_loop failed"; exit 1; }
grep -q "page table: a step of 6 launches on 6 allocations written to $dir/run.table" "$dir/out" ||
  { cat "$dir/out"; echo "no table written"; exit 1; }
"$tool" show "$dir/run.table" > "$dir/show" || { cat "$dir/show"; exit 1; }
cat "$dir/show"
grep -q "step: 6 launches of 2 kernels" "$dir/show" || { echo "not the step"; exit 1; }
grep -q "touches: 24.0 MiB in 6 allocations" "$dir/show" || { echo "not the six buffers"; exit 1; }
out=$("$tool" simulate "$dir/run.table" --cap 16M --json) || { echo "simulate: $out"; exit 1; }
echo "$out"
python3 - "$out" <<'PY' || exit 1
import json, sys
c = json.loads(sys.argv[1])["caps"][0]
mib = 1 << 20
assert c["status"] == 0, c
assert 0 < c["bytes_in"] < 24 * mib, "the plan brings in %d bytes a step" % c["bytes_in"]
print("plan: %.1f MiB in a step, %.1f MiB pinned" % (c["bytes_in"] / mib, c["pinned"] / mib))
PY
echo "record: ok"
