#!/usr/bin/env bash
# vpage-table on tests/data/table-loop.txt: the loop a c c b c c of 1 s
# launches over three 0.5 GB pieces (test_plan.c's
# a_prefetch_starts_ops_ahead_and_hides_behind_the_compute). With room for
# two pieces and 1 GB/s each way, a and b take turns and c stays: 1 GB in a
# step, 0.5 GB pinned, and the copies hide behind the 6 s of compute. With
# room for one piece (0.5 GB) c must come and go too: no launch touches
# more, so it plans, and the step is slower. Its picture (draw) at room
# for two pieces shows the six launches with no wait, the two copies in,
# and the room held never above the budget's line; at room for one, waits.
# A loop with no steady state under Belady's plan (an activation and 39
# weights of several sizes in turn, room for a third: the state at a
# step's start never repeats within 512 steps, as in the recorded Wan
# tables) is still timed, over the 64 steps played, and drawn (its last
# step). vpage's replay of the table (policy/replay.h) is timed and drawn
# the same way. A corrupt file is refused. A synthetic decode step's
# embedding lookup is named thin, and planned without (--leave-thin) the
# step moves less and is faster.
set -u
tool=$1 table=$2
write_table() { # FILE PIECE SIZES OPS: a table of one kernel, k, whose fingerprint is right (books/table.h:
    # FNV-1a over the allocations' sizes, then the kernels' names); SIZES and OPS are Python lists
    python3 - "$@" <<'PY'
import sys
path, piece, sizes, ops = sys.argv[1], int(sys.argv[2]), eval(sys.argv[3]), eval(sys.argv[4])
h = 0xcbf29ce484222325
for b in sizes:
    for k in range(8):
        h = ((h ^ ((b >> (8 * k)) & 0xff)) * 0x100000001b3) & (2**64 - 1)
for c in b"k\0":
    h = ((h ^ c) * 0x100000001b3) & (2**64 - 1)
lines = ["vpage-table 1", "fingerprint %016x" % h, "piece %d" % piece] + ["alloc %d" % b for b in sizes]
open(path, "w").write("\n".join(lines + ["kernel k"] + ops + ["end"]) + "\n")
PY
}
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
# vpage's replay of the table, timed the same way: its window is the whole
# budget here, so it moves what Belady's plan does and takes its time
assert abs(two["replay_step_s"] - 6.0) < 1e-6 and two["replay_dropped"] == 0, two
assert abs(one["replay_step_s"] - one["step_s"]) < 1e-6, one
print("ok: two pieces of room hide the copies (%.3f s); one does not (%.3f s); the replay's the same" %
      (two["step_s"], one["step_s"]))
PY
# --remap: each GiB brought in holds the bus that many ms longer (the pager's
# remaps); at one piece of room every copy waits, so the step grows
slow=$("$tool" simulate "$table" --cap 600000000 --h2d 1 --d2h 1 --remap 1000 --json) || { echo "--remap failed"; exit 1; }
python3 -c 'import json, sys
a, b = (json.loads(x)["caps"][0] for x in sys.argv[1:3])
assert a["remap_ms_per_gib"] == 0 and b["remap_ms_per_gib"] == 1000, (a, b)
assert b["replay_step_s"] > a["replay_step_s"] + 0.5 and b["step_s"] > a["step_s"] + 0.5, (a, b)
print("ok: --remap 1000: %.3f s a step against %.3f s" % (b["replay_step_s"], a["replay_step_s"]))' \
    "$("$tool" simulate "$table" --cap 600000000 --h2d 1 --d2h 1 --remap 0 --json)" "$slow" || exit 1
"$tool" show "$table" | grep -q "6 launches of 1 kernels, 6.000 s of compute" || { echo "show: wrong summary"; exit 1; }
svg=$(mktemp)
for cap in 1000000000 600000000; do
    "$tool" draw "$table" --cap $cap --h2d 1 --d2h 1 --out "$svg.$cap" || { echo "draw at $cap failed"; exit 1; }
