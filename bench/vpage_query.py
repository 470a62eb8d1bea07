"""Read vpage's books from inside a Python process that runs under the
preload (include/vpage.h). Both return None without the preload.
device_used_mib() is the device's own view, from outside the preload."""
import ctypes
import json
import subprocess
import threading
import time


def _smi_mib(field):
    """A memory field of GPU 0 as nvidia-smi reports it (MiB)."""
    out = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader,nounits", "-i", "0"],
                         capture_output=True, text=True, timeout=30).stdout
    return int(out.strip().splitlines()[0])


def device_used_mib():
    """Memory in use on GPU 0 as nvidia-smi reports it (MiB)."""
    return _smi_mib("memory.used")


def device_free_mib():
    """Memory free on GPU 0 as nvidia-smi reports it (MiB)."""
    return _smi_mib("memory.free")


def host_memory_mib():
    """(MemAvailable, MemFree) of /proc/meminfo in MiB, read at once; None for a field not known.
    MemAvailable counts the page cache the kernel could drop as available, MemFree does not."""
    got = {"MemAvailable": None, "MemFree": None}
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in got:
                    got[key] = int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return got["MemAvailable"], got["MemFree"]


class DeviceSampler:
    """Samples device_used_mib() and the host's available memory every
    `period` seconds on a thread, from outside the measured process:
    `with DeviceSampler() as s: ...`, then s.base (before), s.peak()
    (highest sample) or s.peak(t0, t1) (highest sample taken between two
    time.time() values), s.host_taken_mib(): the most the host's
    available memory fell below its value before (pinned and anonymous
    memory, which RSS does not all show; other programs count too), and
    s.host_filled_mib(): the most its free memory fell (the same plus the
    page cache read in meanwhile, such as a checkpoint's files)."""

    def __init__(self, period=0.1):
        self.period, self.samples, self._stop = period, [], threading.Event()
        self.base = device_used_mib()
        self.host_base = self.host_low = host_memory_mib()  # (available, free)

    def _run(self):
        while not self._stop.is_set():
            now = host_memory_mib()
            self.host_low = tuple(low if low is None or n is None else min(low, n)
                                  for low, n in zip(self.host_low, now))
            try:
                self.samples.append((time.time(), device_used_mib()))
            except Exception:  # a slow or failed query loses one sample
                pass
            time.sleep(self.period)

    def _host_drop(self, i):
        base, low = self.host_base[i], self.host_low[i]
        return None if base is None or low is None else base - low

    def host_taken_mib(self):
        return self._host_drop(0)

    def host_filled_mib(self):
        return self._host_drop(1)

    def __enter__(self):
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._th.join()

    def peak(self, t0=None, t1=None):
        got = [u for t, u in self.samples if (t0 is None or t >= t0) and (t1 is None or t <= t1)]
        return max(got + [self.base])


def _lib():
    return ctypes.CDLL(None)


def counted(dev=0):
    """vpage's counted bytes of device dev: (now, peak)."""
    try:
        f = _lib().vpage_counted
    except AttributeError:
        return None
    cur, peak = ctypes.c_uint64(), ctypes.c_uint64()
    f.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_uint64)]
    f(dev, ctypes.byref(cur), ctypes.byref(peak))
    return cur.value, peak.value


def stats():
    """vpage's stats document (the JSON of VPAGE_STATS_FILE), parsed."""
    try:
        f = _lib().vpage_stats_json
    except AttributeError:
        return None
    f.restype = ctypes.c_size_t
    f.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    need = f(None, 0) + 1
    buf = ctypes.create_string_buffer(need + 4096)  # counters may grow between the calls
    f(buf, len(buf))
    return json.loads(buf.value.decode())


def moved():
    """Bytes vpage's pager has moved so far, summed over devices: (in, out); None without vpage or paging.
    "out" is what was copied back (bytes_writeback): what left without a copy crossed no bus."""
    st = stats()
    devs = (st or {}).get("paging", {}).get("devices") or []
    if not devs:
        return None
    return (sum(d.get("bytes_in", 0) for d in devs), sum(d.get("bytes_writeback", 0) for d in devs))


def moved_between(before, after):
    """(in, out) moved between two moved() readings, or None."""
    if before is None or after is None:
        return None
    return [after[0] - before[0], after[1] - before[1]]
