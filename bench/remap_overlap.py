#!/usr/bin/env python3
"""Do remaps hold back copies? (issue 17: the replayed step's bus waits for
the pager's remaps, docs/history.md, 2026-12-07 third session.)

    python3 bench/remap_overlap.py [--pieces N] [--piece-mib M] [--seconds S] [--json FILE]

The stream pager copies a piece from its host memory into a device slot,
then remaps the program's address of it (cuMemUnmap, cuMemMap,
cuMemSetAccess), while the next pieces' copies run. A replayed Wan 14B
step at 8 GiB on an H100 took the time of its copies at 55 GB/s plus the
time of its remaps, as if the two never overlapped. This tells whether
the driver lets them overlap, on the driver alone (ctypes on libcuda, no
vpage, no PyTorch), with pieces made as stream mode makes them:
  copy     N pieces of host memory copied into N device slots on one
           stream, over and over for S seconds: GB/s
  remap    one thread remapping M other addresses between host memory and
           device slots, as the pager's out- and in-moves do: ms a call
  both     the two at once: the copies' GB/s and the remaps' ms a call
If "both" copies at the rate of "copy", the pager can hide its remaps
behind its copies (a scheduling fix); if the rate drops by the remaps'
share of the time, the driver serialises them and only fewer or cheaper
remaps help. Uses 2 * N pieces of device memory and 2 * N of pinned host
memory (1 GiB each by default). Prints one line each; --json writes them.
"""
import argparse
import ctypes as C
import json
import threading
import time

from host_memory import cu, map_at, ok, primary_context, prop, reserve


def create(size, host):
    h = C.c_ulonglong()
    p = prop(host)
    ok(cu.cuMemCreate(C.byref(h), C.c_size_t(size), C.byref(p), C.c_ulonglong(0)), "cuMemCreate")
    return h.value


def unmap(va, size):
    ok(cu.cuMemUnmap(C.c_ulonglong(va), C.c_size_t(size)), "cuMemUnmap")


class Copier:
    """N host pieces copied into N device slots on one stream, in batches of N, until told to stop."""

    def __init__(self, n, piece):
        self.n, self.piece = n, piece
        self.src, self.dst = reserve(n * piece), reserve(n * piece)
        for i in range(n):
            map_at(self.src + i * piece, piece, create(piece, True))
            map_at(self.dst + i * piece, piece, create(piece, False))
        self.stream = C.c_void_p()
        ok(cu.cuStreamCreate(C.byref(self.stream), 1), "cuStreamCreate")

    def run(self, seconds):
        """GB/s over whole batches for about seconds."""
        moved, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for i in range(self.n):
                ok(cu.cuMemcpyAsync(C.c_ulonglong(self.dst + i * self.piece), C.c_ulonglong(self.src + i * self.piece),
                                    C.c_size_t(self.piece), self.stream), "cuMemcpyAsync")
            ok(cu.cuStreamSynchronize(self.stream), "cuStreamSynchronize")
            moved += self.n * self.piece
        return moved / (time.perf_counter() - t0) / 1e9


class Remapper:
    """M addresses, each moved between a host piece and a device slot of its own, one remap a call."""

    def __init__(self, ctx, n, piece):
        self.ctx, self.n, self.piece = ctx, n, piece
        self.va = reserve(n * piece)
        self.host = [create(piece, True) for _ in range(n)]
        self.slot = [create(piece, False) for _ in range(n)]
        self.on_dev = [True] * n
        for i in range(n):
            map_at(self.va + i * piece, piece, self.slot[i])
        self.stop, self.calls, self.busy = False, 0, 0.0

    def loop(self):
        ok(cu.cuCtxSetCurrent(self.ctx), "cuCtxSetCurrent")
        i = 0
        while not self.stop:
            va = self.va + i * self.piece
            t0 = time.perf_counter()
            unmap(va, self.piece)
            self.on_dev[i] = not self.on_dev[i]
            map_at(va, self.piece, self.slot[i] if self.on_dev[i] else self.host[i])
            self.busy += time.perf_counter() - t0
            self.calls += 1
            i = (i + 1) % self.n

    def run(self, seconds):
        """ms a remap (unmap, map, access) for about seconds, alone."""
        self.stop, self.calls, self.busy = False, 0, 0.0
        t = threading.Thread(target=self.loop)
        t.start()
        time.sleep(seconds)
        self.stop = True
        t.join()
        return self.busy * 1e3 / max(self.calls, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pieces", type=int, default=16)
    ap.add_argument("--piece-mib", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()
    piece, n = a.piece_mib << 20, a.pieces
    ctx = primary_context()
    copier, remapper = Copier(n, piece), Remapper(ctx, n, piece)
    copier.run(0.2)  # warm
    out = {"pieces": n, "piece_bytes": piece, "seconds": a.seconds}
    out["copy_gb_s"] = copier.run(a.seconds)
    out["remap_ms"] = remapper.run(a.seconds)
    remapper.stop, remapper.calls, remapper.busy = False, 0, 0.0
    t = threading.Thread(target=remapper.loop)
    t.start()
    out["both_copy_gb_s"] = copier.run(a.seconds)
    remapper.stop = True
    t.join()
    out["both_remap_ms"] = remapper.busy * 1e3 / max(remapper.calls, 1)
    out["both_remaps_a_s"] = remapper.calls / a.seconds
    print(f"copies alone: {out['copy_gb_s']:.1f} GB/s; remaps alone: {out['remap_ms']:.3f} ms a call "
          f"({a.piece_mib} MiB)")
    print(f"at once: copies {out['both_copy_gb_s']:.1f} GB/s, remaps {out['both_remap_ms']:.3f} ms a call "
          f"({out['both_remaps_a_s']:.0f} a second)")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
