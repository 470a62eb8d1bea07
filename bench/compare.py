#!/usr/bin/env python3
"""vpage next to the tools a user would pick instead: one command, one GPU.

    python3 bench/compare.py build-gpu/libvpage.so --out bench/results [--workloads wan-14B,llm-8B]

For each workload, one process per row (bench/run_wan.py or bench/run_llm.py):
  resident      no preload, the model fully on the GPU (the upper bound)
  vpage         the preload without a cap (its overhead)
  off, demand, stream
                the preload at each cap, in each paging mode (off: the cap is a wall)
  stream-demand stream mode without lookahead (VPAGE_STREAM_AHEAD=off): demand paging
  stream-table  stream mode replaying the page table the stream row saved at
                the same cap (VPAGE_TABLE: the stream row is a program's first
                run, recording; this is its next run, every step planned)
  stream-placed stream mode, new allocations placed on the device (VPAGE_STREAM_PLACE=device)
  stream-async  stream mode under PyTorch's stream-ordered allocator
                (PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync: pager/apool.h)
  group         diffusers group offloading, block level, on a side stream
  sequential    accelerate's cpu_offload
and, computed, the transfer lower bound at each cap (bench/compare_lib.py).
A workload loaded from files (wan-14B-files, llm-8B-files) first writes
its checkpoint into --files DIR unless it is there, then drops the files
from the page cache before each row, so every row reads them from disk; its rows also
carry the load's time and the host memory the row filled, page cache
included (host_filled_mib). --rows picks rows and the order they run in, --caps the caps; --trace DIR
keeps each vpage row's trace there (WORKLOAD-ROW-CAP.trace.gz).
While a row runs, the device's own memory use is sampled with nvidia-smi;
its peak over the timed window, above what the device used before the
process started, is the row's device peak.

Writes <out>/<date>-<GPU>.json after every row (a run cut short keeps what
it measured) and <out>/<date>-<GPU>.svg at the end. --merge keeps the rows
of other workloads already in that file, so the workloads can be measured
in separate calls on the same GPU (the file refuses rows from another GPU).
Every paged byte lives in host RAM: VPAGE_PAGED_LIMIT keeps the managed
memory of one process below what the card has free (the card is shared).
"""
import argparse
import copy
import datetime
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import compare_lib
from vpage_query import DeviceSampler

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = {
    # 5 steps: the median is a step after the pager has seen two (stream mode learns the loop)
    "wan-14B": dict(script="run_wan.py", args=["--model", "14B", "--tokens", "4096", "--steps", "5"],
                    caps_gib=[8, 16, 24], unit="step", title="Wan 2.1 14B DiT, 4096 tokens, bf16, 5 steps"),
    # 480p, 81 frames: compute-bound, so streaming can hide behind it; 5 steps (about 3.5 s each resident on an
    # H100), as for 4096 tokens: with 3 the median was the first step after learning, and no later one was seen
    "wan-14B-32k": dict(script="run_wan.py", args=["--model", "14B", "--tokens", "32760", "--steps", "5"],
                        caps_gib=[8, 16, 24], unit="step", title="Wan 2.1 14B DiT, 32760 tokens, bf16, 5 steps"),
    "wan-1.3B": dict(script="run_wan.py", args=["--model", "1.3B", "--tokens", "4096", "--steps", "3"],
                     caps_gib=[1, 2], unit="step", title="Wan 2.1 1.3B DiT, 4096 tokens, bf16, 3 steps"),
    # --deterministic: without it two resident runs differ (results/*-llm-determinism.json)
    "llm-8B": dict(script="run_llm.py", args=["--prompt", "512", "--new-tokens", "64", "--deterministic"],
                   caps_gib=[8, 16], unit="token", title="Llama-3-8B-shaped, prefill 512 tokens, decode 64, bf16"),
    # the 14B as users load it: a diffusers checkpoint on disk (written once by the harness, --files), read by
    # from_pretrained into host memory and moved to the GPU; each row starts with the files out of the page cache
    "wan-14B-files": dict(script="run_wan.py", args=["--model", "14B", "--impl", "diffusers", "--tokens", "4096",
                                                     "--steps", "5"], files=True, caps_gib=[8, 16], unit="step",
                          title="Wan 2.1 14B DiT from its checkpoint's files (from_pretrained, then .to('cuda')), "
                                "4096 tokens, bf16, 5 steps"),
    # the decode as users load it: a transformers checkpoint on disk, as wan-14B-files
    "llm-8B-files": dict(script="run_llm.py", args=["--prompt", "512", "--new-tokens", "64", "--deterministic"],
                         files=True, caps_gib=[8, 16], unit="token",
                         title="Llama-3-8B-shaped from its checkpoint's files (from_pretrained, then .to('cuda')), "
                               "prefill 512 tokens, decode 64, bf16"),
    # small shapes, for a check of the harness itself
    "wan-tiny": dict(script="run_wan.py", args=["--model", "tiny", "--tokens", "1024", "--steps", "3"],
                     caps_gib=[0.0625], unit="step", title="Wan-shaped DiT, 2 tiny blocks (harness check)"),
    "llm-tiny": dict(script="run_llm.py", args=["--layers", "2", "--hidden", "512", "--prompt", "64",
                                                "--new-tokens", "8"],
                     caps_gib=[0.0625], unit="token", title="Llama-shaped, 2 tiny layers (harness check)"),
}


