#!/usr/bin/env python3
"""Paging benchmark: the Wan DiT larger than the cap, under VPAGE_PAGING=demand,
next to the same model fully resident, in one run on one GPU.

    python3 bench/paging_bench.py build-gpu/libvpage.so --out DIR [--runs 1.3B,1.3B-file,14B]

Each row is one process of bench/run_wan.py. While it runs, the device's own
memory use is sampled with nvidia-smi every 100 ms; "device growth" is the
highest sample minus the one before the process started. That is the check
that the driver moves nothing on its own: the UVM driver keeps the physical
memory of pages that once were on the GPU, so the growth is the high-water
mark of real residency (plus the context), whatever vpage's books say.
Rows: time per step, ratio to the resident run, output checksum (identical
or not), vpage's paging stats. Writes DIR/<date>-<gpu>-paging.json.

Every paged byte lives in host RAM and VPAGE_PAGED_LIMIT keeps the managed
memory of one process below what the card has free (the lent card is shared).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

from vpage_query import DeviceSampler

HERE = os.path.dirname(os.path.abspath(__file__))
GiB = 1 << 30


def run(args, env_extra, lib, timeout):
    """Runs run_wan.py; returns its JSON result plus device growth and wall time."""
    fd, out = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    env = dict(os.environ)
    env["RUN_WAN_DEVICE_USED"] = "1"
    for k in [k for k in env if k.startswith("VPAGE_")] + ["LD_PRELOAD"]:
        env.pop(k, None)
    env.update(env_extra)
    if lib:
        env["LD_PRELOAD"] = lib
    t0 = time.time()
    with DeviceSampler() as dev:
        p = subprocess.run([sys.executable, os.path.join(HERE, "run_wan.py"), *args, "--json", out],
                           capture_output=True, text=True, env=env, timeout=timeout)
    wall = time.time() - t0
    res = {"returncode": p.returncode, "wall_s": wall, "device_growth_mib": dev.peak() - dev.base,
           "env": env_extra, "args": args}
    if p.returncode == 0:
        with open(out) as fh:
            res.update(json.load(fh))
    else:
        res["stderr"] = p.stderr[-3000:]
    os.unlink(out)
    tail = [l for l in p.stdout.splitlines() if l.startswith("step")][-1:] + p.stderr.splitlines()[-3:]
    print(f"  {' '.join(args)} {env_extra}: rc {p.returncode}, wall {wall:.1f} s, "
          f"device growth {res['device_growth_mib']} MiB; {' | '.join(tail)}", flush=True)
    return res


def paging_summary(r):
    v = r.get("vpage") or {}
    devs = (v.get("paging") or {}).get("devices") or [{}]
    return devs[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lib")
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", default="1.3B,1.3B-file,14B")
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--policies", default="lru,loop")
    a = ap.parse_args()
    lib = os.path.abspath(a.lib)
    os.makedirs(a.out, exist_ok=True)
    import torch
    gpu = torch.cuda.get_device_name(0)
    free_b, _ = torch.cuda.mem_get_info()
    limit = int(free_b * 0.8)  # managed memory of one process stays below the card's free memory
    print(f"GPU {gpu}, {free_b / GiB:.1f} GiB free; VPAGE_PAGED_LIMIT={limit}", flush=True)
    rows = []
    path = os.path.join(a.out, f"{datetime.date.today().isoformat()}-{gpu.replace(' ', '-')}-paging.json")

    def save():
        """Written after every row, so a run cut short keeps what it measured."""
        doc = {"gpu": gpu, "date": datetime.date.today().isoformat(), "tokens": a.tokens, "paged_limit": limit,
               "rows": rows}
        with open(path, "w") as fh:
            json.dump(doc, fh, indent=1)

    def compare(name, args, caps, extra_envs=({},), steps=3, timeout=400):
        print(f"== {name}", flush=True)
        base = run([*args, "--steps", str(steps)], {}, None, timeout)
        base["row"] = f"{name}: resident, no preload"
        rows.append(base)
        save()
        for cap in caps:
            for extra in extra_envs:
                env = {"VPAGE_PAGING": "demand", "VPAGE_CAP": cap, "VPAGE_PAGED_LIMIT": str(limit), **extra}
                r = run([*args, "--steps", str(steps)], env, lib, timeout)
                r["row"] = f"{name}: vpage demand, cap {cap}" + "".join(f", {k}={v}" for k, v in extra.items())
                if r["returncode"] == 0 and base["returncode"] == 0:
                    r["identical"] = r["checksum"] == base["checksum"]
                    r["ratio_to_resident"] = r["median_step_s"] / base["median_step_s"]
                r["paging"] = paging_summary(r)
                rows.append(r)
                save()

    runs = a.runs.split(",")
    tok = ["--tokens", str(a.tokens)]
    pol = [{"VPAGE_POLICY": p} for p in a.policies.split(",")]
    if "1.3B" in runs:
        compare("Wan 1.3B", ["--model", "1.3B", *tok], ["1G", "2G"], pol)
    if "probe" in runs:
        # where does device memory beyond the cap come from: almost nothing
        # prefetched (one 64 MiB chunk fits), or nothing ever evicted
        compare("Wan 1.3B (placement probe)", ["--model", "1.3B", *tok], ["64M", "40G"], ({"VPAGE_CHUNK": "64M"},))
    if "1.3B-file" in runs:
        path = os.path.join(tempfile.gettempdir(), "vpage-wan-1.3B.safetensors")
        print("== saving the 1.3B weights", flush=True)
        run(["--model", "1.3B", "--steps", "0", "--save-weights", path], {}, None, 600)
        compare("Wan 1.3B from safetensors", ["--model", "1.3B", *tok, "--load-weights", path], ["1G"],
                ({"VPAGE_CLEAN_EVICT": "collapse"}, {"VPAGE_CLEAN_EVICT": "writeback"}))
        os.unlink(path)
    if "14B" in runs:
        compare("Wan 14B", ["--model", "14B", *tok], ["8G"], pol, steps=3)

    save()
    print(f"wrote {path}")
    for r in rows:
        pg = r.get("paging") or {}
        print(f"{r['row']:<70} step {r.get('median_step_s', float('nan')):.3f} s "
              f"x{r.get('ratio_to_resident', 1.0):.2f} identical={r.get('identical', '-')} "
              f"growth {r['device_growth_mib']} MiB resident_peak {pg.get('resident_peak', 0) / GiB:.2f} GiB "
              f"in {pg.get('bytes_in', 0) / GiB:.1f} GiB wb {pg.get('bytes_writeback', 0) / GiB:.1f} GiB "
              f"collapsed {pg.get('bytes_collapsed', 0) / GiB:.1f} GiB used {r.get('device_used_mib')}")


if __name__ == "__main__":
    main()
