#!/usr/bin/env python3
"""scripts/vpage-trace on a hand-made trace whose answers are worked out
here (the format: common/trace.h). The library's side, that a trace has a
line for every move, operation and allocation, is tests/test_stream.c.
Standard library only; prints TAP.

    python3 tests/test_trace_tool.py
"""
import gzip
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from tap import main, test  # noqa: E402
TOOL = os.path.join(ROOT, "scripts", "vpage-trace")
MiB = 1 << 20

# two allocations; a kernel that waited 3 ms, a copy, a graph replay, a
# kernel whose parameters could not be read (it fences everything); pieces
# in (one ahead of use) and out (one copied back); a pin; a round; the
# pager idle three times (nothing to move; a move fenced; fenced and short
# of room); a bare piece mapped for an operation; and a last line cut
# short, as a killed process leaves it
TRACE = "\n".join([
    "0\talloc\t0\t0x7f0000000000\t8388608\t4\t2097152",
    "5\talloc\t0\t0x7f0000800000\t2097152\t1\t2097152",
    "10\top\t0\t0\tcopy\t0\t0x7f0000000000",
    "200\top\t0\t1\tgemm_kernel\t3000\t0x7f0000000000\t0x7f0000800000",
    "300\tin\t0\t0x7f0000000000\t0\t2097152\t0",
    "400\tin\t0\t0x7f0000000000\t1\t2097152\t1",
    "500\tpin\t0\t0x7f0000000000\t0\t2097152",
    "600\tround\t0\t2\t150\t250",
    "700\tidle\t0\t50000",
    "800\tidle\t1\t500",
    "900\tidle\t3\t300",
    "1500000\top\t0\t2\tgemm_kernel\t1000\t0x7f0000000000",
    "1600000\tout\t0\t0x7f0000000000\t1\t2097152\t1",
    "1700000\tout\t0\t0x7f0000800000\t0\t2097152\t0",
    "1750000\tmap\t0\t0x7f0000000000\t2\t2097152\t800",
    "1800000\top\t0\t0\tgraph\t0\tall",
    "1850000\top\t0\t0\tmystery_kernel\t0\tall",
    "1900000\tfree\t0\t0x7f0000800000",
    "19000",
]) + "\n"


def run(*args, gz=False, trace=TRACE):
    with tempfile.NamedTemporaryFile("wb", suffix=".trace.gz" if gz else ".trace", delete=False) as fh:
        fh.write(gzip.compress(trace.encode()) if gz else trace.encode())
    try:
        p = subprocess.run([sys.executable, TOOL, fh.name, *args], capture_output=True, text=True)
    finally:
        os.unlink(fh.name)
    assert p.returncode == 0, p.stderr
    return p.stdout


@test
def the_summary_counts_every_kind_of_event():
    s = json.loads(run("--json"))
    assert s["events"] == 18 and s["bad_lines"] == 1, (s["events"], s["bad_lines"])
    assert s["allocations"] == 2
    assert s["operations"] == {"copy": 1, "kernel": 2, "all": 2}, s["operations"]
    m = s["moves"]
    assert (m["in"], m["in_bytes"], m["in_ahead_bytes"]) == (2, 4 * MiB, 2 * MiB), m
    assert (m["out"], m["out_bytes"], m["out_written_bytes"]) == (2, 4 * MiB, 2 * MiB), m
    assert m["pins"] == 1 and s["rounds"] == {"rounds": 1, "moves": 2, "copy_us": 150, "remap_us": 250}
    assert (m["maps"], m["map_bytes"], m["map_us"]) == (1, 2 * MiB, 800), m
    assert s["idle"] == {"nothing_us": 50000, "fenced_us": 800, "no_room_us": 300, "times": 3}, s["idle"]
    assert abs(s["span_s"] - 1.9) < 1e-9


@test
def waits_are_summed_by_what_waited():
    s = json.loads(run("--json"))
    assert s["waited_most"] == [{"what": "gemm_kernel", "operations": 2, "waited_s": 0.004}], s["waited_most"]