def h2d_bytes_per_s():
    """Pinned host-to-device copy bandwidth, best of 5 copies of 1 GiB, in a child process."""
    code = ("import torch,time\n"
            "h=torch.empty(1<<30,dtype=torch.uint8).pin_memory();d=torch.empty(1<<30,dtype=torch.uint8,device='cuda')\n"
            "best=9e9\n"
            "for _ in range(5):\n"
            " torch.cuda.synchronize();t=time.perf_counter();d.copy_(h,non_blocking=True);torch.cuda.synchronize()\n"
            " best=min(best,time.perf_counter()-t)\n"
            "print((1<<30)/best)\n")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                timeout=120).stdout.split()[-1])


def spec(row, cap, lib, paged_limit, table=None):
    """(environment, preload, offload) of a row; table: the page table's file of the stream and stream-table rows
    at this cap (None: the stream row records none)."""
    if row == "resident":
        return {}, None, "none"
    if row == "vpage":
        return {"VPAGE_CAP": "none"}, lib, "none"
    if row == "off":
        return {"VPAGE_CAP": f"{int(cap * 1024)}M", "VPAGE_PAGING": "off"}, lib, "none"
    if row in ("demand", "stream", "stream-table", "stream-placed", "stream-demand", "stream-async"):
        env = {"VPAGE_CAP": f"{int(cap * 1024)}M", "VPAGE_PAGING": row.split("-")[0],
               "VPAGE_PAGED_LIMIT": str(paged_limit)}
        if row == "stream-placed":
            env["VPAGE_STREAM_PLACE"] = "device"
        if row == "stream-demand":
            env["VPAGE_STREAM_AHEAD"] = "off"
        if row == "stream-async":
            env["PYTORCH_CUDA_ALLOC_CONF"] = "backend:cudaMallocAsync"
        if row in ("stream", "stream-table") and table:
            env["VPAGE_TABLE"] = table
        return env, lib, "none"
    return {}, None, row  # group, sequential: the peers, without the preload


def why_failed(p):
    """The line of a failed run that says why."""
    lines = [l for l in (p.stderr + p.stdout).splitlines() if l.strip()]
    for l in reversed(lines):
        if "out of memory" in l.lower() or "Error" in l:
            return l.strip()[:300]
    return (lines[-1].strip()[:300] if lines else f"exit status {p.returncode}")


def trace_file(trace_dir, name, row, cap):
    """Where a vpage row's trace goes (--trace), or None."""
    if not trace_dir:
        return None
    return os.path.join(trace_dir, f"{name}-{row}" + (f"-{cap:g}G" if cap is not None else "") + ".trace")


def row_env(base, env_extra, preload, trace):
    """A row's environment: base without vpage's variables, then the row's, the preload and its trace."""
    env = {k: v for k, v in base.items() if not k.startswith("VPAGE_") and k != "LD_PRELOAD"}
    env.update(env_extra)
    if preload:
        env["LD_PRELOAD"] = preload
        if trace:
            env["VPAGE_TRACE"] = trace
    return env


