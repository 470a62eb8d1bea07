#!/usr/bin/env python3
"""The GPU suite: real PyTorch under LD_PRELOAD=libvpage.so on an NVIDIA GPU.

    python3 tests/gpu/run_gpu_suite.py build/libvpage.so [--out DIR] [--only MODE|paging|stream|models|weights]
    (DIR gets gpu-suite.json)

For each PyTorch allocator mode (default, expandable_segments:True,
backend:cudaMallocAsync):
  cap       torch.cuda.mem_get_info() reports the cap; filling the device
            ends in torch.OutOfMemoryError with vpage's message on stderr;
            the device's own use (nvidia-smi) at that peak stays within the
            cap plus the context overhead; memory is usable after the OOM
  identical a CNN/MLP (cuDNN, cuBLAS) and a CUDA graph replay give outputs
            bit-identical to the run without the preload
  counted   with no cap, vpage's counted bytes move as the device's own free
            memory does (cuMemGetInfo delta), within module/workspace overhead
and once:
  stream    the same with VPAGE_PAGING=stream (pieces move in and out), under
            PyTorch's default allocator, under backend:cudaMallocAsync
            (its cuMemAllocAsync served by vpage's cache, pager/apool.h) and
            under expandable_segments:True (turned off under paging)
  paging    with VPAGE_PAGING=demand and a cap below the model's memory, the
            model's outputs are bit-identical to the run without the
            preload, the pager's resident peak stays within the cap, and,
            the card being larger than the cap, it placed chunks once
            without evicting
  weights   a safetensors file loaded with safetensors.torch.load_file to the
            GPU: vpage names every tensor's device bytes and counts them as
            clean copies of the file; peak host RSS reported next to the size
  models    the models of issue 4, random weights with a fixed seed: a Wan 2.1
            14B-shaped DiT (28 GB bf16, 4096 tokens, 2 steps) and a
            Llama-3-8B-shaped LLM (16 GB bf16, prefill 512, decode 8) under
            VPAGE_PAGING=stream at caps of 8 and 16 GiB, and at 8 GiB under
            PyTorch's backend:cudaMallocAsync: the output's checksum
            (SHA-256 of all its bytes) equals the run's without the preload,
            and the device's own peak use, sampled from outside the process
            with nvidia-smi, stays within the cap plus the context overhead
            (about 3.5 minutes on an H100, the whole suite about 6; --only
            models runs just these; a model whose uncapped run cannot fit
            the device's free memory is skipped, with a SKIP line)
Exits 77 (skipped) where there is no GPU or no PyTorch. Ends with one line
'N passed, N failed'.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(HERE, "..", "..", "bench")
sys.path.insert(0, BENCH)
from compare import row_env  # noqa: E402  (bench/: no torch at import)
from vpage_query import DeviceSampler, device_free_mib, device_used_mib  # noqa: E402
MiB = 1 << 20
GiB = 1 << 30
CAP = 4 * GiB
CONTEXT_OVERHEAD = 1024 * MiB   # context, modules, cuBLAS/cuDNN handles: not allocations
MODES = {"default": "", "expandable": "expandable_segments:True", "async": "backend:cudaMallocAsync"}

results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)


def skip(why):
    print(f"SKIP gpu suite: {why}")
    sys.exit(77)


def run_child(scenario, out, preload, env_extra, timeout=600):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.pop("VPAGE_CAP", None)
    env.update(env_extra)
    env["PYTHONUNBUFFERED"] = "1"
    env["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"  # deterministic cuBLAS, so runs can be compared bit for bit
    if preload:
        env["LD_PRELOAD"] = preload
    p = subprocess.run([sys.executable, os.path.join(HERE, "child.py"), scenario, out],
                       capture_output=True, text=True, env=env, timeout=timeout)
    res = None
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
    return p, res


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: run_gpu_suite.py path/to/libvpage.so [--out DIR]")
    lib = os.path.abspath(sys.argv[1])
    summary_dir = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else None
    outdir = tempfile.mkdtemp(prefix="vpage-gpu-")  # model outputs, compared then left behind
    if not shutil.which("nvidia-smi"):
        skip("no nvidia-smi: no NVIDIA GPU here")
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        skip("PyTorch is not installed")
    if probe.stdout.strip() != "True":
        skip("PyTorch sees no CUDA device")
    import torch  # noqa: E402  (only now: the checks above need no torch)
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    summary = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "modes": {}}

    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None  # a mode, or "weights"
    for mode, conf in MODES.items():
        if only and only != mode:
            continue
        env = {"PYTORCH_CUDA_ALLOC_CONF": conf} if conf else {}
        rec = summary["modes"][mode] = {}

        # --- cap ---
        base = device_used_mib()
        p, r = run_child("oom", os.path.join(outdir, f"oom-{mode}.pt"), lib,
                         {**env, "VPAGE_CAP": str(CAP), "VPAGE_STATS": "1"})
        rec["oom"] = {k: v for k, v in (r or {}).items() if k != "stats"}
        rec["oom"]["baseline_device_used_mib"] = base
        ok = p.returncode == 0 and r is not None
        check(f"{mode}/cap: child ran", ok, "" if ok else p.stderr[-3000:])
        if ok:
            check(f"{mode}/cap: mem_get_info total is the cap", r["mem_get_info_total"] == CAP,
                  f"{r['mem_get_info_total']} vs {CAP}")
            check(f"{mode}/cap: torch raised OutOfMemoryError", r["oom_message"] is not None, r["oom_message"] or "")
            check(f"{mode}/cap: vpage's message on stderr",
                  "refused" in p.stderr and "VPAGE_CAP" in p.stderr,
                  next((l for l in p.stderr.splitlines() if "refused" in l), "no vpage line")[:300])
            counted = r["counted"]
            check(f"{mode}/cap: counted peak within the cap", counted and counted[1] <= CAP, str(counted))
            filled = r["tensors"] * 256 * MiB
            check(f"{mode}/cap: the program got most of the cap", filled >= CAP - 768 * MiB,
                  f"{r['tensors']} x 256 MiB")
            used = r["device_used_mib"]
            if used is not None:
                grew = (used - base) * MiB
                check(f"{mode}/cap: device use at the peak <= cap + context overhead",
                      grew <= CAP + CONTEXT_OVERHEAD,
                      f"device grew {grew / MiB:.0f} MiB; cap {CAP / MiB:.0f} MiB")
            check(f"{mode}/cap: memory usable again after the OOM", r["after_free_ok"])

        # --- identical outputs, and counted vs device ---
        ref = os.path.join(outdir, f"model-{mode}-ref.pt")
        got = os.path.join(outdir, f"model-{mode}-vpage.pt")
        p0, r0 = run_child("model", ref, None, env)
        p1, r1 = run_child("model", got, lib, {**env, "VPAGE_CAP": str(CAP)})
        ok = p0.returncode == 0 and p1.returncode == 0
        check(f"{mode}/identical: both runs ran", ok, "" if ok else (p0.stderr + p1.stderr)[-3000:])
        if ok:
            a = torch.load(ref)
            b = torch.load(got)
            same = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
            check(f"{mode}/identical: outputs bit for bit", same, ", ".join(a.keys()))
        p2, r2 = run_child("model", os.path.join(outdir, f"model-{mode}-nocap.pt"), lib, env)
        if p2.returncode == 0 and r2 and r2["counted_delta"] is not None:
            dev, cnt = r2["device_delta"], r2["counted_delta"]
            rec["counted"] = {"device_delta": dev, "counted_delta": cnt}
            check(f"{mode}/counted: counted bytes follow the device's own view",
                  cnt > 0 and cnt <= dev + 64 * MiB and dev - cnt <= 512 * MiB,
                  f"device {dev / MiB:.1f} MiB, counted {cnt / MiB:.1f} MiB")
            s = r2["stats"]
            top = [k["name"] for k in s["kernels"]["top"]][:3]
            check(f"{mode}/counted: launches recorded with kernel names",
                  s["kernels"]["launches"] > 0 and all(n != "?" for n in top), f"{s['kernels']['launches']} "
                  f"launches, top {top}")
            rec["entry_points"] = s["entry_points"]
        else:
            check(f"{mode}/counted: run without a cap", False, p2.stderr[-3000:])

    # --- paging ---
    if not only or only == "paging":
        paging_checks(outdir, lib, summary)
    if not only or only == "stream":
        stream_checks(outdir, lib, summary)

    if not only or only == "models":
        model_checks(lib, summary)

    # --- weight files ---
    if only and only != "weights":
        return finish(summary, summary_dir)
    wpath = os.path.join(outdir, "weights.safetensors")
    from safetensors.torch import save_file
    g = torch.Generator().manual_seed(7)
    sd = {f"blocks.{i}.{k}": torch.randn(*shape, generator=g).to(torch.bfloat16)
          for i in range(8) for k, shape in (("attn.qkv.weight", (3072, 1024)), ("attn.qkv.bias", (3072,)),
                                             ("ffn.up.weight", (4096, 1024)))}
    save_file(sd, wpath)
    import inspect
    from safetensors.torch import load_file
    backends = ["mmap"] + (["pread"] if "backend" in inspect.signature(load_file).parameters else [])
    for be in backends:
        p, r = run_child("weights", wpath, lib, {"VPAGE_CAP": str(CAP), "WEIGHTS_BACKEND": be})
        ok = p.returncode == 0 and r is not None
        check(f"weights/{be}: load_file to the GPU ran", ok, "" if ok else p.stderr[-3000:])
        if not ok:
            continue
        fr = r["file"] or {}
        summary.setdefault("weights", {})[be] = r
        check(f"weights/{be}: every tensor named by its device address", r["names_match"] == r["tensors"] == len(sd),
              f"{r['names_match']} of {r['tensors']}")
        check(f"weights/{be}: the file's header read, its tensors all on the device as clean copies",
              fr.get("header") == "ok" and fr.get("tensors") == len(sd) and fr.get("tensors_on_device") == len(sd)
              and fr.get("device_clean_bytes") == r["bytes"], json.dumps(fr))
        print(f"INFO weights/{be}: file {r['file_size'] / MiB:.1f} MiB, peak host RSS {r['peak_rss'] / MiB:.1f} MiB "
              f"(before loading {r['rss_before'] / MiB:.1f} MiB)", flush=True)

    finish(summary, summary_dir)


PAGING_CAP = 96 * MiB  # the model's Linear(8192, 4096) alone is 128 MiB


def paged_model_run(outdir, lib, summary, label, mode, alloc_conf=""):
    """Runs the model without the preload and under VPAGE_PAGING=mode with a cap below its memory, both with
    PYTORCH_CUDA_ALLOC_CONF=alloc_conf; checks both ran and gave the same outputs bit for bit. Returns the
    pager's stats of device 0 (and the entry points' under "entry_points"), or None if a run failed."""
    import torch
    ref = os.path.join(outdir, f"model-{label}-ref.pt")
    got = os.path.join(outdir, f"model-{label}-vpage.pt")
    conf = {"PYTORCH_CUDA_ALLOC_CONF": alloc_conf}
    p0, r0 = run_child("model", ref, None, conf)
    p1, r1 = run_child("model", got, lib, {**conf, "VPAGE_PAGING": mode, "VPAGE_CAP": str(PAGING_CAP),
                                           "VPAGE_CHUNK": "8M", "VPAGE_PAGED_LIMIT": "8G"})
    ok = p0.returncode == 0 and p1.returncode == 0 and r1 is not None
    check(f"{label}: both runs ran", ok, "" if ok else (p0.stderr + p1.stderr)[-3000:])
    if not ok:
        return None
    a, b = torch.load(ref), torch.load(got)
    check(f"{label}: outputs bit for bit", a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a),
          ", ".join(a.keys()))
    pg = r1["stats"]["paging"]
    summary[label] = pg
    dev = dict(pg["devices"][0]) if pg["devices"] else {}
    dev["entry_points"] = r1["stats"]["entry_points"]
    dev["graphs"] = r1["stats"].get("graphs", {})
    return dev


def paging_checks(outdir, lib, summary):
    dev = paged_model_run(outdir, lib, summary, "paging", "demand")
    if dev is None:
        return
    check("paging: allocations were paged", dev.get("paged_peak", 0) > PAGING_CAP, json.dumps(dev))
    check("paging: resident peak within the cap", 0 < dev.get("resident_peak", 0) <= PAGING_CAP, json.dumps(dev))
    # the card is larger than the cap: the pager places chunks once rather than
    # evict (the UVM driver would keep the memory of evicted chunks)
    check("paging: chunks came in, placed once (no evictions on a card larger than the cap)",
          dev.get("bytes_in", 0) > 0 and dev.get("evictions_stopped") == 1 and dev.get("evictions") == 0,
          json.dumps(dev))
    check("paging: the driver refused nothing", dev.get("driver_errors", 1) == 0, json.dumps(dev))


def stream_checks(outdir, lib, summary):
    """Stream mode under PyTorch's default allocator (cuMemAlloc segments), under backend:cudaMallocAsync
    (cuMemAllocAsync from the default pool: pager/apool.h), and under expandable_segments:True (turned off
    under paging before PyTorch reads it: core/torchenv.c; its VMM chunks would not be paged)."""
    for label, conf in (("stream", ""), ("stream-async", "backend:cudaMallocAsync"),
                        ("stream-expandable", "expandable_segments:True")):
        dev = paged_model_run(outdir, lib, summary, label, "stream", conf)
        if dev is None:
            continue
        ep, graphs = dev.pop("entry_points"), dev.pop("graphs")
        d = json.dumps(dev)
        # the model's CUDA graph, captured once and replayed three times (child.py)
        check(f"{label}: the graph's replays brought in what its captured kernels touch",
              graphs.get("captured", 0) >= 1 and graphs.get("replays_known", 0) >= 3, json.dumps(graphs))
        check(f"{label}: allocations were streamed", dev.get("streamed_peak", 0) > PAGING_CAP, d)
        check(f"{label}: resident peak within the cap", 0 < dev.get("resident_peak", 0) <= PAGING_CAP, d)
        check(f"{label}: pieces came in and went out", dev.get("moves_in", 0) > 0 and dev.get("moves_out", 0) > 0, d)
        check(f"{label}: the driver refused nothing", dev.get("driver_errors", 1) == 0, d)
        if "cudaMallocAsync" in conf:
            calls = ep.get("cuMemAllocAsync", {}).get("calls", 0) + ep.get("cuMemAllocAsync_ptsz", {}).get("calls", 0)
            check(f"{label}: PyTorch allocated with cuMemAllocAsync, and the cache served and reused blocks",
                  calls > 0 and dev.get("async_made", 0) > 0 and dev.get("async_reused", 0) > 0,
                  f"{calls} calls; {d}")


# issue 4's models (bench/run_wan.py, bench/run_llm.py: random weights, seed 0), the device memory their
# uncapped runs need (an H100: 28.1 and 16.0 GiB seen, plus the context), and the caps
MODELS = {
    "wan-14B": (["run_wan.py", "--model", "14B", "--tokens", "4096", "--steps", "4"], 32 * GiB),
    "llm-8B": (["run_llm.py", "--prompt", "512", "--new-tokens", "8", "--deterministic"], 18 * GiB),
}
# (cap in GiB, PYTORCH_CUDA_ALLOC_CONF, replay): PyTorch's default allocator at both caps, its stream-ordered
# one (cuMemAllocAsync, vpage's cache: pager/apool.h) at the smaller; the first run writes its page table
# (VPAGE_TABLE) and the last reads it back and replays it (pager/replay.h)
MODEL_RUNS = ((8, "", False), (16, "", False), (8, "backend:cudaMallocAsync", False), (8, "", True))


def run_model(args, preload, env_extra, timeout=400):
    """Runs bench/ARGS[0] with --json; returns (process, its result or None, the device's peak use over the whole
    run above what it used before, in bytes, sampled from outside the process)."""
    env = row_env(os.environ, dict(env_extra, PYTHONUNBUFFERED="1"), preload, None)
    fd, out = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        with DeviceSampler() as dev:
            p = subprocess.run([sys.executable, os.path.join(BENCH, args[0]), *args[1:], "--json", out],
                               capture_output=True, text=True, env=env, timeout=timeout)
        res = None
        if p.returncode == 0:
            with open(out) as fh:
                res = json.load(fh)
    finally:
        os.unlink(out)
    return p, res, (dev.peak() - dev.base) * MiB


def model_checks(lib, summary):
    free = device_free_mib() * MiB
    for name, (args, needs) in MODELS.items():
        if free < needs:  # the uncapped run, the reference, cannot run here
            print(f"SKIP models/{name}: needs {needs / GiB:.0f} GiB free on the device, "
                  f"{free / GiB:.1f} GiB free", flush=True)
            continue
        p0, r0, peak0 = run_model(args, None, {})
        check(f"models/{name}: runs without the preload", r0 is not None, "" if r0 else p0.stderr[-3000:])
        if r0 is None:
            continue
        rec = summary.setdefault("models", {})[name] = {"uncapped": {"checksum": r0["checksum"],
                                                                     "device_peak_bytes": peak0}}
        table = os.path.join(tempfile.mkdtemp(prefix="vpage-table-"), f"{name}.table")
        for cap_gib, conf, replay in MODEL_RUNS:
            cap = cap_gib * GiB
            label = f"models/{name} at {cap_gib} GiB" + (f", {conf}" if conf else "") + (", table replayed" if replay else "")
            # the paged bytes live in host memory that the card maps: kept below what it has free (it is shared)
            p, r, peak = run_model(args, lib, {"VPAGE_CAP": f"{cap_gib}G", "VPAGE_PAGING": "stream",
                                               "VPAGE_PAGED_LIMIT": str(int(free * 0.8)),
                                               "PYTORCH_CUDA_ALLOC_CONF": conf,
                                               **({"VPAGE_TABLE": table} if cap_gib == 8 and not conf else {})})
            check(f"{label}: runs under VPAGE_PAGING=stream", r is not None, "" if r else p.stderr[-3000:])
            if r is None:
                continue
            dev0 = r["vpage"]["paging"]["devices"][0] if r.get("vpage") else {}
            rec[f"{cap_gib}G" + ("-async" if conf else "") + ("-replay" if replay else "")] = {
                "checksum": r["checksum"], "device_peak_bytes": peak, "paging": dev0}
            if replay:
                check(f"{label}: the table was read and followed",
                      dev0.get("replay_on") == 1 and dev0.get("replay_matched", 0) > dev0.get("replay_lost", 0),
                      json.dumps({k: v for k, v in dev0.items() if k.startswith("replay")}))
            check(f"{label}: output bit for bit", r["checksum"] == r0["checksum"]
                  and r.get("prefill_checksum") == r0.get("prefill_checksum"),
                  f"{r['checksum']} vs {r0['checksum']} without the preload")
            check(f"{label}: device's own peak use <= cap + context overhead", peak <= cap + CONTEXT_OVERHEAD,
                  f"device grew {peak / MiB:.0f} MiB at most; cap {cap / MiB:.0f} MiB")
            check(f"{label}: vpage's resident peak <= cap", 0 < dev0.get("resident_peak", 0) <= cap, json.dumps(dev0))
            if conf:  # torch's counters read the default pool's attributes, which count vpage's cache
                a, a0 = r.get("peak_allocated") or 0, r0.get("peak_allocated") or 0
                check(f"{label}: torch.cuda.max_memory_allocated() counts the cache's blocks",
                      0.8 * a0 <= a <= 1.25 * a0, f"{a / GiB:.2f} GiB; {a0 / GiB:.2f} GiB without the preload "
                                                  f"under the default allocator")
            if peak0 > cap + CONTEXT_OVERHEAD:  # larger than the cap: it was streamed through it
                check(f"{label}: larger than the cap ({peak0 / GiB:.1f} GiB without it), pieces came in and went out",
                      dev0.get("moves_in", 0) > 0 and dev0.get("moves_out", 0) > 0, json.dumps(dev0))


def finish(summary, summary_dir):
    passed = sum(ok for _, ok in results)
    failed = len(results) - passed
    summary["passed"], summary["failed"] = passed, failed
    if summary_dir:
        os.makedirs(summary_dir, exist_ok=True)
        with open(os.path.join(summary_dir, "gpu-suite.json"), "w") as f:
            json.dump(summary, f, indent=1)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
