#!/usr/bin/env bash
# The front door, `vpage run` (python/vpage/cli.py, through scripts/vpage),
# on the fake driver with tests/demo (issue 18):
# - --help lists its flags and the library's whole table of options;
# - with --cap, paging is on: a program twice the cap runs, "same output:
#   yes", and the exit screen gives the device's peak against the cap and
#   the bytes moved;
# - --mode off: the cap refuses, and the screen says how many;
# - the command's exit status is vpage's, and a command that makes no CUDA
#   allocation is said to;
# - a bad cap: the program is refused (one line that names VPAGE_CAP);
# - no library: a clear message, status 1.
. "$(dirname "$0")/check-lib.sh"
vpage=$1 demo=$2
export VPAGE_LIB=${pre##*:}   # the library itself (an ASan runtime may come first; vpage adds it again)
fail() { echo "$1"; cat "$dir/out"; exit 1; }
has() { grep -qF -- "$1" "$dir/out" || fail "no '$1' in the output of $2"; }
"$vpage" run --help > "$dir/out" 2>&1 || fail "run --help failed"
for w in --cap --mode --table --trace VPAGE_CAP VPAGE_STREAM_FIT VPAGE_HELP; do has "$w" "run --help"; done
"$vpage" run --cap 512M -- "$demo" > "$dir/out" 2>&1 || fail "the demo under --cap 512M failed"
has "same output: yes" "the paging demo"
has "device 0: peak 512.00 MiB counted of the 512.00 MiB cap" "the paging demo"
has "paging (stream):" "the paging demo"
has "moved in 512.00 MiB" "the paging demo"
has "host memory taken:" "the paging demo"
"$vpage" run --cap 512M --mode off -- "$demo" > "$dir/out" 2>&1 || fail "the demo under --mode off failed"
has "refused 1 allocations over the cap" "--mode off"
"$vpage" run -- sh -c 'exit 3' > "$dir/out" 2>&1
[ $? = 3 ] || fail "the command's exit status was not passed on"
has "no CUDA allocation was made" "sh"
"$vpage" run --cap 8X -- "$demo" > "$dir/out" 2>&1 && fail "a bad cap ran"
has "VPAGE_CAP='8X' is not valid" "--cap 8X"
VPAGE_LIB=/nonexistent/libvpage.so "$vpage" run -- true > "$dir/out" 2>&1
[ $? = 1 ] || fail "no library: status not 1"
has "libvpage.so not found" "a missing library"
[ "$("$vpage" lib)" = "$VPAGE_LIB" ] || fail "vpage lib"
echo "cli: ok"
