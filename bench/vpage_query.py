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


def _meminfo_mib(key):
    """A field of /proc/meminfo (KEY: MemAvailable, MemFree, ...), in MiB; None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def host_available_mib():
    """The host's MemAvailable, in MiB: free memory plus the page cache the kernel could drop."""
    return _meminfo_mib("MemAvailable")


def host_free_mib():
    """The host's MemFree, in MiB: memory holding nothing, page cache not counted as free."""
    return _meminfo_mib("MemFree")


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
        self.host_base = host_available_mib()
        self.host_low = self.host_base
        self.free_base = host_free_mib()
        self.free_low = self.free_base

    def _run(self):
        while not self._stop.is_set():
            h = host_available_mib()
            if h is not None and self.host_low is not None:
                self.host_low = min(self.host_low, h)
            f = host_free_mib()
            if f is not None and self.free_low is not None:
                self.free_low = min(self.free_low, f)
            try:
                self.samples.append((time.time(), device_used_mib()))
            except Exception:  # a slow or failed query loses one sample
                pass
            time.sleep(self.period)

    def host_taken_mib(self):
        return None if self.host_base is None or self.host_low is None else self.host_base - self.host_low

    def host_filled_mib(self):
        return None if self.free_base is None or self.free_low is None else self.free_base - self.free_low

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
