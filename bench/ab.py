#!/usr/bin/env python3
"""One workload under several settings of vpage, side by side in one run.

    python3 bench/ab.py LIB --out FILE.json --name NAME=VAR=V,VAR=V [--name ...] -- SCRIPT ARGS...

Runs bench/SCRIPT (run_wan.py or run_llm.py) once per --name, one process
each, with LD_PRELOAD=LIB and the given VPAGE_ variables (nothing else of
vpage's from this environment), in the order given. LIB=PATH among a row's
variables preloads another build of the library for that row: two builds
of vpage (before and after a change) side by side in one run; LIB=none
preloads nothing (the program alone, the baseline of a load). Writes
FILE.json:
{"kind": "ab", "date", "gpu", "vpage" (--rev, or git describe of this tree),
"script", "rows": [{"name", "env", "lib" (the library it preloaded), "status", "time_s" (median step or
s_per_token), "ratio" (to the first row), "checksum", "paging" (the pager's
stats of device 0), "step_s", "moved_per_unit", "load_s" (the model's build or load), "host_taken_mib",
"host_filled_mib" (page cache counted) and "device_peak_mib" (sampled from outside, bench/vpage_query.py)}]}. A row that fails keeps
its stderr's last lines. For choosing defaults and showing what an option
does; the comparison with the peers is bench/compare.py's.
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lib")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", action="append", required=True, help="NAME=VAR=V,VAR=V")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per row")
    ap.add_argument("--drop", metavar="DIR", help="a checkpoint's folder whose files leave the page cache before "
                                                  "each row (rows that load from it: --from-pretrained DIR)")
    ap.add_argument("--rev", help="the vpage commit that runs (default: git describe here; a copied tree's git "
                                  "may describe another)")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    a = ap.parse_args(argv[:cut])
    script = argv[cut + 1:]
    if not script:
        ap.error("no script after --")
    lib = os.path.abspath(a.lib)
    try:
        import torch
        gpu = torch.cuda.get_device_name(0)
    except Exception:  # the scripts' CPU check (BENCH_DEVICE=cpu)
        gpu = "cpu"
    rev = a.rev or subprocess.run(["git", "describe", "--always", "--dirty"], cwd=HERE, capture_output=True,
                                  text=True).stdout.strip()
    doc = {"kind": "ab", "date": datetime.date.today().isoformat(), "gpu": gpu, "vpage": rev,
           "script": " ".join(script), "rows": []}
    base = {k: v for k, v in os.environ.items() if not k.startswith("VPAGE_") and k != "LD_PRELOAD"}
    for spec in a.name:
        name, _, sets = spec.partition("=")
        env_extra = dict(kv.split("=", 1) for kv in sets.split(",") if kv)
        row_lib = env_extra.pop("LIB", lib)
        row_lib = None if row_lib == "none" else os.path.abspath(row_lib)
        fd, out = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        fd, stats = tempfile.mkstemp(suffix=".stats.json")
        os.close(fd)
        env = dict(base, **env_extra, VPAGE_STATS_FILE=stats)
        if row_lib:
            env["LD_PRELOAD"] = row_lib
        row = {"name": name, "env": env_extra, "lib": row_lib}
        if a.drop:
            from compare import drop_cached
            drop_cached(a.drop)
        t0 = time.time()
        try:
            with DeviceSampler() as dev:
                p = subprocess.run([sys.executable, os.path.join(HERE, script[0]), *script[1:], "--json", out],
                                   env=env, capture_output=True, text=True, timeout=a.timeout)
        except subprocess.TimeoutExpired:
            row.update(status="failed", why=f"timed out after {a.timeout} s")
        else:
            if p.returncode:
                row.update(status="failed", why=(p.stderr or p.stdout).strip().splitlines()[-3:])
            else:
                res = json.load(open(out))
                row.update(status="ok", time_s=res.get("median_step_s", res.get("s_per_token")),
                           host_taken_mib=dev.host_taken_mib(), host_filled_mib=dev.host_filled_mib(),
                           device_peak_mib=dev.peak() - dev.base,
                           checksum=res.get("checksum"), step_s=res.get("step_s"),
                           moved_per_unit=res.get("moved_per_unit"), load_s=res.get("build_s"))
                try:
                    devs = json.load(open(stats)).get("paging", {}).get("devices", [])
                    row["paging"] = devs[0] if devs else None
                except (OSError, ValueError):
                    row["paging"] = None
        row["wall_s"] = round(time.time() - t0, 1)
        for f in (out, stats):
            if os.path.exists(f):
                os.unlink(f)
        first = doc["rows"][0] if doc["rows"] else row
        if row.get("time_s") and first.get("time_s"):
            row["ratio"] = row["time_s"] / first["time_s"]
        doc["rows"].append(row)
        print(f"{name}: {row['status']} {row.get('time_s')} ratio {row.get('ratio')} checksum {row.get('checksum')} "
              f"steps {row.get('step_s')} load {row.get('load_s')} s host taken {row.get('host_taken_mib')} MiB "
              f"wall {row['wall_s']} s {row.get('why', '')}", flush=True)
        with open(a.out, "w") as fh:
            json.dump(doc, fh, indent=1)


if __name__ == "__main__":
    main()
