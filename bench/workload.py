"""What bench/run_wan.py and bench/run_llm.py share.

- build(): a model with random weights from a fixed seed. Parameters are
  created without memory (meta), then placed at their home (the GPU, or host
  RAM for the offloading peers) and filled there; the random numbers are
  always drawn on the GPU, so every mode holds the same weights bit for bit.
  Buffers (rotary tables) are computed for real at construction and kept in
  their own dtype.
- OFFLOAD: the modes the peers give a user, applied to the built model:
  none (resident), group (diffusers group offloading, block level, one block
  per group, on a side stream with record_stream) and sequential (accelerate's
  cpu_offload, every submodule brought in synchronously when it runs).
- Result(): the fields every run reports: the GPU, the offload mode, build
  time, the wall-clock window of the timed part (so a harness sampling the
  device from outside can take its peak over that window), peak allocated,
  peak host RSS, the weight bytes and vpage's stats when preloaded.

BENCH_DEVICE=cpu runs all of it on the CPU (a check of the scripts on a
machine without a GPU; nothing it measures means anything).
"""
import contextlib
import json
import math
import os
import time

import torch
from torch import nn

import vpage_query

OFFLOAD = ("none", "group", "sequential")
DEVICE = os.environ.get("BENCH_DEVICE", "cuda")
ON_GPU = DEVICE == "cuda"


def sync():
    if ON_GPU:
        torch.cuda.synchronize()


@contextlib.contextmanager
def params_on_meta():
    """Parameters are created on the meta device, buffers for real (on the CPU)."""
    try:
        from accelerate import init_empty_weights
    except ImportError:  # a plain model without buffers does not need it
        with torch.device("meta"):
            yield
        return
    with init_empty_weights(include_buffers=False):
        yield


def fill(model, seed, home, dtype, draw=True):
    """Places every meta parameter at home in dtype and fills it: vectors are
    ones (weights, norms) or zeros (biases), matrices N(0, 1/fan_in). The
    numbers are drawn on the GPU in parameter order, whatever home is.
    draw=False only places them (their values come from a weight file)."""
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    with torch.no_grad():
        for mname, mod in model.named_modules():
            for pname, p in list(mod._parameters.items()):
                if p is None:
                    continue
                name = f"{mname}.{pname}" if mname else pname
                t = torch.empty(p.shape, dtype=dtype, device=home)
                if draw and p.dim() <= 1:
                    t.fill_(1.0 if "weight" in name else 0.0)
                elif draw:  # drawn on DEVICE, then copied home if home is elsewhere
                    src = t if home == DEVICE else torch.empty(p.shape, dtype=dtype, device=DEVICE)
                    src.normal_(0.0, 1.0 / math.sqrt(p.shape[-1]), generator=g)
                    if src is not t:
                        t.copy_(src)
                mod._parameters[pname] = nn.Parameter(t, requires_grad=False)
            for bname, b in list(mod._buffers.items()):
                if b is not None:
                    mod._buffers[bname] = b.to(home)
    return model


def home_of(offload):
    return DEVICE if offload == "none" else "cpu"


def apply_offload(model, offload, blocks_parent=None):
    """Applies a peer's offloading. blocks_parent(model) names the module whose
    children hold the repeated blocks (for group offloading) and returns the
    modules outside it, which are put on the GPU."""
    if offload == "none":
        return model
    cuda = torch.device(DEVICE)
    if offload == "group":
        from diffusers.hooks import apply_group_offloading
        target, outside = blocks_parent(model) if blocks_parent else (model, [])
        for m in outside:
            m.to(cuda)
        apply_group_offloading(target, onload_device=cuda, offload_device=torch.device("cpu"),
                               offload_type="block_level", num_blocks_per_group=1, use_stream=True,
                               record_stream=True)
        return model
    if offload == "sequential":
        from accelerate import cpu_offload
        cpu_offload(model, execution_device=cuda)
        return model
    raise ValueError(offload)


def peak_rss_mib():
    """This process's peak resident set (VmHWM), MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return None


class Result(dict):
    """The document a run prints and writes. timed() brackets the measured part."""

    def __init__(self, offload, build_s, model):
        super().__init__(gpu=torch.cuda.get_device_name(0) if ON_GPU else "cpu", offload=offload, build_s=build_s,
                         weight_bytes=sum(p.numel() * p.element_size() for p in model.parameters()))
        if ON_GPU:
            torch.cuda.reset_peak_memory_stats()

    @contextlib.contextmanager
    def timed(self):
        sync()
        self["timed_window"] = [time.time(), None]
        yield
        sync()
        self["timed_window"][1] = time.time()

    def report(self, json_path=None):
        """Prints vpage's counted peak (when preloaded) and writes the JSON."""
        v = self["vpage"]
        if v and v["devices"]:
            d = v["devices"][0]
            cap = "none" if d["cap"] is None else f"{d['cap'] / 2**30:.2f} GiB"
            print(f"vpage: counted peak {d['total']['peak'] / 2**30:.2f} GiB, cap {cap}")
        if json_path:
            with open(json_path, "w") as fh:
                json.dump(self, fh, indent=1)

    def finish(self):
        free, total = torch.cuda.mem_get_info() if ON_GPU else (0, 0)
        self.update(peak_allocated=torch.cuda.max_memory_allocated() if ON_GPU else 0,
                    peak_reserved=torch.cuda.max_memory_reserved() if ON_GPU else 0, mem_get_info=[free, total],
                    host_rss_peak_mib=peak_rss_mib(), vpage=vpage_query.stats())
        return self
