"""The arithmetic, table and chart of bench/compare.py, apart from running
anything (standard library only; tests/test_compare.py checks it on a
recorded result file).

A result document (what compare.py writes):
    {"kind": "compare", "date", "gpu", "workloads": {name: {"title", "unit", "caps_gib", "h2d_bytes_per_s"}},
     "rows": [row, ...]}
A measured row: {"workload", "row" (one of ROWS), "cap_gib" (vpage rows at a cap), "status" ("ok", "failed",
"skipped"), "why" (when not ok), "time_s" (per step or per decoded token), "checksum", "weight_bytes",
"peak_allocated", "device_peak_mib" (the device's own use over the timed window, above what it used before
the process started), "host_taken_mib" (the most the host's MemAvailable fell below its value before the
row, sampled from outside: pinned and anonymous memory, which RSS does not all show), "host_filled_mib" (the
most its MemFree fell: the same plus page cache read in, such as a checkpoint's files), "load_s" (the model's
build or load), "host_rss_peak_mib", ...}.
finish() adds to every ok row: ratio_resident, identical, bound_s, ratio_bound; and one "bound" row per cap.

The transfer lower bound of a workload at a memory budget M bytes:
    working  = resident peak allocated - weight bytes      (activations, KV cache, workspaces)
    must_move = max(0, weights - max(0, M - working))      (weights that cannot stay: they cross PCIe
                                                             every step, each step touching every weight)
    bound    = max(resident time, must_move / pinned host-to-device bandwidth)
M is the cap for vpage's rows and the bound rows, and for a peer the device memory it was seen to use.

    python3 bench/compare_lib.py combine OUT.json IN.json...
joins result files of separate calls on the same GPU (one workload's rows
all come from one call) into OUT.json and its chart OUT.svg.
"""
import html
import json
import math
import sys

ROWS = ("resident", "vpage", "off", "demand", "stream-demand", "stream", "stream-table", "stream-placed", "stream-async",
        "group", "sequential")
# rows measured at each cap
CAPPED = ("off", "demand", "stream-demand", "stream", "stream-table", "stream-placed", "stream-async")
LABEL = {
    "resident": "resident, no preload (upper bound)",
    "vpage": "vpage, no cap (its overhead)",
    "off": "vpage at the cap, VPAGE_PAGING=off",
    "demand": "vpage at the cap, VPAGE_PAGING=demand",
    "stream-demand": "vpage at the cap, VPAGE_PAGING=stream, VPAGE_STREAM_AHEAD=off (demand paging)",
    "stream": "vpage at the cap, VPAGE_PAGING=stream",
    "stream-table": "vpage at the cap, VPAGE_PAGING=stream, the page table the stream row saved (VPAGE_TABLE)",
    "stream-placed": "vpage at the cap, VPAGE_PAGING=stream, VPAGE_STREAM_PLACE=device",
    "stream-async": "vpage at the cap, VPAGE_PAGING=stream, PyTorch's backend:cudaMallocAsync",
    "group": "diffusers group offloading (block_level, use_stream, record_stream)",
    "sequential": "accelerate cpu_offload (sequential)",
    "bound": "transfer lower bound at the cap",
}
GiB = 1 << 30


def bound(compute_s, weight_bytes, working_bytes, budget_bytes, h2d_bytes_per_s):
    """(bound seconds, bytes that must move) for one step at a memory budget."""
    keep = max(0, budget_bytes - working_bytes)
    must_move = max(0, weight_bytes - keep)
    return max(compute_s, must_move / h2d_bytes_per_s), must_move


def label(row):
    text = LABEL[row["row"]]
    if row.get("cap_gib") is not None:
        text = text.replace("the cap", f"cap {row['cap_gib']:g} GiB")
    return text


