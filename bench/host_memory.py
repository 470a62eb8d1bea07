#!/usr/bin/env python3
"""What stream mode's host memory costs to make and to fill, on the driver
alone (issue 19: where a capped load's extra seconds go).

    python3 bench/host_memory.py [--pieces N] [--piece-mib M] [--threads 1,2,4,8] [--json FILE]

Stream mode backs every streamed allocation with host memory of its own,
made in pieces (cuMemCreate on the host's NUMA node, mapped at two
addresses, each given the device's access: pager/stream/alloc.c), and the
program's copies into pieces not on the device go through the device to
that memory. This times, without vpage and without PyTorch (ctypes on
libcuda):
  make     N pieces made and mapped as stream mode makes them, by 1 and by
           more threads at once (does making them in parallel help?)
  copy     a pageable host buffer copied into the pieces' mapping, and into
           device memory of the same size (the uncapped load's copy)
  release  the pieces unmapped and given back
Prints one line each and writes them as JSON with --json.
"""
import argparse
import ctypes as C
import json
import threading
import time

CU_MEM_ALLOCATION_TYPE_PINNED = 1
CU_MEM_LOCATION_TYPE_DEVICE = 1
CU_MEM_LOCATION_TYPE_HOST_NUMA = 3
CU_MEM_ACCESS_FLAGS_PROT_READWRITE = 3


class Loc(C.Structure):
    _fields_ = [("type", C.c_int), ("id", C.c_int)]


class Flags(C.Structure):
    _fields_ = [("compressionType", C.c_ubyte), ("gpuDirectRDMACapable", C.c_ubyte), ("usage", C.c_ushort),
                ("reserved", C.c_ubyte * 4)]


class Prop(C.Structure):
    _fields_ = [("type", C.c_int), ("requestedHandleTypes", C.c_int), ("location", Loc),
                ("win32HandleMetaData", C.c_void_p), ("allocFlags", Flags)]


class Access(C.Structure):
    _fields_ = [("location", Loc), ("flags", C.c_int)]


cu = C.CDLL("libcuda.so.1")


def ok(rc, what):
    if rc != 0:
        raise RuntimeError(f"{what}: CUresult {rc}")


def prop(host):
    p = Prop()
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED
    p.location = Loc(CU_MEM_LOCATION_TYPE_HOST_NUMA if host else CU_MEM_LOCATION_TYPE_DEVICE, 0)
    return p


def reserve(size):
    va = C.c_ulonglong()
    ok(cu.cuMemAddressReserve(C.byref(va), C.c_size_t(size), C.c_size_t(0), C.c_ulonglong(0), C.c_ulonglong(0)),
       "cuMemAddressReserve")
    return va.value


def map_at(va, size, h):
    ok(cu.cuMemMap(C.c_ulonglong(va), C.c_size_t(size), C.c_size_t(0), C.c_ulonglong(h), C.c_ulonglong(0)),
       "cuMemMap")
    d = Access(Loc(CU_MEM_LOCATION_TYPE_DEVICE, 0), CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
    ok(cu.cuMemSetAccess(C.c_ulonglong(va), C.c_size_t(size), C.byref(d), C.c_size_t(1)), "cuMemSetAccess")


def make(ctx, vas, homes, hs, piece, idx):
    """Pieces idx made as stream mode makes them: host memory, mapped at the program's and the home address."""
    ok(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
    p = prop(True)
    for i in idx:
        h = C.c_ulonglong()
        ok(cu.cuMemCreate(C.byref(h), C.c_size_t(piece), C.byref(p), C.c_ulonglong(0)), "cuMemCreate")
        hs[i] = h.value
        map_at(vas + i * piece, piece, h.value)
        map_at(homes + i * piece, piece, h.value)


def release(vas, homes, hs, piece):
    for i, h in enumerate(hs):
        cu.cuMemUnmap(C.c_ulonglong(vas + i * piece), C.c_size_t(piece))
        cu.cuMemUnmap(C.c_ulonglong(homes + i * piece), C.c_size_t(piece))
        cu.cuMemRelease(C.c_ulonglong(h))


def primary_context():
    """Device 0's primary context, made current on this thread."""
    ok(cu.cuInit(0), "cuInit")
    dev, ctx = C.c_int(), C.c_void_p()
    ok(cu.cuDeviceGet(C.byref(dev), 0), "cuDeviceGet")
    ok(cu.cuDevicePrimaryCtxRetain(C.byref(ctx), dev), "cuDevicePrimaryCtxRetain")
    ok(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
    return ctx


def copy_rate(dst, src, size):
    ok(cu.cuCtxSynchronize(), "cuCtxSynchronize")
    t0 = time.perf_counter()
    ok(cu.cuMemcpyHtoD_v2(C.c_ulonglong(dst), src, C.c_size_t(size)), "cuMemcpyHtoD")
    ok(cu.cuCtxSynchronize(), "cuCtxSynchronize")
    return size / (time.perf_counter() - t0) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pieces", type=int, default=64)
    ap.add_argument("--piece-mib", type=int, default=64)
    ap.add_argument("--threads", default="1,2,4,8")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()
    piece, n = a.piece_mib << 20, a.pieces
    ctx = primary_context()
    out = {"pieces": n, "piece_bytes": piece, "make": [], "copy": {}}
    src = C.create_string_buffer(n * piece)  # pageable, touched (zeroed) once
    for t in [int(x) for x in a.threads.split(",")]:
        vas, homes, hs = reserve(n * piece), reserve(n * piece), [0] * n
        parts = [list(range(k, n, t)) for k in range(t)]
        workers = [threading.Thread(target=make, args=(ctx, vas, homes, hs, piece, p)) for p in parts]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        made = time.perf_counter() - t0
        row = {"threads": t, "seconds": made, "gb_s": n * piece / made / 1e9}
        if t == 1:
            row["copy_in_gb_s"] = copy_rate(vas, src, n * piece)
        t0 = time.perf_counter()
        release(vas, homes, hs, piece)
        row["release_s"] = time.perf_counter() - t0
        cu.cuMemAddressFree(C.c_ulonglong(vas), C.c_size_t(n * piece))
        cu.cuMemAddressFree(C.c_ulonglong(homes), C.c_size_t(n * piece))
        out["make"].append(row)
        print(f"make {n} pieces of {a.piece_mib} MiB of host memory, {t} thread(s): {made:.3f} s "
              f"({row['gb_s']:.2f} GB/s); released in {row['release_s']:.3f} s"
              + (f"; pageable copy into them {row['copy_in_gb_s']:.2f} GB/s" if t == 1 else ""))
    d = C.c_ulonglong()
    ok(cu.cuMemAlloc_v2(C.byref(d), C.c_size_t(n * piece)), "cuMemAlloc")
    out["copy"]["device_gb_s"] = copy_rate(d.value, src, n * piece)
    cu.cuMemFree_v2(d)
    print(f"pageable copy into device memory: {out['copy']['device_gb_s']:.2f} GB/s")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