@test
def allocations_are_ranked_by_bytes_moved():
    s = json.loads(run("--json"))
    first, second = s["moved_most"]
    assert first["base"] == "0x7f0000000000" and (first["in"], first["out"]) == (4 * MiB, 2 * MiB), first
    assert first["pinned"] == 2 * MiB and first["ops"] == 3 and first["bytes"] == 8 * MiB
    assert second["base"] == "0x7f0000800000" and second["out"] == 2 * MiB


@test
def each_kernel_is_listed_with_the_allocations_it_touched():
    s = json.loads(run("--json"))
    assert s["kernels"] == [{"name": "gemm_kernel", "launches": 2, "allocations": 2, "bytes": 10 * MiB,
                             "touched_all": 0},
                            {"name": "mystery_kernel", "launches": 1, "allocations": 0, "bytes": 0,
                             "touched_all": 1}], s["kernels"]
    assert "gemm_kernel" in run() and "2 allocs" in run()


@test
def the_timeline_bins_moves_and_waits_by_time():
    s = json.loads(run("--json", "--bins", "1"))
    bins = {b["t_s"]: b for b in s["timeline"]["bins"]}
    assert bins[0.0]["in"] == 4 * MiB and bins[0.0]["wait_s"] == 0.003, bins[0.0]
    assert bins[0.0]["remap_s"] == 0.00025, bins[0.0]
    assert bins[1.0]["out"] == 4 * MiB and bins[1.0]["wait_s"] == 0.001, bins[1.0]


@test
def the_text_report_names_what_it_counted():
    out = run()
    for want in ("18 events (1 lines that did not parse)", "mapped for operations (pieces left unmapped): 2.0 MiB",
                 "pager idle with no round in flight 3 times: a move held up by operations on its allocation 0.001 s, "
                 "by room 0.000 s, nothing to move 0.050 s",
                 "remap  0.000 s", "in:  4.0 MiB in 2 pieces (2.0 MiB ahead of any use)",
                 "out: 4.0 MiB in 2 pieces (2.0 MiB copied back)", "gemm_kernel", "0x7f0000000000"):
        assert want in out, f"{want!r} not in:\n{out}"


# a loop of two steps, each starting with a launch of step_kernel (on another
# allocation); a piece in before the loop; in step 0 a piece comes in ahead,
# is used and leaves copied back, then comes in ahead again; in step 1 a
# copy touches it (not a use) and it leaves before any use, then a kernel uses it
LOOP = "\n".join([
    "0\talloc\t0\t0xa00000\t4194304\t2\t2097152",
    "10\talloc\t0\t0xe00000\t2097152\t1\t2097152",
    "50\tin\t0\t0xa00000\t0\t2097152\t0",
    "100\top\t0\t1\tstep_kernel\t0\t0xe00000",
    "200\tin\t0\t0xa00000\t1\t2097152\t1",
    "300\top\t0\t2\tgemm\t500\t0xa00000",
    "400\tout\t0\t0xa00000\t1\t2097152\t1",
    "500\tin\t0\t0xa00000\t1\t2097152\t1",
    "1100\top\t0\t3\tstep_kernel\t0\t0xe00000",
    "1150\top\t0\t0\tcopy\t0\t0xa00000",
    "1200\tout\t0\t0xa00000\t1\t2097152\t0",
    "1600\top\t0\t4\tgemm\t0\t0xa00000",
]) + "\n"


@test
def steps_split_the_trace_at_each_launch_of_the_marker_kernel():
    s = json.loads(run("--json", "--steps", "step_k", trace=LOOP))
    before, s0, s1 = s["steps"]
    assert before["step"] == "before" and before["in"] == 2 * MiB and before["ops"] == 0, before
    assert abs(before["length_s"] - 100e-6) < 1e-12, before
    assert (s0["step"], s0["ops"], s0["in"], s0["in_ahead"], s0["out"], s0["out_written"]) == \
        (0, 2, 4 * MiB, 4 * MiB, 2 * MiB, 2 * MiB), s0
    assert abs(s0["start_s"] - 100e-6) < 1e-12 and abs(s0["length_s"] - 1000e-6) < 1e-12, s0
    assert abs(s0["wait_s"] - 500e-6) < 1e-12, s0
    assert s0["ahead_unused"] == 0, "the piece that came in ahead was used before it left"
    assert (s1["step"], s1["ops"], s1["in"], s1["out"], s1["out_written"]) == (1, 3, 0, 2 * MiB, 0), s1
    assert abs(s1["length_s"] - 500e-6) < 1e-12, s1
    assert s1["ahead_unused"] == 2 * MiB, "it came in ahead again and left before any use (the copy is not one)"
    text = run("--steps", "step_k", trace=LOOP)
    assert "ahead unused 2.0 MiB" in text and "before" in text, text


