#!/usr/bin/env python3
"""A synthetic page table of one Llama-3-8B-shaped decode step, for
vpage-table (what its replay would move and how long it would take, with
and without --leave-thin), where no GPU is at hand.

    python3 bench/decode_table.py OUT.table
    vpage-table simulate OUT.table --cap 8G --best-window [--leave-thin]

The step: the embedding's lookup of one token (5 us on a table of 128256 x
4096 bf16, which vpage takes as touching the whole table), then 32 layers
of seven GEMVs (q, k, v, o, gate, up, down), each timed as a read of its
weight at 3 TB/s plus 3 us, with three small launches on the activations
between, then the lm_head's GEMV. Each weight is an allocation of its own
(a caching allocator packs several in one; the pieces are the same), the
activations and KV cache one of 32 MiB that every launch writes. Pieces
of 64 MiB. The fingerprint is computed as books/table.h says.
"""
import sys

MiB = 1 << 20
PIECE = 64 * MiB
VOCAB, HIDDEN = 128256, 4096
LAYER = (32 * MiB, 8 * MiB, 8 * MiB, 32 * MiB, 112 * MiB, 112 * MiB, 112 * MiB)  # q k v o gate up down, bf16
KERNELS = ("lookup", "gemv", "small")


def fnv(h, data):
    for c in data:
        h = ((h ^ c) * 0x100000001b3) & (2**64 - 1)
    return h


def fingerprint(allocs):
    h = 0xcbf29ce484222325
    for order, size in enumerate(allocs):
        h = fnv(h, size.to_bytes(8, "little") + order.to_bytes(4, "little"))
    for k in KERNELS:
        h = fnv(h, k.encode() + b"\0")
    return h


def step():
    allocs, ops = [], []

    def alloc(size):
        allocs.append(size)
        return len(allocs) - 1

    def span(a, write=False):
        return "%d:0-%d%s" % (a, (allocs[a] + PIECE - 1) // PIECE - 1, "w" if write else "")

    act = alloc(32 * MiB)
    emb = alloc(VOCAB * HIDDEN * 2)
    layers = [[alloc(b) for b in LAYER] for _ in range(32)]
    head = alloc(VOCAB * HIDDEN * 2)
    ops.append((0, 5000, [span(emb), span(act, True)]))
    for weights in layers:
        for i, w in enumerate(weights):
            ops.append((1, int(allocs[w] / 3e12 * 1e9) + 3000, [span(w), span(act, True)]))
            if i in (2, 3, 6):  # attention, the residual adds
                ops.append((2, 4000, [span(act, True)]))
    ops.append((1, int(allocs[head] / 3e12 * 1e9) + 3000, [span(head), span(act, True)]))
    return allocs, ops


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: decode_table.py OUT.table")
    allocs, ops = step()
    lines = ["vpage-table 2", "fingerprint %016x" % fingerprint(allocs), "piece %d" % PIECE]
    lines += ["alloc %d %d" % (size, order) for order, size in enumerate(allocs)]
    lines += ["kernel " + k for k in KERNELS]
    lines += ["op %d %d %s" % (k, ns, " ".join(spans)) for k, ns, spans in ops]
    lines.append("end")
    with open(sys.argv[1], "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
