#!/usr/bin/env bash
# The page table replayed (VPAGE_TABLE, pager/replay.h): tests/replay_loop
# (twelve 4 MiB weights and an activation, 50 MiB, under a 16 MiB cap;
# a step of 24 launches)
# runs six steps and writes the table. Then one step of it runs twice:
# with no table (online: nothing is known of the loop in its first step,
# so no piece comes in ahead of its first use) and with the table, which it must
# say it replays, follow launch by launch, and so bring weights in ahead
# of use from its first step. Every run counts right. Then a table of
# another shape (the weights 2 MiB larger) is ignored with one line, and
# a table cut short is refused with one line; the program still counts
# right. And a run whose small tensor sits in a weight's tail keeps it
# resident although the table takes that piece for the weight's. And a
# run whose weights' launches each step use a buffer made anew (another
# order of making than the table's) while its other launches run a kernel
# the table never saw still follows the weights by their kernel and
# pieces (replay_kernel), and brings them in ahead; its table is the
# loop's step although the run ends with launches that repeat whole, and
# leaves the buffer made anew out (13 allocations: another one each step,
# not the step's). And
# a table that does not fit the run (its weights' spans taken out: it
# plays for no bytes a step, the run brings in every weight each step) is
# given up after a step, with one line, and the run pages online. And a
# run that visits the weights in another order than the table's (each
# launch found elsewhere in the step, the cursor sent back every four
# weights) gives the table up after a step's launches, moving at most
# 1.75x what online paging does (1.2-1.5x seen, online's bytes varying
# with timing; before, each jump back began a new lap, none was ever
# judged, and the run moved twice what online paging moves). And a run
# that brings its weights in eight times before its loop, by a kernel the
# step never runs (as a model is built on the device), keeps the table:
# its laps begin at the first launch found by identity (before, that work
# counted in the first lap, and the table was given up). And when those
# passes run the step's own kernel on the weights alone, no piece is taken
# for used otherwise than the table says (before, every weight's pieces
# were, from launches taken loosely for the one at a cursor not yet found).
# And with VPAGE_TABLE_WINDOW=timed the window is the one vpage-table
# simulate --best-window finds for the table at that cap (both under the
# cap less the reserve), not the rule's. And a run whose launches on half
# the weights carry a stale word (an address in another weight each step,
# as a struct parameter's unused tail holds) writes a table without it
# (before, the table kept the last step's stale words, and its replay
# brought those weights in ahead for nothing); replayed, no piece is taken
# for used otherwise than the table says from one stale word, and the run
# brings in less than online paging does (before, every weight was ranked
# online after a step, and the replay moved what online paging moves).
# With VPAGE_TABLE_LEAVE_STALE=on such pieces are left on the host for
# their launch instead of brought in first: the run brings in at most 0.8x
# of it; and a small tensor in a weight's tail, which the kernel does read,
# still counts right and is ranked online from its second launch. And a
# lookup at each step's start that the fake's CUPTI times far too short to
# read its 4 MiB table is named thin by vpage-table show; with
# VPAGE_TABLE_LEAVE_THIN=on its pieces are left on the host for it at each
# of its six launches, it still counts right, and less comes in.
. "$(dirname "$0")/check-lib.sh"
prog=$1 tool=$2
export VPAGE_PAGING=stream VPAGE_CAP=16M VPAGE_CHUNK=2M VPAGE_LOG=info VPAGE_TABLE=$dir/run.table
run() { # NAME [VAR=V...]: runs the program, its output in $dir/NAME.out, its stats in $dir/NAME.json,
    local name=$1 # its trace in $dir/NAME.trace
    shift
    env "$@" VPAGE_STATS_FILE="$dir/$name.json" VPAGE_TRACE="$dir/$name.trace" LD_PRELOAD="$pre" "$prog" \
        > "$dir/$name.out" 2>&1 &&
        grep -q "replay_loop: ok" "$dir/$name.out" || { cat "$dir/$name.out"; echo "$name: failed"; exit 1; }
}
first_ahead() { # NAME: pieces whose first coming in was ahead of use (trace lines "in": ... ahead tick class)
    python3 -c 'import sys
seen, n = set(), 0
for f in (l.rstrip("\n").split("\t") for l in open(sys.argv[1])):
    if len(f) > 6 and f[1] == "in" and (f[3], f[4]) not in seen:
        seen.add((f[3], f[4]))
        n += f[6] == "1"
print(n)' "$dir/$1.trace"
}
stat() { # NAME FIELD: the stream pager's counter of device 0
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["paging"]["devices"][0]; print(d[sys.argv[2]])' \
        "$dir/$1.json" "$2"
}
run first
grep -q "written to $dir/run.table" "$dir/first.out" || { cat "$dir/first.out"; echo "no table written"; exit 1; }
run cold REPLAY_LOOP_STEPS=1 VPAGE_TABLE="$dir/none.table"
run second REPLAY_LOOP_STEPS=1
grep -q "page table $dir/run.table: a step of 24 launches on 13 allocations, replayed" "$dir/second.out" ||
    { cat "$dir/second.out"; echo "the table was not replayed"; exit 1; }