def finish(doc):
    """Adds ratios, identity and bounds to the rows of doc, and the bound rows; returns doc."""
    rows = [r for r in doc["rows"] if r["row"] != "bound"]
    out = []
    for name, w in doc["workloads"].items():
        mine = [r for r in rows if r["workload"] == name]
        out += mine
        base = next((r for r in mine if r["row"] == "resident" and r["status"] == "ok"), None)
        if base is None:
            continue
        working = max(0, base["peak_allocated"] - base["weight_bytes"])

        def at(budget):
            return bound(base["time_s"], base["weight_bytes"], working, budget, w["h2d_bytes_per_s"])

        for r in mine:
            if r["status"] != "ok":
                continue
            budget = r["cap_gib"] * GiB if r.get("cap_gib") is not None else r["device_peak_mib"] * (1 << 20)
            r["ratio_resident"] = r["time_s"] / base["time_s"]
            r["identical"] = r["checksum"] == base["checksum"]
            r["bound_s"], r["must_move_bytes"] = at(budget)
            r["ratio_bound"] = r["time_s"] / r["bound_s"]
        for cap in w["caps_gib"]:
            b, move = at(cap * GiB)
            out.append({"workload": name, "row": "bound", "cap_gib": cap, "status": "ok", "time_s": b,
                        "must_move_bytes": move, "ratio_resident": b / base["time_s"], "ratio_bound": 1.0})
    doc["rows"] = out
    return doc


def short_why(r):
    """The first sentence of why a row did not finish."""
    return r.get("why", "").split(". ")[0][:160]


def _time(r, unit):
    if unit == "token":
        pre = f"; prefill {r['prefill_s']:.2f} s" if "prefill_s" in r else ""
        return f"{r['time_s'] * 1000:.0f} ms ({1 / r['time_s']:.2f} tok/s{pre})"
    return f"{r['time_s']:.3f} s"


def every_step(r):
    """A row's steps in the order they ran (the first is what a user waits for), or ""."""
    return ", ".join(f"{t:.3f}" for t in r.get("step_s") or [])


def _mib(v):
    return "" if v is None else f"{v / 1024:.1f} GiB"


def table(doc):
    """The results as one markdown table per workload."""
    parts = []
    for name, w in doc["workloads"].items():
        parts.append(f"**{w['title']}** ({doc['gpu']}, {doc['date']}; time per {w['unit']}; pinned "
                     f"host-to-device {w['h2d_bytes_per_s'] / 1e9:.1f} GB/s measured in the run)\n")
        if w.get("note"):
            parts.append(f"{w['note']}\n")
        moved = any(r.get("moved_per_unit") for r in doc["rows"] if r["workload"] == name)
        steps = w["unit"] == "step" and any(r.get("step_s") for r in doc["rows"] if r["workload"] == name)
        files = bool(w.get("files"))
        extra = (["every step (s)"] if steps else []) + ([f"moved a {w['unit']} (in / back)"] if moved else []) + \
                (["load", "host memory with page cache"] if files else [])
        head = ["mode", f"time per {w['unit']}", "x resident", "x bound", "device peak", "host memory taken",
                "host RSS peak", "same output"] + extra
        parts.append("| " + " | ".join(head) + " |")
        parts.append("|" + " --- |" * len(head))
        blank = " |" * len(extra)
        for r in doc["rows"]:
            if r["workload"] != name:
                continue
            if r["status"] != "ok":
                parts.append(f"| {label(r)} | {r['status']}: {short_why(r)} | | | | | | |" + blank)
                continue
            if r["row"] == "bound":
                parts.append(f"| {label(r)} ({r['must_move_bytes'] / 1e9:.1f} GB to move) | {_time(r, w['unit'])} | "
                             f"{r['ratio_resident']:.2f} | 1.00 | | | | |" + blank)
                continue
            same = {True: "yes", False: "NO"}.get(r.get("identical"), "")
            m = r.get("moved_per_unit")
            cells = ([every_step(r)] if steps else []) + \
                    ([f"{m[0] / 1e9:.1f} / {m[1] / 1e9:.1f} GB" if m else ""] if moved else []) + \
                    ([f"{r['load_s']:.1f} s" if r.get("load_s") is not None else "",
                      _mib(r.get("host_filled_mib"))] if files else [])
            parts.append(f"| {label(r)} | {_time(r, w['unit'])} | {_ratio(r, 'ratio_resident')} | "
                         f"{_ratio(r, 'ratio_bound')} | {_mib(r.get('device_peak_mib'))} | "
                         f"{_mib(r.get('host_taken_mib'))} | {_mib(r.get('host_rss_peak_mib'))} | {same} |"
                         + "".join(f" {c} |" if c else " |" for c in cells))
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def _ratio(r, key):
    """A ratio of the table, or "-" where the call ran no resident row to compare with."""
    return f"{r[key]:.2f}" if key in r else "-"