done
python3 - "$svg.1000000000" "$svg.600000000" <<'PY' || exit 1
import sys
import xml.etree.ElementTree as ET
NS = "{http://www.w3.org/2000/svg}"
def read(path):
    root = ET.parse(path).getroot()
    rects = [r.get("fill") for r in root.iter(NS + "rect")]
    line = next(l for l in root.iter(NS + "line") if l.get("stroke-dasharray"))
    ys = [float(p.split(",")[1]) for p in next(root.iter(NS + "polyline")).get("points").split()]
    title = next(root.iter(NS + "text")).text
    return rects, float(line.get("y1")), ys, title
rects, budget_y, ys, title = read(sys.argv[1])
assert rects.count("#4c78a8") == 6, rects            # the launches
assert rects.count("#e45756") == 0, rects            # no wait: the copies hide
assert rects.count("#54a24b") == 2, rects            # a and b come in
assert min(ys) >= budget_y - 1e-6, (min(ys), budget_y)  # the room held: never above the budget (y grows down)
assert min(ys) <= budget_y + 1e-6, (min(ys), budget_y)  # and it fills it
assert "6000.00 ms" in title, title
rects, budget_y, ys, title = read(sys.argv[2])
assert rects.count("#e45756") > 0, rects             # room for one piece: launches wait for their copies
assert min(ys) >= budget_y - 1e-6, (min(ys), budget_y)
print("ok: the picture at room for two pieces has no wait and stays under the budget; at one, waits")
PY
write_table "$svg.rotate" $((4 << 20)) '[(1000 + 37 * ((x * 7) % 40)) * 1024 for x in range(40)]' \
    '["op 0 1000000 0:0-0 %d:0-0" % (1 + i % 39) for i in range(120)]'
cap=$(python3 -c 'print(sum((1000 + 37 * ((x * 7) % 40)) * 1024 for x in range(40)) // 3)')
out=$("$tool" simulate "$svg.rotate" --cap $cap --json) || { echo "simulate of a loop with no steady state failed: $out"; exit 1; }
python3 -c 'import json, sys
c = json.loads(sys.argv[1])["caps"][0]
assert c["status"] == -4 and c["period_steps"] == 0, c          # no steady state
assert c["step_s"] >= c["bound_s"] * 0.999 and c["step_s"] >= 0.12, c  # timed: at least its compute
print("ok: a loop with no steady state timed at %.4f s a step (bound %.4f s)" % (c["step_s"], c["bound_s"]))' "$out" ||
    exit 1
"$tool" draw "$svg.rotate" --cap $cap --out "$svg.rotate.svg" || { echo "draw of a loop with no steady state failed"; exit 1; }
grep -q "the last of the steps played (no steady state)" "$svg.rotate.svg" || { echo "the picture does not say it"; exit 1; }
"$tool" draw "$table" --cap 1000000000 --h2d 1 --d2h 1 --replay --out "$svg.replay" || { echo "draw --replay failed"; exit 1; }
grep -q "vpage's replay, steps played at cap 953.7 MiB.*6000.00 ms a step" "$svg.replay" ||
    { echo "the replay's picture does not say what it draws"; exit 1; }
if "$tool" simulate "$table" --cap 1G --replay 2>/dev/null; then echo "simulate took --replay"; exit 1; fi
# --best-window on twelve pieces of 1 MiB, four used by the first of nine
# 0.1 ms launches, a budget of ten and 1 GB/s: the copies set the pace, so
# the window of the largest launch's 4 MiB (more pinned, less moved) beats
# the fixed rule's twice that
write_table "$svg.abcd" $((1 << 20)) '[1 << 20] * 12' \
    '["op 0 100000 0:0-0 1:0-0 2:0-0 3:0-0"] + ["op 0 100000 %d:0-0" % x for x in range(4, 12)]'
out=$("$tool" simulate "$svg.abcd" --cap 10M --h2d 1 --d2h 1 --best-window --json) ||
    { echo "simulate --best-window failed: $out"; exit 1; }
python3 -c 'import json, sys
c = json.loads(sys.argv[1])["caps"][0]
assert c["replay_window"] == 8 << 20 and c["timed_window"] == 4 << 20, c
assert c["timed_window_step_s"] < c["replay_step_s"] * 0.8, c
print("ok: --best-window: 4 MiB, %.4f s against the rule'"'"'s %.4f s" % (c["timed_window_step_s"],
                                                                           c["replay_step_s"]))' "$out" || exit 1
