#!/usr/bin/env python3
"""Launch overhead of vpage's hooks, measured side by side in one run.

    python3 bench/launch_overhead.py build [--fake] [--out bench/results]

Two workloads, each run alternately without and with LD_PRELOAD=libvpage.so,
nine times each, pinned to one CPU where taskset exists; the medians (and
minima) and their ratio are reported:
  driver  bench/launch_overhead.c: host time inside cuLaunchKernel for an
          empty kernel, reached as libcudart reaches it (cuGetProcAddress)
  torch   host time per tiny PyTorch op (x.add_(1)) in a loop of 20000,
          GPU only (skipped with --fake or without PyTorch)
With --fake the driver workload runs on the fake libcuda.so.1 of tests/
(pure hook cost, no GPU). Writes <date>-<gpu>-launch.json under --out.
"""
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys

TORCH_LOOP = r"""
import time, torch
x = torch.zeros(1, device="cuda")
for _ in range(2000): x.add_(1)
torch.cuda.synchronize()
n = 20000
t0 = time.perf_counter()
for _ in range(n): x.add_(1)
t1 = time.perf_counter()
torch.cuda.synchronize()
print('{"ns_per_op": %.1f}' % ((t1 - t0) * 1e9 / n))
"""


def run(cmd, env_extra, preload):
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.update(env_extra)
    if preload:
        env["LD_PRELOAD"] = preload
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if p.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def side_by_side(cmd, env, lib, key, reps=9):
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "1"] + cmd
    base, hooked = [], []
    for _ in range(reps):
        base.append(run(cmd, env, None)[key])
        hooked.append(run(cmd, env, lib)[key])
    b, h = statistics.median(base), statistics.median(hooked)
    return {"without_ns": b, "with_ns": h, "added_ns": h - b, "ratio": h / b, "min_without_ns": min(base),
            "min_with_ns": min(hooked), "runs_without": base, "runs_with": hooked}


def gpu_name():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", "0"],
                             capture_output=True, text=True, timeout=30).stdout.strip()
        return out or None
    except (OSError, subprocess.SubprocessError):
        return None


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    fake = "--fake" in sys.argv
    outdir = sys.argv[sys.argv.index("--out") + 1] if "--out" in sys.argv else None
    lib = os.path.abspath(os.path.join(build, "libvpage.so"))
    exe = os.path.abspath(os.path.join(build, "bench", "launch_overhead"))
    gpu = None if fake else gpu_name()
    if not fake and not gpu:
        raise SystemExit("no NVIDIA GPU: run with --fake to measure on the fake driver")
    env = {"LD_LIBRARY_PATH": os.path.abspath(os.path.join(build, "tests"))} if fake else {}
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "CPU")
    res = {"date": datetime.date.today().isoformat(), "machine": gpu or f"fake driver, {cpu}",
           "driver": side_by_side([exe] + (["--fake"] if fake else []) + ["200000"], env, lib, "ns_per_launch")}
    if not fake:
        res["torch"] = side_by_side([sys.executable, "-c", TORCH_LOOP], {}, lib, "ns_per_op")
    for k in ("driver", "torch"):
        if k in res:
            r = res[k]
            print(f"{k:6s} median without {r['without_ns']:8.1f} ns  with vpage {r['with_ns']:8.1f} ns  "
                  f"added {r['added_ns']:+7.1f} ns  ratio {r['ratio']:.3f}  "
                  f"(min {r['min_without_ns']:.1f} vs {r['min_with_ns']:.1f} ns)")
    print(f"machine: {res['machine']}")
    if outdir:
        os.makedirs(outdir, exist_ok=True)
        name = f"{gpu.replace(' ', '-')}-launch" if gpu else "fake-driver-hooks"
        path = os.path.join(outdir, f"{res['date']}-{name}.json")
        with open(path, "w") as f:
            json.dump(res, f, indent=1)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
