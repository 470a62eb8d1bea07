#!/usr/bin/env python3
"""bench/compare_lib.py on a result file recorded on the H100 (tests/data/
compare-recorded.json: the harness's small check workloads and Wan 1.3B)
and on hand-made documents whose answers are worked out here. Also: the
README's results tables are what bench/results_table.py makes of the newest
files. Standard library only; prints TAP.

    python3 tests/test_compare.py
"""
import copy
import json
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from tap import main, test  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "bench"))
import compare_lib  # noqa: E402

GiB = 1 << 30
RECORDED = os.path.join(ROOT, "tests", "data", "compare-recorded.json")


def recorded():
    return json.load(open(RECORDED))


def measured(doc):
    """The recorded rows as compare.py measured them, before finish() added anything."""
    keep = ("workload", "row", "cap_gib", "status", "why", "time_s", "checksum", "weight_bytes", "peak_allocated",
            "device_peak_mib", "host_taken_mib", "host_rss_peak_mib", "prefill_s")
    d = copy.deepcopy(doc)
    d["rows"] = [{k: r[k] for k in keep if k in r} for r in d["rows"] if r["row"] != "bound"]
    return d


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15)


@test
def bound_when_the_weights_fit_is_the_compute_time():
    b, move = compare_lib.bound(0.25, 10 * GiB, 2 * GiB, 16 * GiB, 50e9)
    assert move == 0 and b == 0.25, (b, move)


@test
def bound_moves_the_weights_that_cannot_stay():
    # 28 GiB of weights, 2 GiB working set, 8 GiB budget: 6 GiB stay, 22 GiB cross at 50 GB/s
    b, move = compare_lib.bound(0.25, 28 * GiB, 2 * GiB, 8 * GiB, 50e9)
    assert move == 22 * GiB, move
    assert close(b, 22 * GiB / 50e9), b


@test
def bound_with_a_budget_below_the_working_set_moves_every_weight():
    b, move = compare_lib.bound(0.01, 4 * GiB, 3 * GiB, 1 * GiB, 50e9)
    assert move == 4 * GiB and close(b, 4 * GiB / 50e9), (b, move)


@test
def finish_recomputes_the_recorded_ratios():
    doc = compare_lib.finish(measured(recorded()))
    for name, w in doc["workloads"].items():
        base = next(r for r in doc["rows"] if r["workload"] == name and r["row"] == "resident")
        working = base["peak_allocated"] - base["weight_bytes"]
        for r in doc["rows"]:
            if r["workload"] != name or r["status"] != "ok":
                continue
            assert close(r["ratio_resident"], r["time_s"] / base["time_s"]), r
            if r["row"] == "bound":
                continue
            assert r["identical"] == (r["checksum"] == base["checksum"]), r
            budget = r["cap_gib"] * GiB if r.get("cap_gib") is not None else r["device_peak_mib"] << 20
            move = max(0, base["weight_bytes"] - max(0, budget - working))
            want = max(base["time_s"], move / w["h2d_bytes_per_s"])
            assert close(r["bound_s"], want) and close(r["ratio_bound"], r["time_s"] / want), (r, want)


@test
def a_different_checksum_is_marked_not_identical():
    doc = measured(recorded())
    row = next(r for r in doc["rows"] if r["workload"] == "wan-1.3B" and r["row"] == "group")
    row["checksum"] = "0" * 16
    out = compare_lib.finish(doc)
    assert [r["row"] for r in out["rows"] if r.get("identical") is False] == ["group"]
    assert sum(1 for l in compare_lib.table(out).splitlines() if l.endswith("| NO |")) == 1


@test
def finish_gives_one_bound_row_per_cap():
    doc = compare_lib.finish(measured(recorded()))
    for name, w in doc["workloads"].items():
        caps = [r["cap_gib"] for r in doc["rows"] if r["workload"] == name and r["row"] == "bound"]
        assert caps == w["caps_gib"], (name, caps)


@test
def finish_is_idempotent():
    once = compare_lib.finish(measured(recorded()))
    twice = compare_lib.finish(copy.deepcopy(once))
    assert once == twice


@test
def a_failed_row_gets_no_ratio_and_no_resident_gives_no_bound():
    doc = measured(recorded())
    doc["rows"] = [r for r in doc["rows"] if r["workload"] == "wan-1.3B"]
    doc["workloads"] = {"wan-1.3B": doc["workloads"]["wan-1.3B"]}
    out = compare_lib.finish(copy.deepcopy(doc))
    for r in out["rows"]:
        if r["status"] != "ok":
            assert "ratio_resident" not in r and r.get("why"), r
    doc["rows"] = [r for r in doc["rows"] if r["row"] != "resident"]
    out = compare_lib.finish(doc)
    assert not any(r["row"] == "bound" or "ratio_resident" in r for r in out["rows"])