@test
def each_step_says_how_long_the_pager_remapped_per_gib_it_brought_in():
    # a round line (moves, copy us, remap us) in step 0: 250 us of remaps for its 4 MiB in is 64 ms a GiB,
    # the figure vpage-table simulate --remap takes
    trace = LOOP.replace("500\tin\t0\t0xa00000\t1\t2097152\t1\n",
                         "500\tin\t0\t0xa00000\t1\t2097152\t1\n510\tround\t0\t2\t100\t250\n")
    _, s0, s1 = json.loads(run("--json", "--steps", "step_k", trace=trace))["steps"]
    assert abs(s0["remap_s"] - 250e-6) < 1e-12 and abs(s0["remap_ms_per_gib"] - 64.0) < 1e-9, s0
    assert s1["remap_s"] == 0 and s1["remap_ms_per_gib"] is None, "no bytes in: no rate"
    assert "remap 0.000 s (64.0 ms/GiB)" in run("--steps", "step_k", trace=trace)


@test
def each_step_counts_the_rounds_that_brought_pieces_in_and_those_that_only_sent_pieces_out():
    # a round's in and out lines follow its round line: in step 0 a round bringing a piece in (and one out),
    # then a round only sending one out; in step 1 a round bringing one in
    trace = "\n".join([
        "0\talloc\t0\t0xa00000\t4194304\t2\t2097152",
        "100\top\t0\t1\tstep_kernel\t0\t0xe00000",
        "200\tround\t0\t2\t100\t20",
        "201\tin\t0\t0xa00000\t0\t2097152\t1",
        "202\tout\t0\t0xa00000\t1\t2097152\t0",
        "300\tround\t0\t1\t5\t20",
        "301\top\t0\t2\tgemm\t0\t0xa00000",
        "302\tout\t0\t0xa00000\t0\t2097152\t0",
        "400\top\t0\t3\tstep_kernel\t0\t0xe00000",
        "500\tround\t0\t1\t100\t20",
        "501\tin\t0\t0xa00000\t0\t2097152\t1",
    ]) + "\n"
    s0, s1 = json.loads(run("--json", "--steps", "step_k", trace=trace))["steps"][1:]
    assert (s0["rounds_in"], s0["rounds_out_only"], s1["rounds_in"], s1["rounds_out_only"]) == (1, 1, 1, 0), (s0, s1)
    assert "rounds 1 in / 1 out only" in run("--steps", "step_k", trace=trace)


@test
def a_round_whose_out_moves_ended_ahead_is_one_round_and_both_its_remaps_count():
    # VPAGE_STREAM_FREE_EARLY: a round's freed line (its out-moves remapped, 30 us) and its out line, then
    # the next plan's, then the round line (its in-moves, 20 us) and its in line: one round that brought
    # a piece in, 50 us of remaps; then a round that only sent one out, ended ahead and then as a round
    trace = "\n".join([
        "0\talloc\t0\t0xa00000\t4194304\t2\t2097152",
        "100\top\t0\t1\tstep_kernel\t0\t0xe00000",
        "200\tfreed\t0\t1\t10\t30",
        "201\tout\t0\t0xa00000\t1\t2097152\t0",
        "300\tround\t0\t1\t100\t20",
        "301\tin\t0\t0xa00000\t0\t2097152\t1",
        "400\tfreed\t0\t1\t5\t10",
        "401\tout\t0\t0xa00000\t0\t2097152\t0",
        "500\tround\t0\t0\t0\t0",
    ]) + "\n"
    doc = json.loads(run("--json", "--steps", "step_k", trace=trace))
    s0 = doc["steps"][1]
    assert (s0["rounds_in"], s0["rounds_out_only"]) == (1, 1), s0
    assert abs(s0["remap_s"] - 60e-6) < 1e-12, s0
    assert doc["rounds"] == {"rounds": 2, "moves": 3, "copy_us": 115, "remap_us": 60}, doc["rounds"]