def svg(doc, width=1000):
    """A bar chart of x resident (log scale), one group of bars per workload; rows that did not
    finish are listed with their status instead of a bar."""
    bar_h, gap, left, right, top = 16, 4, 440, 90, 30
    lines, y = [], top
    ok = [r["ratio_resident"] for r in doc["rows"] if r["status"] == "ok" and r.get("ratio_resident")]
    hi = max(ok + [2.0])
    scale = (width - left - right) / math.log10(hi * 1.2)

    def x_of(v):
        return left + max(0.0, math.log10(max(v, 1.0))) * scale

    for name, w in doc["workloads"].items():
        lines.append(f'<text x="4" y="{y + 12}" font-weight="bold">{html.escape(w["title"])}</text>')
        y += bar_h + gap
        for r in doc["rows"]:
            if r["workload"] != name:
                continue
            lines.append(f'<text x="12" y="{y + 12}">{html.escape(label(r))}</text>')
            if r["status"] != "ok" or "ratio_resident" not in r:
                why = r["status"] if r["status"] != "ok" else "no resident row to compare with"
                lines.append(f'<text x="{left}" y="{y + 12}" fill="#a00">{html.escape(why)}</text>')
            else:
                v = r["ratio_resident"]
                color = {"bound": "#999", "resident": "#2a6", "demand": "#c60", "stream": "#c60",
                         "stream-table": "#c60", "stream-placed": "#c60", "stream-demand": "#c60", "stream-async": "#c60", "vpage": "#c60"}.get(r["row"], "#36c")
                lines.append(f'<rect x="{left}" y="{y}" width="{max(1.0, x_of(v) - left):.1f}" height="{bar_h}" '
                             f'fill="{color}"/>')
                lines.append(f'<text x="{x_of(v) + 4:.1f}" y="{y + 12}">{v:.2f}x</text>')
            y += bar_h + gap
        y += gap * 3
    for v in (1, 10, 100, 1000):
        if v <= hi * 1.2:
            lines.append(f'<line x1="{x_of(v):.1f}" y1="{top - 6}" x2="{x_of(v):.1f}" y2="{y}" stroke="#ccc"/>')
            lines.append(f'<text x="{x_of(v):.1f}" y="{top - 10}" text-anchor="middle">{v}x</text>')
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y + 10}" font-family="sans-serif" '
            f'font-size="11"><title>time relative to resident, {html.escape(doc["gpu"])}, {doc["date"]} '
            f'(log scale)</title><rect width="100%" height="100%" fill="white"/>')
    return head + "".join(lines) + "</svg>\n"


def combine(docs):
    """One document from several of the same GPU; a later document's row replaces an earlier one's of the same
    workload, row and cap (so the peers of a workload can be measured in another call on the same machine)."""
    gpus = {d["gpu"] for d in docs}
    if len(gpus) != 1:
        raise ValueError(f"result files of different GPUs: {sorted(gpus)}")
    out = {"kind": "compare", "date": max(d["date"] for d in docs), "gpu": gpus.pop(), "workloads": {}, "rows": []}

    def key(r):
        return r["workload"], r["row"], r.get("cap_gib")

    for d in docs:
        new = [r for r in d["rows"] if r["row"] != "bound"]
        keys = {key(r) for r in new}
        out["rows"] = [r for r in out["rows"] if key(r) not in keys]
        out["workloads"].update(d["workloads"])
        out["rows"] += new
    order = {name: i for i, name in enumerate(ROWS)}
    out["rows"].sort(key=lambda r: (list(out["workloads"]).index(r["workload"]), order.get(r["row"], 99),
                                    r.get("cap_gib") or 0))
    return finish(out)


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] != "combine":
        sys.exit(__doc__.split("\n\n")[-1])
    doc = combine([json.load(open(f)) for f in sys.argv[3:]])
    with open(sys.argv[2], "w") as fh:
        json.dump(doc, fh, indent=1)
    with open(sys.argv[2][:-len(".json")] + ".svg", "w") as fh:
        fh.write(svg(doc))
    print(table(doc))
