#!/usr/bin/env bash
# Two ranks of a distributed program, as torchrun starts them (issue 21):
# two processes at once, each inheriting the preload and VPAGE_CAP=0:..,1:..,
# each on the device its LOCAL_RANK names (tests/demo, a program twice its
# device's cap in stream mode). Each keeps its own books: it pages to the
# same output under its own device's cap and counts nothing on the other.
. "$(dirname "$0")/check-lib.sh"
demo=$1
export VPAGE_PAGING=stream VPAGE_CAP=0:512M,1:256M VPAGE_CHUNK=16M
for r in 0 1; do
    env LOCAL_RANK=$r VPAGE_STATS_FILE="$dir/rank$r.json" LD_PRELOAD="$pre" "$demo" > "$dir/rank$r.out" 2>&1 &
done
wait
for r in 0 1; do
    grep -q "same output: yes" "$dir/rank$r.out" || { cat "$dir/rank$r.out"; echo "rank $r: not the same output"; exit 1; }
    python3 - "$dir/rank$r.json" "$r" <<'PY' || exit 1
import json, sys
doc, r = json.load(open(sys.argv[1])), int(sys.argv[2])
caps = {0: 512 << 20, 1: 256 << 20}
devs = {d["device"]: d for d in doc["devices"]}
mine = devs.get(r)
if not mine or mine["cap"] != caps[r] or not 0 < mine["total"]["peak"] <= caps[r]:
    sys.exit(f"rank {r}: device {r} {mine and mine['total']} against its cap {caps[r]}")
other = devs.get(1 - r)
if other and other["total"]["peak"]:
    sys.exit(f"rank {r} counted {other['total']['peak']} bytes on device {1 - r}")
print(f"rank {r}: device {r} peak {mine['total']['peak'] >> 20} MiB of its {caps[r] >> 20} MiB cap; same output")
PY
done
echo "ranks: ok"