@test
def the_table_has_every_row_and_says_why_a_row_failed():
    doc = compare_lib.finish(measured(recorded()))
    text = compare_lib.table(doc)
    lines = [l for l in text.splitlines() if l.startswith("| ") and not l.startswith("| mode") and "---" not in l]
    assert len(lines) == len(doc["rows"]), (len(lines), len(doc["rows"]))
    for r in doc["rows"]:
        if r["status"] != "ok":
            assert any(f"{r['status']}: {compare_lib.short_why(r)}" in l for l in lines), r
    base = next(r for r in doc["rows"] if r["workload"] == "wan-1.3B" and r["row"] == "demand" and r["cap_gib"] == 1)
    assert f"| {base['ratio_resident']:.2f} |" in text


@test
def combine_refuses_two_gpus_and_later_workloads_replace_earlier():
    a = recorded()
    b = copy.deepcopy(a)
    b["gpu"] = "another GPU"
    try:
        compare_lib.combine([a, b])
        raise AssertionError("combined two GPUs")
    except ValueError:
        pass
    b = copy.deepcopy(a)
    for r in b["rows"]:
        if r["workload"] == "wan-1.3B" and r["row"] == "resident":
            r["time_s"] *= 2
    out = compare_lib.combine([a, b])
    n = sum(1 for r in out["rows"] if r["workload"] == "wan-1.3B" and r["row"] == "resident")
    assert n == 1, n
    base = next(r for r in out["rows"] if r["workload"] == "wan-1.3B" and r["row"] == "resident")
    assert base["time_s"] == 2 * next(r for r in a["rows"] if r["workload"] == "wan-1.3B"
                                      and r["row"] == "resident")["time_s"]


@test
def combine_takes_rows_of_one_workload_from_two_calls():
    a = recorded()
    b = copy.deepcopy(a)
    b["rows"] = [r for r in b["rows"] if r["workload"] == "wan-1.3B" and r["row"] == "demand"]
    for r in b["rows"]:
        r["time_s"] *= 3
    a_rows = [r for r in a["rows"] if r["workload"] == "wan-1.3B" and r["row"] not in ("demand", "bound")]
    a["rows"] = [r for r in a["rows"] if not (r["workload"] == "wan-1.3B" and r["row"] == "demand")]
    out = compare_lib.combine([a, b])
    got = [r for r in out["rows"] if r["workload"] == "wan-1.3B" and r["row"] not in ("bound",)]
    assert len(got) == len(a_rows) + len(b["rows"]), (len(got), len(a_rows), len(b["rows"]))
    rows = [r["row"] for r in got]
    assert rows == sorted(rows, key=compare_lib.ROWS.index), rows
    demand = [r for r in got if r["row"] == "demand"]
    base = next(r for r in got if r["row"] == "resident")
    for r in demand:
        assert abs(r["ratio_resident"] - r["time_s"] / base["time_s"]) < 1e-9


@test
def the_chart_is_svg_with_a_bar_per_finished_row():
    doc = compare_lib.finish(measured(recorded()))
    root = ET.fromstring(compare_lib.svg(doc))
    rects = [e for e in root.iter("{http://www.w3.org/2000/svg}rect") if e.get("width") != "100%"]
    assert len(rects) == sum(1 for r in doc["rows"] if r["status"] == "ok"), len(rects)


@test
def a_call_without_a_resident_row_still_gets_its_table_and_chart():
    doc = measured(recorded())
    doc["rows"] = [r for r in doc["rows"] if r["row"] != "resident"]
    doc = compare_lib.finish(doc)
    assert doc["rows"], "rows left"
    text = compare_lib.table(doc)
    assert "| - | - |" in text, text
    root = ET.fromstring(compare_lib.svg(doc))
    rects = [e for e in root.iter("{http://www.w3.org/2000/svg}rect") if e.get("width") != "100%"]
    assert not rects, "no ratio, no bar"


@test
def the_table_has_bytes_moved_a_step_when_a_row_measured_them():
    doc = measured(recorded())
    name = doc["rows"][0]["workload"]
    plain = compare_lib.table(compare_lib.finish(copy.deepcopy(doc)))
    assert "moved a" not in plain, "no row measured them: no column"
    paged = next(r for r in doc["rows"] if r["workload"] == name and r.get("cap_gib") is not None
                 and r["status"] == "ok")
    paged["moved_per_unit"] = [3.0e9, 1.5e9]
    lines = compare_lib.table(compare_lib.finish(doc)).splitlines()
    h = next(i for i, l in enumerate(lines) if l.startswith("| mode") and l.endswith("(in / back) |"))
    block = []
    for l in lines[h:]:
        if not l.startswith("|"):
            break
        block.append(l)
    assert any("3.0 / 1.5 GB" in l for l in block), block
    assert {l.count("|") for l in block} == {lines[h].count("|")}, "every row of that table has the column"


