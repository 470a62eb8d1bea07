#!/usr/bin/env python3
"""Writes the results tables from the newest files in bench/results/.

    python3 bench/results_table.py [--check]

README.md gets one table, between <!-- results:begin --> and
<!-- results:end -->: per workload and machine, the newest main comparison
(bench/compare.py's <date>-<GPU>.json) as time per step and ratios for the
resident run, vpage's stream mode at each cap (a first run, and the next
one with the page table the first saved, with their first steps) and the
peers.
bench/results/README.md gets the full tables of the newest bench/compare.py
files, one per machine, with their charts (<!-- compare:... -->) and the
table of the other measurements (<!-- measurements:... -->). --check exits 1
if a file is not what the results give.
"""
import glob
import json
import os
import sys

import compare_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def newest(pattern):
    """The files of the newest date matching pattern (one per machine)."""
    files = sorted(glob.glob(os.path.join(ROOT, "bench", "results", pattern)))
    if not files:
        return []
    date = os.path.basename(files[-1])[:10]
    return [f for f in files if os.path.basename(f).startswith(date)]


def measurements():
    rows = ["| what | without vpage | with vpage | ratio | machine, file |", "| --- | --- | --- | --- | --- |"]
    for f in newest("*-launch.json"):
        r = json.load(open(f))
        for key, what in (("driver", "host time per `cuLaunchKernel` (empty kernel, via cuGetProcAddress)"),
                          ("torch", "host time per tiny PyTorch op (`x.add_(1)`)")):
            if key in r:
                d = r[key]
                rows.append(f"| {what}, median of {len(d['runs_with'])} runs each | {d['without_ns']:.0f} ns | "
                            f"{d['with_ns']:.0f} ns | {d['ratio']:.3f} | {r['machine']}, `{os.path.basename(f)}` |")
    for f in newest("*-fake-driver-hooks.json"):
        r = json.load(open(f))
        d = r["driver"]
        rows.append(f"| the hook alone: host time per `cuLaunchKernel` on the fake driver (no GPU work), median of "
                    f"{len(d['runs_with'])} runs each | {d['without_ns']:.1f} ns | {d['with_ns']:.1f} ns | "
                    f"+{d['added_ns']:.1f} ns | {r['machine']}, `{os.path.basename(f)}` |")
    for f in newest("*-wan.json"):
        r = json.load(open(f))
        a, b = r["without"], r["with_vpage"]
        med = lambda runs: sorted(x["median_step_s"] for x in runs)[len(runs) // 2]
        each = lambda runs: "/".join(f"{x['median_step_s'] * 1000:.1f}" for x in runs)
        rows.append(f"| Wan 2.1 1.3B step, {a[0]['tokens']} tokens, bf16 (median of {len(a)} alternating runs each; "
                    f"with vpage under VPAGE_CAP=8G); outputs identical: {'yes' if r['identical'] else 'NO'} | "
                    f"{med(a) * 1000:.1f} ms ({each(a)}) | {med(b) * 1000:.1f} ms ({each(b)}) | "
                    f"{med(b) / med(a):.3f} | {a[0]['gpu']}, `{os.path.basename(f)}` |")
    for f in newest("*-paging.json"):
        r = json.load(open(f))
        if "rows" not in r:  # the GPU suite's paging file
            continue
        base = None
        for x in r["rows"]:
            if "resident" in x["row"]:
                base = x
                continue
            if x.get("returncode") != 0 or not base:
                rows.append(f"| {x['row']}: did not finish (rc {x.get('returncode')}) | | | | {r['gpu']} |")
                continue
            pg = x.get("paging") or {}
            rows.append(f"| {x['row']} (Wan DiT larger than the cap, {r['tokens']} tokens, bf16; step time; device "
                        f"growth {x['device_growth_mib'] / 1024:.1f} GiB vs {base['device_growth_mib'] / 1024:.1f} "
                        f"GiB resident; {pg.get('bytes_in', 0) / 2**30:.1f} GiB moved in); outputs identical: "
                        f"{'yes' if x.get('identical') else 'NO'} | {base['median_step_s'] * 1000:.0f} ms | "
                        f"{x['median_step_s'] * 1000:.0f} ms | {x['ratio_to_resident']:.1f} | "
                        f"{r['gpu']}, `{os.path.basename(f)}` |")
    for f in newest("*-gpu-suite.json"):
        r = json.load(open(f))
        parts = ", weight files" if "weights" in r else ""
        parts += ", paging" if "paging" in r else ""
        parts += ", streaming" if "stream" in r else ""
        parts += ", streaming under backend:cudaMallocAsync" if "stream-async" in r else ""
        parts += ", issue 4's models at 8 and 16 GiB" if "models" in r else ""
        parts += " and under backend:cudaMallocAsync at 8" if any(
            k.endswith("-async") for m in r.get("models", {}).values() for k in m) else ""
        at = f", vpage at {r['commit']}" if r.get("commit") else ""
        rows.append(f"| GPU suite (3 PyTorch allocator modes{parts}) | | "
                    f"{r['passed']} passed, {r['failed']} failed | | "
                    f"{r['gpu']}{at}, `{os.path.basename(f)}` |")
    return "\n".join(rows)


def _compares():
    """Every result file of bench/compare.py ("kind": "compare"), as (path, document), by name."""
    files = sorted(glob.glob(os.path.join(ROOT, "bench", "results", "????-??-??-*.json")))
    docs = [(f, json.load(open(f))) for f in files]
    return [(f, d) for f, d in docs if isinstance(d, dict) and d.get("kind") == "compare"]


def _is_main(f, d):
    """A main comparison: named <date>-<GPU>.json, not the file of a commit, a setting or a workload."""
    return os.path.basename(f)[11:-len(".json")] == d["gpu"].replace(" ", "-")


def newest_compares():
    """The comparisons of the newest date that has a main one (one per machine, with the files of commits or
    settings of that date), and every comparison of a later date (a workload measured on its own since)."""
    docs = _compares()
    mains = [os.path.basename(f)[:10] for f, d in docs if _is_main(f, d)]
    if not docs:
        return []
    date = max(mains) if mains else max(os.path.basename(f)[:10] for f, _ in docs)
    later = [(f, d) for f, d in docs if os.path.basename(f)[:10] > date]
    return sorted(later, reverse=True) + [(f, d) for f, d in docs if os.path.basename(f).startswith(date)]


RESULTS = os.path.join(ROOT, "bench", "results")


def compare_tables():
    docs = newest_compares()
    if not docs:
        return "No comparison has been measured yet (bench/compare.py)."
    parts = []
    for f, doc in docs:
        svg = os.path.basename(f[:-len(".json")] + ".svg")
        parts.append(f"From `{os.path.basename(f)}`; chart: [`{svg}`]({svg}).\n\n"
                     f"![time per step relative to resident]({svg})\n\n" + compare_lib.table(doc).rstrip())
    return "\n\n".join(parts)


SUMMARY_ROWS = (("resident", "resident"), ("group", "diffusers group offloading"),
                ("sequential", "accelerate cpu_offload"))


def _cell(r, unit):
    t = f"{r['time_s']:.3f} s" if unit == "step" else f"{r['time_s'] * 1000:.0f} ms"
    paged = r["row"] in ("stream", "stream-table")
    first = f", step 1 {r['step_s'][0]:.2f} s" if (paged or r["row"] == "resident") and unit == "step" and \
        r.get("step_s") else ""
    if r["row"] == "resident":
        return f"{t} ({first[2:]})" if first else t
    same = "" if r.get("identical") is not False else ", output differs"
    bound = f", {r['ratio_bound']:.2f}x bound" if "ratio_bound" in r and paged else ""
    return f"{t} ({r['ratio_resident']:.2f}x{bound}{first}{same})" if "ratio_resident" in r else t


REFERENCE_GPU = "H100"  # the machine the targets are set on


def summary():
    """One table: the newest main comparison (<date>-<GPU>.json, not the files of a commit or a setting) on the
    reference machine (any machine where it has none), time per step (or token) and its ratio to resident, for
    resident, stream mode at each cap and the peers."""
    docs = [(f, d) for f, d in newest_compares() if _is_main(f, d)]
    docs = [x for x in docs if REFERENCE_GPU in x[1]["gpu"]] or docs[:1]
    if not docs:
        return "No comparison has been measured yet (bench/compare.py)."
    def caps_of(row):
        return sorted({r["cap_gib"] for _, d in docs for r in d["rows"] if r["row"] == row and r["status"] == "ok"})
    caps, table_caps = caps_of("stream"), caps_of("stream-table")
    head = ["workload (time per step or token)", "GPU", "resident"] + [f"vpage stream, cap {c:g} GiB" for c in caps]
    head += [f"vpage stream, saved table, cap {c:g} GiB" for c in table_caps]
    head += [label for row, label in SUMMARY_ROWS[1:]]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for f, d in docs:
        for name, w in d["workloads"].items():
            rows = [r for r in d["rows"] if r["workload"] == name and r["status"] == "ok"]
            get = lambda row, cap=None: next((r for r in rows if r["row"] == row and r.get("cap_gib") == cap), None)
            cells = [w["title"], f"{d['gpu']} ({d['date']})"]
            cells.append(_cell(get("resident"), w["unit"]) if get("resident") else "")
            cells += [_cell(get("stream", c), w["unit"]) if get("stream", c) else "" for c in caps]
            cells += [_cell(get("stream-table", c), w["unit"]) if get("stream-table", c) else "" for c in table_caps]
            cells += [_cell(get(row), w["unit"]) if get(row) else "" for row, _ in SUMMARY_ROWS[1:]]
            lines.append("| " + " | ".join(cells) + " |")
    files = ", ".join(f"`bench/results/{os.path.basename(f)}`" for f, _ in docs)
    return "\n".join(lines) + f"\n\nFrom {files}; its notes, its other rows and the other machines' files are " \
                             "in [`bench/results/README.md`](bench/results/README.md)."


# file -> {marker name: what fills it}
REGIONS = {os.path.join(ROOT, "README.md"): {"results": summary},
           os.path.join(RESULTS, "README.md"): {"compare": compare_tables, "measurements": measurements}}


def main():
    stale = []
    for path, regions in REGIONS.items():
        text = new = open(path).read()
        for name, make in regions.items():
            begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
            start, stop = new.index(begin) + len(begin), new.index(end)
            new = new[:start] + "\n" + make() + "\n" + new[stop:]
        if new != text:
            stale.append(os.path.relpath(path, ROOT))
            if "--check" not in sys.argv:
                open(path, "w").write(new)
    if "--check" in sys.argv and stale:
        print("not what the results give: " + ", ".join(stale))
        sys.exit(1)


if __name__ == "__main__":
    main()
