"""vpage's front door: runs a command with libvpage.so preloaded and says,
at its exit, what vpage did.

    vpage run [--cap 8G] [--mode stream|demand|off] [--table FILE] [--trace FILE] -- CMD ARGS...
    vpage options            every VPAGE_ option, its value here and its meaning
    vpage lib                the path of the library it preloads

With a cap, paging is on (stream mode) unless --mode says otherwise, so a
program larger than the cap runs. The VPAGE_* variables of the environment
apply as they are; the flags set the ones they name. At exit it prints one
screen: each device's peak against the cap, the bytes moved in and back,
the time operations waited, the host memory the run took (the drop of the
host's available memory, sampled from outside: pinned memory and page cache
included) and what vpage could not page. The command's exit status is
vpage's.
"""
import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

GiB = 1 << 30
MiB = 1 << 20
# kinds counted whole, never paged (core/report.c's "devices" section), with why
NOT_PAGED = {
    "vmm": "cuMemCreate chunks (NCCL buffers, PyTorch's expandable segments): counted, not paged",
    "pool": "pools the program made or made current: counted, not paged",
    "graph": "memory of CUDA graphs: counted, not paged",
    "array": "CUDA arrays: counted, not paged",
    "managed": "the program's own managed memory: counted whole",
}


def find_lib():
    """libvpage.so: $VPAGE_LIB, in this package (a wheel), or beside the
    command (a source tree's build/, an install prefix's lib folders)."""
    env = os.environ.get("VPAGE_LIB")
    if env:
        return env if os.path.isfile(env) else None
    here = os.path.dirname(os.path.abspath(__file__))
    spots = [os.path.join(here, "libvpage.so")]
    for base in {os.path.dirname(os.path.realpath(sys.argv[0])), here}:
        for up in ("..", os.path.join("..", "..")):
            root = os.path.normpath(os.path.join(base, up))
            spots += [os.path.join(root, "build", "libvpage.so"), os.path.join(root, "lib", "libvpage.so"),
                      os.path.join(root, "lib64", "libvpage.so")]
            spots += sorted(glob.glob(os.path.join(root, "lib", "*", "libvpage.so")))
    return next((p for p in spots if os.path.isfile(p)), None)


def preload_value(lib):
    """LD_PRELOAD for lib: an ASan build gets its runtime in front."""
    pre = lib
    try:
        out = subprocess.run(["ldd", lib], capture_output=True, text=True, timeout=20).stdout
        asan = next((l.split("=>")[1].split()[0] for l in out.splitlines() if "libasan" in l and "=>" in l), None)
        if asan:
            pre = asan + ":" + lib
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    old = os.environ.get("LD_PRELOAD")
    return pre + (":" + old if old else "")


def fmt(b):
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if b >= size:
            return f"{b / size:.2f} {unit}"
    return f"{b} B"


def meminfo():
    """(MemAvailable, MemFree) of /proc/meminfo in bytes, read at once; None for a field not known.
    MemAvailable counts the page cache the kernel could drop as available, MemFree does not."""
    got = {"MemAvailable": None, "MemFree": None}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in got:
                    got[key] = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return got["MemAvailable"], got["MemFree"]


def descendants(pid):
    """pid and its descendants (from /proc)."""
    kids = {}
    for st in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(st) as f:
                s = f.read()
            fields = s[s.rindex(")") + 2:].split()
            kids.setdefault(int(fields[1]), []).append(int(st.split("/")[2]))
        except (OSError, ValueError, IndexError):
            continue
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo += kids.get(p, [])
    return out


class Sampler:
    """Samples, from outside the program, the host's available and free memory
    (every 0.2 s) and, where nvidia-smi lists them, the device memory of the
    program's processes (every second)."""

    def __init__(self, pid):
        self.pid = pid
        self.base = self.low = meminfo()  # (available, free)
        self.dev_peak = {}  # GPU uuid -> MiB used by the program's processes at once, at most
        self.smi = shutil.which("nvidia-smi")
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def device(self):
        try:
            out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,gpu_uuid,used_memory",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            self.smi = None
            return
        ours = descendants(self.pid)
        now = {}
        for line in out.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 3 and parts[0].isdigit() and int(parts[0]) in ours and parts[2].isdigit():
                now[parts[1]] = now.get(parts[1], 0) + int(parts[2])
        for g, v in now.items():
            self.dev_peak[g] = max(self.dev_peak.get(g, 0), v)

    def run(self):
        k = 0
        while not self.stop.wait(0.2):
            now = meminfo()
            self.low = tuple(low if low is None or n is None else min(low, n) for low, n in zip(self.low, now))
            if self.smi and k % 5 == 0:
                self.device()
            k += 1

    def finish(self):
        """(taken, filled): the most MemAvailable and MemFree fell below their values before, or None."""
        self.stop.set()
        self.t.join(timeout=15)
        return tuple(b - low if b is not None and low is not None else None for b, low in zip(self.base, self.low))