@test
def the_table_gives_the_host_memory_taken_next_to_rss():
    doc = measured(recorded())
    row = next(r for r in doc["rows"] if r["status"] == "ok" and r.get("cap_gib") is not None)
    row["host_taken_mib"], row["host_rss_peak_mib"] = 28 * 1024, 1.25 * 1024
    lines = compare_lib.table(compare_lib.finish(doc)).splitlines()
    head = next(l for l in lines if l.startswith("| mode"))
    cols = [c.strip() for c in head.split("|")]
    got = next(l for l in lines if l.startswith("| ") and "28.0 GiB" in l)
    cells = [c.strip() for c in got.split("|")]
    assert cells[cols.index("host memory taken")] == "28.0 GiB", got
    assert cells[cols.index("host RSS peak")] == "1.2 GiB", got


@test
def a_workload_from_files_shows_its_load_and_the_page_cache_it_filled():
    doc = measured(recorded())
    name = doc["rows"][0]["workload"]
    assert "host memory with page cache" not in compare_lib.table(compare_lib.finish(copy.deepcopy(doc)))
    doc["workloads"][name]["files"] = True
    row = next(r for r in doc["rows"] if r["workload"] == name and r["status"] == "ok" and r.get("cap_gib"))
    row["load_s"], row["host_filled_mib"] = 41.25, 58 * 1024
    lines = compare_lib.table(compare_lib.finish(doc)).splitlines()
    h = next(i for i, l in enumerate(lines) if l.startswith("| mode") and "with page cache" in l)
    cols = [c.strip() for c in lines[h].split("|")]
    got = next(l for l in lines if "41.2 s" in l)
    cells = [c.strip() for c in got.split("|")]
    assert cells[cols.index("load")] == "41.2 s", got
    assert cells[cols.index("host memory with page cache")] == "58.0 GiB", got
    block = []
    for l in lines[h:]:
        if not l.startswith("|"):
            break
        block.append(l)
    assert len(block) > 3 and {l.count("|") for l in block} == {lines[h].count("|")}, "the columns in every row"


@test
def the_page_cache_a_row_fills_is_sampled_from_memfree():
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import vpage_query
    s = vpage_query.DeviceSampler.__new__(vpage_query.DeviceSampler)
    s.host_base, s.host_low = (2000.0, 1000.0), (1500.0, 400.0)
    assert s.host_filled_mib() == 600.0
    s.host_low = (1500.0, None)
    assert s.host_filled_mib() is None
    free = vpage_query.host_memory_mib()[1]
    assert free is None or free > 0


@test
def moved_between_two_readings_is_their_difference():
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import vpage_query
    assert vpage_query.moved_between((10, 4), (25, 9)) == [15, 5]
    assert vpage_query.moved_between(None, (1, 1)) is None
    assert vpage_query.moved() is None, "no vpage in this process"


@test
def each_vpage_row_runs_with_its_own_environment():
    import compare
    env, lib, offload = compare.spec("stream-placed", 8, "/lib.so", 123)
    assert env == {"VPAGE_CAP": "8192M", "VPAGE_PAGING": "stream", "VPAGE_PAGED_LIMIT": "123",
                   "VPAGE_STREAM_PLACE": "device"}, env
    assert (lib, offload) == ("/lib.so", "none")
    env, _, _ = compare.spec("stream", 16, "/lib.so", 123)
    assert env == {"VPAGE_CAP": "16384M", "VPAGE_PAGING": "stream", "VPAGE_PAGED_LIMIT": "123"}, env
    env, _, _ = compare.spec("stream-demand", 8, "/lib.so", 123)
    assert env == {"VPAGE_CAP": "8192M", "VPAGE_PAGING": "stream", "VPAGE_PAGED_LIMIT": "123",
                   "VPAGE_STREAM_AHEAD": "off"}, env
    env, _, _ = compare.spec("stream-async", 8, "/lib.so", 123)
    assert env == {"VPAGE_CAP": "8192M", "VPAGE_PAGING": "stream", "VPAGE_PAGED_LIMIT": "123",
                   "PYTORCH_CUDA_ALLOC_CONF": "backend:cudaMallocAsync"}, env
    assert compare.spec("group", None, "/lib.so", 123) == ({}, None, "group")
    assert set(compare_lib.CAPPED) <= set(compare_lib.ROWS)


