#!/usr/bin/env python3
"""Writes the seed corpora: for fuzz_safetensors, valid files and near misses (corpus/); for fuzz_weights,
files with a script of copies, writes, remaps and a close (corpus_weights/)."""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
OUT_WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_weights")


def st(header, data=b""):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def main():
    os.makedirs(OUT, exist_ok=True)
    seeds = {
        "valid-two": st({"a.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                         "b": {"dtype": "BF16", "shape": [3], "data_offsets": [16, 22]}}, bytes(22)),
        "valid-metadata": st({"__metadata__": {"format": "pt", "nested": "x"},
                              "w": {"dtype": "I64", "shape": [], "data_offsets": [0, 8]}}, bytes(8)),
        "valid-escapes": st(b'{"caf\\u00e9.\\ud83d\\ude00\\n":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x"),
        "valid-empty": st({}),
        "valid-unknown-dtype": st({"q": {"dtype": "F4", "shape": [7], "data_offsets": [0, 4]}}, bytes(4)),
        "overlap": st({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                       "b": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}}, bytes(6)),
        "out-of-range": st({"a": {"dtype": "U8", "shape": [9], "data_offsets": [0, 9]}}, bytes(4)),
        "shape-mismatch": st({"a": {"dtype": "F16", "shape": [3], "data_offsets": [0, 4]}}, bytes(4)),
        "duplicate-name": st(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                             b'"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', bytes(2)),
        "deep-metadata": st(b'{"__metadata__":' + b"[" * 70 + b"]" * 70 + b"}"),
        "truncated": st(b'{"a":{"dtype":"U8","shape":[1],"data_offs'),
        "huge-number": st(b'{"a":{"dtype":"U8","shape":[99999999999999999999],"data_offsets":[0,1]}}', b"x"),
        "huge-length": struct.pack("<Q", 1 << 62) + b"{}",
        "trailing": st(b'{} {}'),
    }
    for name, blob in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(blob)
    print(f"{len(seeds)} seeds in {OUT}")
    weights_seeds(seeds["valid-two"])


def step(kind, off, n, slot):
    """One step of fuzz_weights's script: kind (0 copy from the mapping, 1 staged, 2 staged with a byte changed,
    3 written, 4 remapped, 5 closed), 3-byte offset and length, slot."""
    return bytes([kind]) + off.to_bytes(3, "little") + n.to_bytes(3, "little") + bytes([slot])


def weights_seeds(two):
    os.makedirs(OUT_WEIGHTS, exist_ok=True)
    # four tensors of 16 bytes, two of them alike: a staged copy of either is named by one of them
    data = bytes(range(16)) * 2 + bytes(range(16, 32)) + bytes(16)
    four = st({n: {"dtype": "U8", "shape": [16], "data_offsets": [16 * i, 16 * i + 16]}
               for i, n in enumerate(["a", "b", "c", "d"])}, data)
    h = len(four) - len(data)
    script = (step(0, h, 16, 0) + step(1, h + 16, 16, 1) + step(2, h + 32, 16, 2) + step(3, 4, 8, 0) +
              step(4, 0, 0, 0) + step(1, h + 48, 16, 3) + step(5, 0, 0, 0) + step(1, h, 16, 4) + step(0, 3, 40, 5))
    seeds = {
        "four-tensors": four,
        "not-safetensors": b"plain bytes, no header",
        "two-tensors": two,
    }
    for name, blob in seeds.items():
        with open(os.path.join(OUT_WEIGHTS, name), "wb") as f:
            f.write(len(blob).to_bytes(2, "little") + blob + script)
    print(f"{len(seeds)} seeds in {OUT_WEIGHTS}")


if __name__ == "__main__":
    main()
