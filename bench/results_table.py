#!/usr/bin/env python3
"""Writes the README's results table from the newest files in bench/results/.

    python3 bench/results_table.py [--check]

The table sits between <!-- results:begin --> and <!-- results:end --> in
README.md; the tables of the newest bench/compare.py files, one per machine (and their charts)
between <!-- compare:begin --> and <!-- compare:end -->. --check exits 1 if
the README is not what the files give.
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


def table():
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


def newest_compares():
    """The result files of bench/compare.py (named <date>-<GPU>.json, "kind": "compare") of the newest date, one
    per machine."""
    files = sorted(glob.glob(os.path.join(ROOT, "bench", "results", "????-??-??-*.json")))
    docs = [(f, json.load(open(f))) for f in files]
    docs = [(f, d) for f, d in docs if isinstance(d, dict) and d.get("kind") == "compare"]
    if not docs:
        return []
    date = max(os.path.basename(f)[:10] for f, _ in docs)
    return [(f, d) for f, d in docs if os.path.basename(f).startswith(date)]


def compare_tables():
    docs = newest_compares()
    if not docs:
        return "No comparison has been measured yet (bench/compare.py)."
    parts = []
    for f, doc in docs:
        svg = os.path.relpath(f[:-len(".json")] + ".svg", ROOT)
        parts.append(f"From `{os.path.relpath(f, ROOT)}`; chart: [`{svg}`]({svg}).\n\n"
                     f"![time per step relative to resident]({svg})\n\n" + compare_lib.table(doc).rstrip())
    return "\n\n".join(parts)


REGIONS = {"results": table, "compare": compare_tables}  # README marker name -> what fills it


def main():
    path = os.path.join(ROOT, "README.md")
    text = new = open(path).read()
    for name, make in REGIONS.items():
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        start, stop = new.index(begin) + len(begin), new.index(end)
        new = new[:start] + "\n" + make() + "\n" + new[stop:]
    if "--check" in sys.argv:
        sys.exit(0 if new == text else 1)
    open(path, "w").write(new)


if __name__ == "__main__":
    main()
