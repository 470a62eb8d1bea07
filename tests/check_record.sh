#!/usr/bin/env bash
# The page table recorded from a run (VPAGE_TABLE): tests/record_loop runs
# ten steps of six launches (kernels ro ro rw ro rw rw) on six 4 MiB buffers
# under stream mode and a 16 MiB cap (pieces of 2 MiB), after a warm-up of
# another pattern and before three launches of its own. The table it leaves
# must be one step: six launches of two kernels on six allocations of two
# pieces each; vpage-table reads it, and its plan under the cap brings in
# less than the whole loop's 24 MiB a step (what evicting the least recently
# used would). Kernel times come from CUPTI (the fake libcupti.so.13 beside
# the fake driver: every kernel lasts FAKE_CUPTI_KERNEL_NS): each launch of
# the table carries its kernel's time and the plan's step takes the six;
# with VPAGE_CUPTI=off, or when CUPTI refuses (another tool holds it), the
# table is written with times 0, and VPAGE_CUPTI=on says why. Launches made
# through the CUDA runtime (FAKE_CUPTI_RUNTIME=1: no external-correlation
# records, the runtime's launch records instead, as on an H100 under
# PyTorch) are timed too, and so are launches of which CUPTI gives the
# kernel records alone (FAKE_CUPTI_NAMES_ONLY=1: joined by kernel name),
# their names longer than vpage keeps among them (RECORD_LONG_NAMES=1).
. "$(dirname "$0")/check-lib.sh"
prog=$1 tool=$2
export VPAGE_PAGING=stream VPAGE_CAP=16M VPAGE_CHUNK=2M VPAGE_LOG=info VPAGE_TABLE=$dir/run.table
FAKE_CUPTI_KERNEL_NS=4321 LD_PRELOAD=$pre "$prog" > "$dir/out" 2>&1 || { cat "$dir/out"; echo "record_loop failed"; exit 1; }
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
assert abs(c["compute_s"] - 6 * 4321e-9) < 1e-6, "the step's compute is %g s, not six kernels of 4321 ns" % c["compute_s"]
print("plan: %.1f MiB in a step, %.1f MiB pinned" % (c["bytes_in"] / mib, c["pinned"] / mib))
PY
times() { grep '^op ' "$dir/run.table" | awk '{print $3}' | sort -u | tr '\n' ' '; }
[ "$(times)" = "4321 " ] || { grep '^op ' "$dir/run.table"; echo "the launches do not carry CUPTI's times"; exit 1; }
FAKE_CUPTI_RUNTIME=1 FAKE_CUPTI_KERNEL_NS=4321 LD_PRELOAD=$pre "$prog" > "$dir/out" 2>&1 || { cat "$dir/out"; exit 1; }
[ "$(times)" = "4321 " ] || { grep '^op ' "$dir/run.table"; echo "launches through the runtime are not timed"; exit 1; }
# neither correlation nor runtime records (as under PyTorch on an H100 with
# CUDA 13): each kernel's record joins the oldest launch of its name not
# joined yet; ro and rw kernels of different times keep their own
FAKE_CUPTI_NAMES_ONLY=1 FAKE_CUPTI_KERNEL_NS=4321 FAKE_CUPTI_RW_NS=5000 LD_PRELOAD=$pre "$prog" > "$dir/out" 2>&1 ||
    { cat "$dir/out"; exit 1; }
by_kernel=$(python3 -c 'import sys
names, pairs = [], set()
for f in (l.split() for l in open(sys.argv[1])):
    if f and f[0] == "kernel": names.append(f[1])
    if f and f[0] == "op": pairs.add((names[int(f[1])], f[2]))
print(" ".join("%s=%s" % p for p in sorted(pairs)))' "$dir/run.table")
echo "kernel records alone, joined by name: $by_kernel"
[ "$by_kernel" = "ro=4321 rw=5000" ] || { grep "CUPTI" "$dir/out"; echo "not joined by their kernel's name"; exit 1; }
# names longer than vpage keeps (C++ templates' under PyTorch): the records'
# full names join the launches' cut ones
RECORD_LONG_NAMES=1 FAKE_CUPTI_NAMES_ONLY=1 FAKE_CUPTI_KERNEL_NS=4321 FAKE_CUPTI_RW_NS=5000 LD_PRELOAD=$pre "$prog" \
    > "$dir/out" 2>&1 || { cat "$dir/out"; exit 1; }
[ "$(times)" = "4321 5000 " ] || { grep "CUPTI" "$dir/out"; echo "long-named kernels not joined by name: $(times)"; exit 1; }
for case in "VPAGE_CUPTI=off" "VPAGE_CUPTI=on FAKE_CUPTI_BUSY=1"; do
    env $case FAKE_CUPTI_KERNEL_NS=4321 LD_PRELOAD=$pre "$prog" > "$dir/out" 2>&1 || { cat "$dir/out"; exit 1; }
    [ "$(times)" = "0 " ] || { grep '^op ' "$dir/run.table"; echo "$case: times where none were given"; exit 1; }
done
grep -q "CUPTI: registering activity buffers failed" "$dir/out" || { cat "$dir/out"; echo "CUPTI refused, not said"; exit 1; }
# CUPTI where the loader does not look, beside the CUDA runtime the program
# loaded (as PyTorch's wheels keep it): the driver alone on the path, the
# stand-in libcudart.so.13 of tests/ preloaded from the folder that has libcupti
cupti=$(for d in ${LD_LIBRARY_PATH//:/ }; do [ -e "$d/libcupti.so.13" ] && echo "$d/libcupti.so.13" && break; done)
fakecuda=$(for d in ${LD_LIBRARY_PATH//:/ }; do [ -e "$d/libcuda.so.1" ] && echo "$d/libcuda.so.1" && break; done)
mkdir "$dir/drv" "$dir/rt"
cp "$fakecuda" "$dir/drv/"
cp "$cupti" "$dir/rt/libcupti.so.13"
cp "$(dirname "$cupti")/libcudart.so.13" "$dir/rt/"
LD_LIBRARY_PATH=$dir/drv FAKE_CUPTI_KERNEL_NS=4321 LD_PRELOAD="$pre:$dir/rt/libcudart.so.13" "$prog" > "$dir/out" 2>&1 ||
    { cat "$dir/out"; exit 1; }
[ "$(times)" = "4321 " ] || { cat "$dir/out"; echo "CUPTI beside the runtime not found"; exit 1; }
echo "record: ok"