def checkpoint(w, files, timeout):
    """Writes a files workload's checkpoint into FILES unless it is there (no preload, the model built on the
    GPU as in the other workloads); returns FILES."""
    if not os.path.exists(os.path.join(files, "config.json")):
        print(f"  writing the checkpoint into {files}", flush=True)
        subprocess.run([sys.executable, os.path.join(HERE, w["script"]), *w["args"], "--save-pretrained", files],
                       check=True, timeout=timeout, env=row_env(os.environ, {}, None, None))
        os.sync()
    return files


def drop_cached(folder):
    """Asks the kernel to drop the page cache of the files in folder (they are clean: written and synced)."""
    for root, _, names in os.walk(folder):
        for n in names:
            fd = os.open(os.path.join(root, n), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def table_file(tables, name, row, cap, rows):
    """The page table's file of a stream or stream-table row (--tables DIR), or None: only where the call runs
    the stream-table row, whose table the stream row at that cap records."""
    if row not in ("stream", "stream-table") or "stream-table" not in rows:
        return None
    return os.path.join(tables, f"{name}-{cap:g}G.table")


def run_row(w, name, row, cap, lib, paged_limit, timeout, trace_dir=None, files=None, table=None):
    env_extra, preload, offload = spec(row, cap, lib, paged_limit, table)
    trace = trace_file(trace_dir, name, row, cap)
    env = row_env(os.environ, env_extra, preload, trace)
    fd, out = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    cmd = [sys.executable, os.path.join(HERE, w["script"]), *w["args"], "--offload", offload, "--json", out]
    if files:
        cmd[-2:-2] = ["--from-pretrained", files]
        drop_cached(files)
    r = {"workload": name, "row": row, "cap_gib": cap, "env": env_extra, "args": cmd[2:-2]}
    t0 = time.time()
    try:
        with DeviceSampler() as dev:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        r.update(status="failed", why=f"timed out after {timeout} s")
    else:
        if p.returncode == 0:
            with open(out) as fh:
                res = json.load(fh)
            r.update(res, status="ok", time_s=res["median_step_s"] if w["unit"] == "step" else res["s_per_token"])
            t_a, t_b = res["timed_window"]
            r["device_peak_mib"] = dev.peak(t_a, t_b) - dev.base
            r["device_peak_any_mib"] = dev.peak() - dev.base
            r["host_taken_mib"] = dev.host_taken_mib()
            r["host_filled_mib"] = dev.host_filled_mib()
            r["load_s"] = res.get("build_s")
        else:
            r.update(status="failed", why=why_failed(p), stderr_tail=p.stderr[-2000:])
    os.unlink(out)
    if preload and trace and os.path.exists(trace):
        subprocess.run(["gzip", "-f", trace], check=False)
        r["trace"] = os.path.basename(trace) + ".gz"
    r["wall_s"] = time.time() - t0
    print(f"  {name} {row} cap {cap}: {r['status']} {r.get('why', '')} time {r.get('time_s')} "
          f"device peak {r.get('device_peak_mib')} MiB, host taken {r.get('host_taken_mib')} MiB "
          f"(with page cache {r.get('host_filled_mib')}), load {r.get('load_s')} s, "
          f"wall {r['wall_s']:.0f} s", flush=True)
    return r


def diffusers_missing():
    try:
        importlib.import_module("diffusers.hooks")
    except ImportError as e:
        return f"diffusers cannot be imported here ({e})"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lib")
    ap.add_argument("--out", required=True)
    ap.add_argument("--workloads", default="wan-14B,llm-8B")
    ap.add_argument("--rows", default=",".join(compare_lib.ROWS),
                    help="rows to run, in this order (a call cut short keeps the first ones)")
    ap.add_argument("--merge", action="store_true", help="keep other workloads' rows of today's file")
    ap.add_argument("--caps", help="caps in GiB for the capped rows (default: the workload's), e.g. 8,16")
    ap.add_argument("--timeout", type=int, default=420, help="seconds per row")
    ap.add_argument("--files", metavar="DIR", default=os.path.join(tempfile.gettempdir(), "vpage-checkpoints"),
                    help="where workloads loaded from files keep their checkpoints (one folder each)")
    ap.add_argument("--tables", metavar="DIR", default=os.path.join(tempfile.gettempdir(), "vpage-tables"),
                    help="where the stream rows write the page tables the stream-table rows replay (a copy of each "
                         "goes next to the results: <date>-<GPU>-WORKLOAD-CAPG.table)")
    ap.add_argument("--trace", metavar="DIR", help="each vpage row writes its trace (VPAGE_TRACE) here, gzipped: "
                                                  "WORKLOAD-ROW-CAP.trace.gz, for scripts/vpage-trace")
    a = ap.parse_args()
    rows = a.rows.split(",")  # run in the order given (finish() sorts them for the tables)
    chosen_caps = [float(x) for x in a.caps.split(",")] if a.caps else None
    unknown = [r for r in rows if r not in compare_lib.ROWS]
    if unknown:
        ap.error(f"unknown rows {','.join(unknown)}; the rows are {','.join(compare_lib.ROWS)}")
    lib = os.path.abspath(a.lib)
    os.makedirs(a.out, exist_ok=True)
    if a.trace:
        os.makedirs(a.trace, exist_ok=True)
    os.makedirs(a.tables, exist_ok=True)
    if os.environ.get("BENCH_DEVICE", "cuda") == "cuda":
        import torch  # only for the GPU's name and free memory
        gpu = torch.cuda.get_device_name(0)
        free_b, _ = torch.cuda.mem_get_info()
        bw = h2d_bytes_per_s()
    else:  # a check of the scripts (bench/workload.py): nothing measured means anything
        gpu, free_b, bw = "cpu", 16 << 30, 1e10
    date = datetime.date.today().isoformat()
    stem = os.path.join(a.out, f"{date}-{gpu.replace(' ', '-')}")
    names = a.workloads.split(",")
    doc = {"kind": "compare", "date": date, "gpu": gpu, "workloads": {}, "rows": []}
    if a.merge and os.path.exists(stem + ".json"):
        old = json.load(open(stem + ".json"))
        assert old["gpu"] == gpu, "--merge: that file was measured on another GPU"
        doc["workloads"] = {k: v for k, v in old["workloads"].items() if k not in names}
        doc["rows"] = [r for r in old["rows"] if r["workload"] not in names and r["row"] != "bound"]
    paged_limit = int(free_b * 0.8)
    missing = diffusers_missing()
    print(f"GPU {gpu}, {free_b / 2**30:.1f} GiB free, pinned H2D {bw / 1e9:.1f} GB/s; "
          f"VPAGE_PAGED_LIMIT={paged_limit}; diffusers: {missing or 'yes'}", flush=True)

    def save():
        """Writes the finished document (a copy: doc keeps only what was measured) and returns it."""
        done = compare_lib.finish(copy.deepcopy(doc))
        with open(stem + ".json", "w") as fh:
            json.dump(done, fh, indent=1)
        return done

    for name in names:
        w = WORKLOADS[name]
        doc["workloads"][name] = dict({k: w[k] for k in ("title", "unit", "caps_gib")}, h2d_bytes_per_s=bw,
                                      files=bool(w.get("files")))
        print(f"== {name}", flush=True)
        files = checkpoint(w, os.path.join(a.files, name), a.timeout) if w.get("files") else None
        for row in rows:
            if row == "group" and missing:
                doc["rows"].append({"workload": name, "row": row, "status": "skipped", "why": missing})
                continue
            caps = chosen_caps or w["caps_gib"]
            for cap in (caps if row in compare_lib.CAPPED else [None]):
                table = table_file(a.tables, name, row, cap, rows)
                if row == "stream" and table and os.path.exists(table):
                    os.unlink(table)  # the stream row is a first run: it learns online and records
                if row == "stream-table" and not os.path.exists(table):
                    doc["rows"].append({"workload": name, "row": row, "cap_gib": cap, "status": "skipped",
                                        "why": "no page table: the stream row at this cap saved none"})
                    continue
                doc["rows"].append(run_row(w, name, row, cap, lib, paged_limit, a.timeout, a.trace, files, table))
                if row == "stream" and table and os.path.exists(table):
                    shutil.copyfile(table, f"{stem}-{name}-{cap:g}G.table")
                save()
    final = save()
    with open(stem + ".svg", "w") as fh:
        fh.write(compare_lib.svg(final))
    print(compare_lib.table(final))
    print(f"wrote {stem}.json and {stem}.svg")


if __name__ == "__main__":
    main()