def summary(cmd, status, wall, host, dev_peak, stats_files, cap_text=None):
    """The exit screen, as lines. host: Sampler.finish()'s (taken, filled)."""
    name = " ".join(cmd)
    if len(name) > 70:
        name = name[:67] + "..."
    how = f"exited {status}" if status >= 0 else f"was killed by signal {-status}"
    lines = [f"vpage: `{name}` {how} after {wall:.1f} s"]
    docs = []
    for path in stats_files:
        try:
            with open(path) as f:
                docs.append(json.load(f))
        except (OSError, ValueError):
            continue
    def streamed(d):
        return sum(p.get("streamed_peak", 0) for p in (d.get("paging") or {}).get("devices", []))

    used = [d for d in docs if streamed(d) or any(dev.get("total", {}).get("peak") for dev in d.get("devices", []))]
    if not used:
        lines.append("  no CUDA allocation was made: nothing was capped or paged")
    for d in used:
        who = f"process {d.get('pid')}: " if len(used) > 1 else ""
        pg = d.get("paging") or {}
        pdevs = {p.get("device"): p for p in pg.get("devices", [])}
        counted = {dev.get("device"): dev for dev in d.get("devices", [])}
        for i in sorted(set(pdevs) | set(counted)):
            dev = counted.get(i, {})
            p = pdevs.get(i)
            peak = dev.get("total", {}).get("peak", 0)
            cap = dev.get("cap")
            capped = (f"of the {fmt(cap)} cap" if cap else f"(VPAGE_CAP={cap_text})" if cap_text else "(no cap)")
            lines.append(f"  {who}device {i}: peak {fmt(peak)} counted {capped}")
            if p:
                home = (f"{fmt(p['streamed_peak'])} at home in host RAM at peak; " if "streamed_peak" in p else "")
                moved = (f"moved in {fmt(p.get('bytes_in', 0))}, back {fmt(p.get('bytes_writeback', 0))} "
                         f"({fmt(p.get('bytes_dropped', 0) + p.get('bytes_unchanged', 0))} left without a copy)")
                lines.append(f"    paging ({pg.get('mode')}): {home}{moved}")
                waits = p.get("waits", 0)
                lines.append(f"    waited for pieces: {p.get('wait_ns', 0) / 1e9:.2f} s in {waits} operations"
                             + (f"; {p.get('fit_ops')} operations ran unfenced while all of it fit"
                                if p.get("fit_ops") else ""))
            for kind, why in NOT_PAGED.items():
                b = dev.get(kind, {}).get("peak", 0)
                if b and (pg.get("mode") not in (None, "off") or kind == "vmm"):
                    lines.append(f"    not paged: {kind} {fmt(b)} at peak ({why})")
        refused = sum(e.get("refused", 0) for e in d.get("entry_points", {}).values())
        if refused:
            lines.append(f"  {who}refused {refused} allocations over the cap (vpage's lines above say which)")
    for g, mib in sorted(dev_peak.items()):
        lines.append(f"  device memory of the program's processes (nvidia-smi, context included): "
                     f"{fmt(mib * MiB)} at peak on {g[:12]}...")
    taken, filled = host
    if taken is not None:
        cache = f"; {fmt(max(filled, 0))} with the page cache it filled (MemFree's drop)" if filled is not None else ""
        lines.append(f"  host memory taken: {fmt(max(taken, 0))} at peak (the drop of MemAvailable, sampled "
                     f"from outside: pinned and anonymous memory, which RSS does not all show; other programs count "
                     f"too){cache}")
    return lines


