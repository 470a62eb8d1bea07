#!/usr/bin/env bash
# vpage-table on tests/data/table-loop.txt: the loop a c c b c c of 1 s
# launches over three 0.5 GB pieces (test_plan.c's
# a_prefetch_starts_ops_ahead_and_hides_behind_the_compute). With room for
# two pieces and 1 GB/s each way, a and b take turns and c stays: 1 GB in a
# step, 0.5 GB pinned, and the copies hide behind the 6 s of compute. With
# room for one piece (0.5 GB) c must come and go too: no launch touches
# more, so it plans, and the step is slower. A corrupt file is refused.
set -u
tool=$1 table=$2
out=$("$tool" simulate "$table" --cap 1000000000,600000000 --h2d 1 --d2h 1 --json) || { echo "simulate failed: $out"; exit 1; }
echo "$out"
python3 - "$out" <<'PY' || exit 1
import json, sys
d = json.loads(sys.argv[1])
two, one = d["caps"]
assert abs(d["compute_s"] - 6.0) < 1e-9, d
assert two["status"] == 0 and abs(two["step_s"] - 6.0) < 1e-6, two
assert two["bytes_in"] == 1000000000 and two["pinned"] == 500000000, two
assert one["status"] == 0 and one["step_s"] > 6.0 + 1e-6 and one["bytes_in"] > two["bytes_in"], one
print("ok: two pieces of room hide the copies (%.3f s); one does not (%.3f s)" % (two["step_s"], one["step_s"]))
PY
"$tool" show "$table" | grep -q "6 launches of 1 kernels, 6.000 s of compute" || { echo "show: wrong summary"; exit 1; }
bad=$(mktemp)
head -n 5 "$table" > "$bad"
if "$tool" show "$bad" 2>"$bad.err"; then echo "a cut table was accepted"; exit 1; fi
grep -q "refused: the table is cut short" "$bad.err" || { echo "no reason: $(cat "$bad.err")"; exit 1; }
rm -f "$bad" "$bad.err"
echo "table tool: ok"