if "$tool" simulate "$table" --cap 1G --window 1M --best-window 2>/dev/null; then echo "--window with --best-window"; exit 1; fi
# the replay's pins leave the reserve free (as VPAGE_STREAM_RESERVE: here 256M, at most an eighth of
# the budget, in whole pieces): at a 10 MiB cap of 1 MiB pieces 1 MiB, and a piece fewer is pinned than with
# --reserve 0; at 1 GB of 0.5 GB pieces none (an eighth is less than a piece)
with=$("$tool" simulate "$svg.abcd" --cap 10M --h2d 1 --d2h 1 --reserve 256M --json) && none=$("$tool" simulate "$svg.abcd" --cap 10M \
    --h2d 1 --d2h 1 --reserve 0 --json) || { echo "simulate --reserve failed"; exit 1; }
python3 -c 'import json, sys
w, n = (json.loads(a)["caps"][0] for a in sys.argv[1:])
assert w["replay_reserve"] == 1 << 20 and n["replay_reserve"] == 0, (w, n)
assert w["replay_pinned"] + (1 << 20) <= n["replay_pinned"], (w, n)
print("ok: --reserve: %d MiB pinned with the reserve, %d without" % (w["replay_pinned"] >> 20, n["replay_pinned"] >> 20))' \
    "$with" "$none" || exit 1
big=$("$tool" simulate "$table" --cap 1000000000 --h2d 1 --d2h 1 --reserve 256M --json) || { echo "simulate failed"; exit 1; }
python3 -c 'import json, sys; c = json.loads(sys.argv[1])["caps"][0]; assert c["replay_reserve"] == 0, c' "$big" ||
    { echo "a reserve of less than a piece was kept"; exit 1; }
rm -f "$svg" "$svg".*
if "$tool" draw "$table" 2>/dev/null; then echo "draw without --cap was accepted"; exit 1; fi
if "$tool" show "$table" --out x.svg 2>/dev/null; then echo "show took --out"; exit 1; fi
bad=$(mktemp)
head -n 5 "$table" > "$bad"
if "$tool" show "$bad" 2>"$bad.err"; then echo "a cut table was accepted"; exit 1; fi
grep -q "refused: the table is cut short" "$bad.err" || { echo "no reason: $(cat "$bad.err")"; exit 1; }
rm -f "$bad" "$bad.err"
# a synthetic Llama-3-8B decode step (bench/decode_table.py): show names its
# embedding's lookup (5 us on a table of 1002 MiB) thin, and --leave-thin
# plans without it: less in a token, and a shorter token, for the replay
# with the window sized from the times and for Belady's plan alike
decode=$(mktemp)
python3 "$(dirname "$0")/../bench/decode_table.py" "$decode" || { echo "decode_table.py failed"; exit 1; }
"$tool" show "$decode" | grep -q "^thin launches, .*: 1, touching 1002.0 MiB that no other launch does" ||
    { "$tool" show "$decode"; echo "the decode's lookup is not thin"; exit 1; }
if "$tool" show "$decode" --leave-thin 2>/dev/null; then echo "show took --leave-thin"; exit 1; fi
keep=$("$tool" simulate "$decode" --cap 8G --best-window --json) &&
    thin=$("$tool" simulate "$decode" --cap 8G --best-window --leave-thin --json) ||
    { echo "simulate of the decode failed"; exit 1; }
python3 -c 'import json, sys
k, t = (json.loads(a)["caps"][0] for a in sys.argv[1:])
assert t["replay_in"] + (900 << 20) <= k["replay_in"], (k, t)
assert t["bytes_in"] + (900 << 20) <= k["bytes_in"], (k, t)
assert t["timed_window_step_s"] < 0.95 * k["timed_window_step_s"], (k, t)
print("ok: the decode at 8 GiB, its lookup left on the host: %.3f s a token against %.3f s, %d MiB in against %d" %
      (t["timed_window_step_s"], k["timed_window_step_s"], t["replay_in"] >> 20, k["replay_in"] >> 20))' "$keep" "$thin" ||
    exit 1
rm -f "$decode"
echo "table tool: ok"
