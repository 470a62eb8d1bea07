#!/usr/bin/env bash
# vpage's own files (stats, trace, page table) are never written through a
# symbolic link (issue 20: a predictable path such as /tmp/vpage-%p.json
# could clobber another file when run as root). tests/record_loop runs
# with each of the three pointing at a link to a file of its own: the
# files keep their contents, the program still runs, and each refusal is
# one line that says why.
. "$(dirname "$0")/check-lib.sh"
prog=$1
for f in stats trace table; do
    echo "precious $f" > "$dir/$f.victim"
    ln -s "$dir/$f.victim" "$dir/$f.link"
done
VPAGE_PAGING=stream VPAGE_CAP=16M VPAGE_CHUNK=2M VPAGE_STATS_FILE="$dir/stats.link" \
    VPAGE_TRACE="$dir/trace.link" VPAGE_TABLE="$dir/table.link" LD_PRELOAD=$pre "$prog" > "$dir/out" 2>&1 ||
    { cat "$dir/out"; echo "the program failed"; exit 1; }
cat "$dir/out"
for f in stats trace table; do
    [ "$(cat "$dir/$f.victim")" = "precious $f" ] || { echo "$f: written through the link"; exit 1; }
done
n=$(grep -c "symbolic link, which vpage does not write through" "$dir/out")
[ "$n" = 3 ] || { echo "$n refusals said why, not 3"; exit 1; }
echo "files: ok"
