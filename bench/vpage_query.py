"""Read vpage's books from inside a Python process that runs under the
preload (include/vpage.h). Both return None without the preload.
device_used_mib() is the device's own view, from outside the preload."""
import ctypes
import json
import subprocess


def device_used_mib():
    """Memory in use on GPU 0 as nvidia-smi reports it (MiB)."""
    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                         capture_output=True, text=True, timeout=30).stdout
    return int(out.strip().splitlines()[0])


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