@test
def the_stream_table_row_replays_the_table_the_stream_row_at_its_cap_saved():
    import compare
    rows = ["resident", "stream", "stream-table"]
    t8 = compare.table_file("/t", "wan-14B", "stream", 8, rows)
    assert t8 == "/t/wan-14B-8G.table" and compare.table_file("/t", "wan-14B", "stream-table", 8, rows) == t8
    assert compare.table_file("/t", "wan-14B", "stream-table", 16, rows) == "/t/wan-14B-16G.table"
    assert compare.table_file("/t", "wan-14B", "stream", 8, ["stream"]) is None, "no stream-table row: no table"
    assert compare.table_file("/t", "wan-14B", "demand", 8, rows) is None
    env, lib, offload = compare.spec("stream-table", 8, "/lib.so", 123, t8)
    assert env == {"VPAGE_CAP": "8192M", "VPAGE_PAGING": "stream", "VPAGE_PAGED_LIMIT": "123",
                   "VPAGE_TABLE": t8}, env
    assert (lib, offload) == ("/lib.so", "none")
    assert compare.spec("stream", 8, "/lib.so", 123, t8)[0]["VPAGE_TABLE"] == t8
    assert "VPAGE_TABLE" not in compare.spec("stream", 8, "/lib.so", 123)[0]
    assert "VPAGE_TABLE" not in compare.spec("stream-placed", 8, "/lib.so", 123, t8)[0]
    assert compare_lib.ROWS.index("stream-table") == compare_lib.ROWS.index("stream") + 1, "it runs after stream"
    assert "stream-table" in compare_lib.CAPPED


@test
def every_step_is_in_the_table_and_the_summary_gives_first_steps_and_the_saved_tables_column():
    import results_table
    doc = {"kind": "compare", "date": "2026-12-07", "gpu": "G", "rows": [],
           "workloads": {"w": {"title": "W", "unit": "step", "caps_gib": [8], "h2d_bytes_per_s": 1e10}}}
    mk = lambda row, t, steps, cap=None: {"workload": "w", "row": row, "cap_gib": cap, "status": "ok", "time_s": t,
                                           "checksum": "c", "weight_bytes": 20 << 30, "peak_allocated": 21 << 30,
                                           "step_s": steps, "device_peak_mib": 1024}
    doc["rows"] = [mk("resident", 1.0, [2.0, 1.0, 1.0]), mk("stream", 3.0, [9.0, 4.0, 3.0], 8),
                   mk("stream-table", 2.5, [4.5, 2.5, 2.5], 8)]
    done = compare_lib.finish(doc)
    text = compare_lib.table(done)
    assert "every step (s)" in text and "| 9.000, 4.000, 3.000 |" in text and "4.500, 2.500, 2.500" in text, text
    assert "the page table the stream row saved" in text, text
    get = lambda row: next(r for r in done["rows"] if r["row"] == row)
    assert results_table._cell(get("resident"), "step") == "1.000 s (step 1 2.00 s)"
    cell = results_table._cell(get("stream-table"), "step")
    assert cell.startswith("2.500 s (2.50x, ") and "x bound, step 1 4.50 s)" in cell, cell
    assert "step 1" not in results_table._cell(dict(get("stream"), step_s=None), "step")


@test
def with_trace_only_vpage_rows_write_a_trace_and_nothing_of_vpage_leaks_from_outside():
    import compare
    base = {"PATH": "/bin", "VPAGE_CAP": "1G", "VPAGE_TRACE": "/elsewhere", "LD_PRELOAD": "/other.so"}
    t = compare.trace_file("/tr", "wan-14B", "stream", 8)
    assert t == "/tr/wan-14B-stream-8G.trace", t
    env, lib, _ = compare.spec("stream", 8, "/lib.so", 123)
    got = compare.row_env(base, env, lib, t)
    assert got["VPAGE_TRACE"] == t and got["LD_PRELOAD"] == "/lib.so" and got["VPAGE_CAP"] == "8192M", got
    env, lib, _ = compare.spec("group", None, "/lib.so", 123)
    got = compare.row_env(base, env, lib, compare.trace_file("/tr", "wan-14B", "group", None))
    assert not any(k.startswith("VPAGE_") for k in got) and "LD_PRELOAD" not in got, got
    assert compare.trace_file(None, "wan-14B", "stream", 8) is None
    got = compare.row_env(base, *compare.spec("stream", 16, "/lib.so", 1)[:2], None)
    assert "VPAGE_TRACE" not in got, "no --trace: no trace, not even the caller's"


@test
def the_readme_tables_are_made_from_the_newest_results():
    p = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "results_table.py"), "--check"])
    assert p.returncode == 0, "README.md or bench/results/README.md differs from bench/results_table.py's output: run it"


if __name__ == "__main__":
    main()
