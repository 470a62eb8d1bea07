#!/usr/bin/env bash
# A cap never silently stops applying (issue 18). tests/foreign_driver
# finds the driver by dlopen and dlsym and allocates 3 x 2 GiB:
# - under VPAGE_CAP=1G it is refused its third allocation (the cap holds);
# - with the driver vpage must load missing (VPAGE_LIBCUDA wrong) and a
#   cap set, its cuInit fails, with one line even at VPAGE_LOG=error;
#   without a cap it runs (vpage stays out of the way);
# - when it reaches another copy of the driver than the one vpage wraps
#   (the same library under another path), with a cap set, cuInit fails
#   and the line names both copies; without a cap it runs.
. "$(dirname "$0")/check-lib.sh"
prog=$1
fake=$(for d in ${LD_LIBRARY_PATH//:/ }; do [ -e "$d/libcuda.so.1" ] && echo "$d/libcuda.so.1" && break; done)
[ -n "$fake" ] || { echo "no fake libcuda.so.1 on LD_LIBRARY_PATH"; exit 1; }
cp "$fake" "$dir/libcuda-copy.so.1"
run() { # EXPECTED-STATUS NAME [VAR=V...] -- ARGS: runs the program, its output in $dir/NAME
    local want=$1 name=$2
    shift 2
    local vars=()
    while [ "$1" != -- ]; do vars+=("$1"); shift; done
    shift
    env "${vars[@]}" LD_PRELOAD="$pre" "$prog" "$@" > "$dir/$name" 2>&1
    local got=$?
    cat "$dir/$name"
    [ "$got" = "$want" ] || { echo "$name: exit status $got, not $want"; exit 1; }
}
run 2 capped VPAGE_CAP=1G -- libcuda.so.1
run 3 no-driver VPAGE_CAP=1G VPAGE_LOG=error VPAGE_LIBCUDA=/nonexistent/libcuda.so.1 -- libcuda.so.1
grep -q "refusing to run: the driver /nonexistent/libcuda.so.1 (VPAGE_LIBCUDA) could not be loaded" "$dir/no-driver" ||
    { echo "no-driver: no line that says why"; exit 1; }
run 0 no-driver-no-cap VPAGE_LIBCUDA=/nonexistent/libcuda.so.1 VPAGE_LOG=error -- libcuda.so.1
run 3 foreign VPAGE_CAP=1G VPAGE_LOG=error -- "$dir/libcuda-copy.so.1"
grep -q "refusing to run: the program found cuInit in $dir/libcuda-copy.so.1, another copy of the driver" "$dir/foreign" ||
    { echo "foreign: no line that says why"; exit 1; }
run 0 foreign-no-cap VPAGE_LOG=error -- "$dir/libcuda-copy.so.1"
echo "fail closed: ok"
