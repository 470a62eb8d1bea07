#!/usr/bin/env python3
"""Writes the seed corpus for fuzz_safetensors: valid files and near misses."""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


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


if __name__ == "__main__":
    main()