matched=$(stat second replay_matched) lost=$(stat second replay_lost)
a1=$(first_ahead cold) a2=$(first_ahead second)
echo "one step: $matched of 24 launches matched, $lost lost; pieces in ahead of their first use: $a1 online," \
    "$a2 replayed; waits $(stat cold waits) online, $(stat second waits) replayed"
[ "$matched" -ge 22 ] || { echo "the replay followed $matched of 24 launches"; exit 1; }
[ "$(stat cold replay_on)" = 0 ] || { echo "a run with no table replayed"; exit 1; }
[ "$a1" = 0 ] || { echo "online, $a1 pieces came in ahead of their first use: the test no longer tells"; exit 1; }
[ "$a2" -ge 8 ] || { echo "replayed, only $a2 pieces came in ahead of their first use"; exit 1; }
cp "$dir/run.table" "$dir/good.table"
# the small tensor in the tail of weight 3 (the table has it in the
# activation's buffer): its launches match loosely, and that piece, used
# by every second launch, must stay resident (ranked online), not leave
# after each use as the table's weight piece would
run tail REPLAY_LOOP_STEPS=2 REPLAY_LOOP_SMALL_IN=3
cp "$dir/good.table" "$dir/run.table"
off=$(stat tail replay_off_pieces)
ins=$(python3 -c 'import sys
lines = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
w3 = [f[3] for f in lines if f[1] == "alloc"][4]
print(sum(1 for f in lines if f[1] == "in" and f[3] == w3 and f[4] == "1"))' "$dir/tail.trace")
echo "small tensor in a weight's tail: $off pieces ranked online; that piece came in $ins times in 48 launches"
[ "$off" -ge 1 ] || { echo "no piece was found used otherwise than the table says"; exit 1; }
[ "$ins" -le 4 ] || { echo "the piece every launch uses came in $ins times"; exit 1; }
run fresh REPLAY_LOOP_FRESH=1 REPLAY_LOOP_TAIL=4 VPAGE_TABLE="$dir/fresh.table"
grep -q "page table: a step of 24 launches on 13 allocations written" "$dir/fresh.out" ||
    { grep "page table" "$dir/fresh.out"; echo "the loop of buffers made anew was not the step"; exit 1; }
run fresh1 REPLAY_LOOP_FRESH=1 REPLAY_LOOP_VARIANT=1 REPLAY_LOOP_STEPS=1 VPAGE_TABLE="$dir/fresh.table"
kernel=$(stat fresh1 replay_kernel) lost=$(stat fresh1 replay_lost) a3=$(first_ahead fresh1)
echo "buffers made anew, another kernel between: $kernel of 24 launches found by kernel, $lost lost;" \
    "pieces in ahead of their first use: $a3"
[ "$kernel" -ge 11 ] || { echo "only $kernel launches were found by their kernel"; exit 1; }
[ "$lost" -le 12 ] || { echo "$lost launches lost"; exit 1; }
[ "$a3" -ge 8 ] || { echo "only $a3 pieces came in ahead of their first use"; exit 1; }
python3 -c 'import re, sys
for l in open(sys.argv[1]):
    print(re.sub(r" (?!0:)\d+:\d+-\d+", "", l) if l.startswith("op ") else l, end="")' "$dir/good.table" > "$dir/run.table"
run tampered REPLAY_LOOP_STEPS=3
grep -q "page table: a step of it brought in .* paging online from now on" "$dir/tampered.out" ||
    { cat "$dir/tampered.out"; echo "a table that does not fit the run was not given up"; exit 1; }
[ "$(stat tampered replay_gave_up)" = 1 ] || { echo "replay_gave_up is not 1"; exit 1; }
cp "$dir/good.table" "$dir/run.table"
run stride-online REPLAY_LOOP_STRIDE=3 VPAGE_TABLE="$dir/stride-online.table"
run stride REPLAY_LOOP_STRIDE=3
on=$(stat stride-online bytes_in) re=$(stat stride bytes_in)
echo "weights out of the table's order: $((re >> 20)) MiB in replayed, $((on >> 20)) MiB online;" \
    "gave up $(stat stride replay_gave_up)"
[ "$(stat stride replay_gave_up)" = 1 ] || { echo "a table that moves twice what it plays for was kept"; exit 1; }
[ $((re * 4)) -le $((on * 7)) ] || { echo "replayed, $re bytes in against $on online"; exit 1; }
cp "$dir/good.table" "$dir/run.table"
run init REPLAY_LOOP_INIT=8 REPLAY_LOOP_STEPS=3
echo "eight passes over the weights before the loop: $(stat init replay_matched) of 72 launches matched," \
    "gave up $(stat init replay_gave_up)"
[ "$(stat init replay_gave_up)" = 0 ] || { grep "page table" "$dir/init.out"; echo "the work before the loop gave the table up"; exit 1; }
[ "$(stat init replay_matched)" -ge 66 ] || { echo "the replay followed $(stat init replay_matched) of 72 launches"; exit 1; }
cp "$dir/good.table" "$dir/run.table"
run init-rw REPLAY_LOOP_INIT=2 REPLAY_LOOP_INIT_RW=1 REPLAY_LOOP_STEPS=3
echo "two passes of the step's kernel over the weights before the loop: $(stat init-rw replay_off_pieces) pieces" \
    "ranked online, $(stat init-rw replay_matched) of 72 launches matched"
[ "$(stat init-rw replay_off_pieces)" -le 2 ] || { echo "the work before the loop marked pieces off"; exit 1; }
[ "$(stat init-rw replay_matched)" -ge 66 ] || { echo "the replay followed $(stat init-rw replay_matched) of 72"; exit 1; }
cp "$dir/good.table" "$dir/run.table"
run timed REPLAY_LOOP_STEPS=3 VPAGE_TABLE_WINDOW=timed VPAGE_STREAM_RESERVE=2M
cp "$dir/good.table" "$dir/run.table"
want=$("$tool" simulate "$dir/good.table" --cap 16M --best-window --reserve 2M --json |
       python3 -c 'import json, sys; print(json.load(sys.stdin)["caps"][0]["timed_window"])')
echo "the window from the step's times: $(stat timed replay_window) bytes (vpage-table: $want), the rule's 12 MiB"
# the budget: the 16 MiB cap less the reserve (VPAGE_STREAM_RESERVE, 2 MiB), as the tool's
grep -q "pinned under a budget of 14 MiB (window [0-9]* MiB, from the step's times)" "$dir/timed.out" ||
    { grep "page table" "$dir/timed.out"; echo "the timed window was not used"; exit 1; }
[ "$(stat timed replay_window_timed)" = 1 ] || { echo "replay_window_timed is not 1"; exit 1; }
[ "$(stat timed replay_window)" = "$want" ] || { echo "the pager's window is not the tool's"; exit 1; }
[ "$want" != $((12 << 20)) ] || { echo "the timed window is the rule's: the test no longer tells"; exit 1; }
run garbage REPLAY_LOOP_GARBAGE=1 VPAGE_TABLE="$dir/garbage.table"
stale=$(python3 -c 'import sys
lines = open(sys.argv[1]).read().splitlines()
k = [l.split()[1] for l in lines if l.startswith("kernel ")].index("rwg")
print(sum(len(l.split()) - 3 for l in lines if l.startswith("op ") and l.split()[1] == str(k)))' "$dir/garbage.table")
cp "$dir/garbage.table" "$dir/garbage.keep"
run garbage-online REPLAY_LOOP_GARBAGE=1 VPAGE_TABLE="$dir/none.table"
run garbage-replay REPLAY_LOOP_GARBAGE=1 VPAGE_TABLE="$dir/garbage.table"
cp "$dir/garbage.keep" "$dir/garbage.table"
run garbage-leave REPLAY_LOOP_GARBAGE=1 VPAGE_TABLE="$dir/garbage.table" VPAGE_TABLE_LEAVE_STALE=on
on=$(stat garbage-online bytes_in) re=$(stat garbage-replay bytes_in) le=$(stat garbage-leave bytes_in)
echo "stale words in half the launches: the table's rwg launches have $stale spans (6 launches, 2 each);" \
     "replayed $((re >> 20)) MiB in, online $((on >> 20)) MiB; $(stat garbage-replay replay_off_pieces) pieces ranked" \
     "online, $(stat garbage-replay replay_off_once) stale uses"
[ "$stale" = 12 ] || { echo "the table kept the stale words ($stale spans)"; exit 1; }
[ "$(stat garbage-replay replay_off_pieces)" = 0 ] || { echo "stale words ranked pieces online"; exit 1; }
[ "$(stat garbage-replay replay_gave_up)" = 0 ] || { echo "the table was given up"; exit 1; }
[ $((re * 10)) -le $((on * 9)) ] || { echo "replayed, $re bytes in against $on online"; exit 1; }
echo "with VPAGE_TABLE_LEAVE_STALE=on: $((le >> 20)) MiB in, $(stat garbage-leave stale_left) pieces left on" \
     "the host for a stale word"
[ "$(stat garbage-leave stale_left)" -ge 1 ] || { echo "no piece was left on the host"; exit 1; }
[ $((le * 5)) -le $((re * 4)) ] || { echo "leaving stale pieces, $le bytes in against $re"; exit 1; }
# a word the table does not have that the kernel does use: left on the
# host the first time, its count still right (replay_loop checks it), and
# ranked online from the second launch on
cp "$dir/good.table" "$dir/run.table"
run tail-leave REPLAY_LOOP_STEPS=2 REPLAY_LOOP_SMALL_IN=3 VPAGE_TABLE_LEAVE_STALE=on
echo "a small tensor in a weight's tail, left on the host: $(stat tail-leave stale_left) pieces left, $(stat tail-leave replay_off_pieces) ranked online"
# (where the pager had brought that piece in before the launch, as under
# valgrind's pace, nothing was left on the host: the counts still hold)
[ "$(stat tail-leave replay_off_pieces)" -ge 1 ] || { echo "leaving stale pieces, the small tensor was not ranked online"; exit 1; }
# a lookup at each step's start (kernel rwl on a 4 MiB table, timed 10 ns
# by the fake's CUPTI against 1 ms for the weights' launches): the tool
# names it thin; replayed with VPAGE_TABLE_LEAVE_THIN=on its pieces are
# left on the host for it, the lookup still counts right, and less comes in
L="REPLAY_LOOP_LOOKUP=1 FAKE_CUPTI_RW_NS=1000000 FAKE_CUPTI_RWL_NS=10"
run lookup-rec $L VPAGE_TABLE="$dir/lookup.table"
"$tool" show "$dir/lookup.table" > "$dir/lookup.show"
grep -q "^thin launches, .*: 1, touching 4.0 MiB that no other launch does" "$dir/lookup.show" ||
    { cat "$dir/lookup.show"; echo "the lookup is not named thin"; exit 1; }
cp "$dir/lookup.table" "$dir/lookup.keep"
run lookup-replay $L VPAGE_TABLE="$dir/lookup.table"
cp "$dir/lookup.keep" "$dir/lookup.table"
run lookup-thin $L VPAGE_TABLE="$dir/lookup.table" VPAGE_TABLE_LEAVE_THIN=on
re=$(stat lookup-replay bytes_in) le=$(stat lookup-thin bytes_in)
echo "a lookup each step: replayed $((re >> 20)) MiB in; with VPAGE_TABLE_LEAVE_THIN=on $((le >> 20)) MiB," \
     "$(stat lookup-thin thin_left) pieces left on the host, $(stat lookup-thin replay_thin_launches) thin launches"
[ "$(stat lookup-replay replay_thin_launches)" = 0 ] || { echo "thin launches without the option"; exit 1; }
[ "$(stat lookup-thin replay_thin_launches)" = 6 ] || { echo "the six lookups were not followed as thin"; exit 1; }
[ "$(stat lookup-thin thin_left)" -ge 1 ] || { echo "no piece of the lookup was left on the host"; exit 1; }
[ "$(stat lookup-thin replay_gave_up)" = 0 ] || { echo "the table was given up"; exit 1; }
[ $((le + (2 << 20))) -le "$re" ] || { echo "leaving the lookup's pieces, $le bytes in against $re"; exit 1; }
cp "$dir/good.table" "$dir/run.table"
run other REPLAY_LOOP_MB=6
grep -q "page table is of another program or shape: allocation 1 is 6291456 bytes" "$dir/other.out" ||
    { cat "$dir/other.out"; echo "a table of another shape was not refused"; exit 1; }
[ "$(stat other replay_on)" = 0 ] || { echo "a table of another shape was replayed"; exit 1; }
head -c 200 "$dir/good.table" > "$dir/run.table"
run cut
grep -q "page table $dir/run.table refused: " "$dir/cut.out" || { cat "$dir/cut.out"; echo "a cut table was not refused"; exit 1; }
echo "replay: ok"
