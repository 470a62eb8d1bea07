#!/usr/bin/env python3
"""Where a load from a checkpoint's files goes (issue 19): the time of
from_pretrained (the files read into host memory) and of .to("cuda")
apart, the files' pages dropped from the page cache first, and, under the
preload, vpage's counters of the load (streamed memory made, waits of the
copies, pages given back).

    python3 bench/load_split.py DIR [--kind wan|llm] [--json FILE]
    VPAGE_PAGING=stream VPAGE_CAP=8G LD_PRELOAD=build/libvpage.so python3 bench/load_split.py DIR

DIR: a checkpoint written by run_wan.py --save-pretrained (diffusers,
--kind wan) or run_llm.py --save-pretrained (transformers, --kind llm).
"""
import argparse
import json
import time

import torch

import vpage_query
from compare import drop_cached

COUNTERS = ("alloc_ns", "wait_ns", "bare_map_ns", "copy_ns", "bytes_in", "bytes_writeback", "placed", "moves_out",
            "premade", "premade_dropped", "streamed_peak")


def load(kind, path):
    if kind == "wan":
        from diffusers import WanTransformer3DModel
        return WanTransformer3DModel.from_pretrained(path, torch_dtype=torch.bfloat16)
    from transformers import LlamaForCausalLM
    return LlamaForCausalLM.from_pretrained(path, torch_dtype=torch.bfloat16)


def vpage_counters():
    """The load's counters of vpage's pager on device 0 and of its weight files; {} without the preload."""
    st = vpage_query.stats() or {}
    dev = (st.get("paging", {}).get("devices") or [{}])[0]
    files = st.get("weight_files") or []
    out = {k: dev[k] for k in COUNTERS if k in dev}
    if files:
        out["pages_given_back"] = sum(f.get("pages_given_back", 0) for f in files)
        out["give_back_ns"] = sum(f.get("give_back_ns", 0) for f in files)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--kind", choices=["wan", "llm"], default="wan")
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args()
    drop_cached(a.dir)
    torch.zeros(1, device="cuda")  # the context, outside the times
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    model = load(a.kind, a.dir)
    t1 = time.perf_counter()
    model.to("cuda")
    torch.cuda.synchronize()
    t2 = time.perf_counter()
    res = {"kind": a.kind, "from_pretrained_s": t1 - t0, "to_cuda_s": t2 - t1, "load_s": t2 - t0,
           "vpage": vpage_counters()}
    print(json.dumps(res))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