def print_options(lib):
    """The library's own table of options (VPAGE_HELP's), from a process
    that preloads it."""
    code = "import ctypes; ctypes.CDLL(None).vpage_print_options()"
    env = dict(os.environ, LD_PRELOAD=preload_value(lib))
    subprocess.run([sys.executable, "-c", code], env=env)


def run(a, lib):
    env = dict(os.environ)
    if a.cap:
        env["VPAGE_CAP"] = a.cap
        if not a.mode and "VPAGE_PAGING" not in os.environ:
            env["VPAGE_PAGING"] = "stream"
    if a.mode:
        env["VPAGE_PAGING"] = a.mode
    for flag, var in ((a.table, "VPAGE_TABLE"), (a.trace, "VPAGE_TRACE")):
        if flag:
            env[var] = flag
    tmp = None
    if a.stats:
        stats = a.stats
    else:
        tmp = tempfile.mkdtemp(prefix="vpage-run-")
        stats = os.path.join(tmp, "stats-%p.json")
    env["VPAGE_STATS_FILE"] = stats
    env["LD_PRELOAD"] = preload_value(lib)
    t0 = time.time()
    try:
        child = subprocess.Popen(a.cmd, env=env)
    except OSError as e:
        print(f"vpage: cannot run {a.cmd[0]}: {e.strerror}", file=sys.stderr)
        return 127
    sampler = None if a.quiet else Sampler(child.pid)

    def forward(sig, frame):
        child.send_signal(sig)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, forward)
    status = child.wait()
    wall = time.time() - t0
    if sampler:
        host = sampler.finish()
        files = sorted(glob.glob(stats.replace("%p", "*")))
        print("\n".join(summary(a.cmd, status, wall, host, sampler.dev_peak, files, env.get("VPAGE_CAP"))),
              file=sys.stderr)
        if a.stats:
            print(f"  stats: {', '.join(files) or 'none written'}", file=sys.stderr)
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    return status if status >= 0 else 128 - status


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    top = argparse.ArgumentParser(prog="vpage", description=__doc__.split("\n\n")[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--version", action="store_true", help="print the version")
    sub = top.add_subparsers(dest="verb")
    r = sub.add_parser("run", help="run a command under vpage", add_help=False,
                       usage="vpage run [--cap SIZE] [--mode stream|demand|off] [--table FILE] [--trace FILE] "
                             "[--stats FILE] [--quiet] -- CMD [ARGS...]")
    r.add_argument("-h", "--help", action="store_true", help="this help, then every VPAGE_ option")
    r.add_argument("--cap", help="device memory cap: 8G for every device, 0:16G,1:24G per device (VPAGE_CAP); "
                                 "paging is then on unless --mode or VPAGE_PAGING says otherwise")
    r.add_argument("--mode", choices=["stream", "demand", "off"], help="VPAGE_PAGING (with --cap: stream)")
    r.add_argument("--table", metavar="FILE", help="the loop's page table, read at start and written at exit "
                                                   "(VPAGE_TABLE)")
    r.add_argument("--trace", metavar="FILE", help="a trace of stream mode's moves (VPAGE_TRACE)")
    r.add_argument("--stats", metavar="FILE", help="keep the stats as JSON here (VPAGE_STATS_FILE; %%p: the "
                                                   "process id)")
    r.add_argument("--quiet", action="store_true", help="no summary at exit")
    r.add_argument("cmd", nargs=argparse.REMAINDER)
    sub.add_parser("options", help="every VPAGE_ option with its value and meaning")
    sub.add_parser("lib", help="the path of libvpage.so")
    a = top.parse_args(argv)
    if a.version:
        print("vpage 0.1.0")
        return 0
    lib = find_lib()
    if a.verb is None:
        top.print_help()
        return 2
    if not lib:
        print("vpage: libvpage.so not found (set VPAGE_LIB, or build it: meson setup build && ninja -C build)",
              file=sys.stderr)
        return 1
    if a.verb == "lib":
        print(lib)
        return 0
    if a.verb == "options":
        print_options(lib)
        return 0
    if a.cmd and a.cmd[0] == "--":
        a.cmd = a.cmd[1:]
    if a.help or not a.cmd:
        r.print_help()
        print("\nOptions (environment variables; the flags above set some of them):")
        sys.stdout.flush()
        print_options(lib)
        return 0 if a.help else 2
    return run(a, lib)


if __name__ == "__main__":
    sys.exit(main())