@test
def a_use_issued_while_the_piece_was_on_its_way_counts_even_when_its_line_comes_first():
    # the in line carries the tick its move was planned at (8): the gemm at tick 9 waited for it and its
    # line was written before the piece's; the piece was used, not "ahead unused"
    trace = "\n".join([
        "0\talloc\t0\t0xa00000\t2097152\t1\t2097152",
        "100\top\t0\t8\tstep_kernel\t0\t0xe00000",
        "300\top\t0\t9\tgemm\t150\t0xa00000",
        "310\tin\t0\t0xa00000\t0\t2097152\t1\t8",
        "400\tout\t0\t0xa00000\t0\t2097152\t0",
        "500\tin\t0\t0xa00000\t0\t2097152\t1\t10",
        "600\tout\t0\t0xa00000\t0\t2097152\t0",
    ]) + "\n"
    _, s0 = json.loads(run("--json", "--steps", "step_k", trace=trace))["steps"]
    assert s0["in_ahead"] == 4 * MiB, s0
    assert s0["ahead_unused"] == 2 * MiB, "only the second came in ahead and left unused: " + repr(s0)


# three steps of three launches; the first step's second launch comes 1 ms
# late, 0.3 ms of it waiting for a piece
LAG = "\n".join([
    "0\talloc\t0\t0xa00000\t2097152\t1\t2097152",
    "100\top\t0\t1\tstep_kernel\t0\t0xa00000",
    "1200\top\t0\t2\tgemm\t300\t0xa00000",
    "1300\top\t0\t3\tgemm\t0\t0xa00000",
    "1350\top\t0\t0\tcopy\t900\t0xa00000",
    "2000\top\t0\t4\tstep_kernel\t0\t0xa00000",
    "2100\top\t0\t5\tgemm\t0\t0xa00000",
    "2200\top\t0\t6\tgemm\t20\t0xa00000",
    "3000\top\t0\t7\tstep_kernel\t0\t0xa00000",
]) + "\n"


@test
def lag_says_where_the_first_step_falls_behind_the_second_and_what_its_launches_waited():
    rows = json.loads(run("--json", "--steps", "step_k", "--lag", trace=LAG))["lag"]
    got = [(r["launch"], round(r["lag_s"] * 1e6), round(r["wait_s"] * 1e6), round(r["wait_next_s"] * 1e6))
           for r in rows]
    assert got == [(0, 0, 0, 0), (1, 1000, 300, 0), (2, 1000, 300, 20)], got
    text = run("--steps", "step_k", "--lag", trace=LAG)
    assert "lag   0.001 s  waits   0.000 s against   0.000 s" in text, text
    assert "fewer than two whole steps" in run("--steps", "step_k", "--lag", trace=LOOP)
    assert "lag" not in json.loads(run("--json", "--steps", "step_k", trace=LAG))


@test
def steps_are_empty_when_no_kernel_has_the_name():
    s = json.loads(run("--json", "--steps", "no_such_kernel", trace=LOOP))
    assert s["steps"] == []
    assert "no launch of a kernel with that name" in run("--steps", "no_such_kernel", trace=LOOP)
    assert "steps" not in json.loads(run("--json", trace=LOOP))


@test
def a_gzipped_trace_reads_as_the_plain_one():
    assert json.loads(run("--json", gz=True)) == json.loads(run("--json"))


@test
def a_missing_file_is_one_line_of_error():
    p = subprocess.run([sys.executable, TOOL, "/nonexistent/trace"], capture_output=True, text=True)
    assert p.returncode != 0 and p.stderr.startswith("vpage-trace:"), p.stderr


if __name__ == "__main__":
    main()
