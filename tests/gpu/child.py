"""One scenario of the GPU suite, run in its own process (run_gpu_suite.py
starts it with or without LD_PRELOAD=libvpage.so). Prints one JSON line
prefixed 'RESULT ' with what it measured; exits non-zero on a failed check.

Scenarios
  oom OUT     fill the (capped) device with 256 MiB tensors until torch raises
              OutOfMemoryError; report how far it got, torch's view of memory,
              vpage's count and the device's own use (nvidia-smi) at the peak
  model OUT   a small CNN + MLP forward (cuDNN conv, cuBLAS matmul), a matmul
              captured in a CUDA graph and replayed; saves every output to OUT
              and reports vpage's count against the device's own free memory
"""
import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from vpage_query import counted as vpage_counted, stats as vpage_stats  # noqa: E402

MiB = 1 << 20




def device_used_mib():
    """Memory in use on GPU 0 as the driver reports it to other processes."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                             capture_output=True, text=True, timeout=30).stdout
        return int(out.strip().splitlines()[0])
    except Exception:
        return None


def scenario_oom(out):
    torch.cuda.init()
    free0, total = torch.cuda.mem_get_info()
    held = []
    err = None
    while True:
        try:
            held.append(torch.empty(256 * MiB, dtype=torch.uint8, device="cuda"))
        except torch.cuda.OutOfMemoryError as e:  # the check: torch's own OOM type
            err = str(e).splitlines()[0][:200]
            break
        if len(held) > 4096:
            break
    torch.cuda.synchronize()
    at_peak = {"tensors": len(held), "device_used_mib": device_used_mib(), "counted": vpage_counted(),
               "torch_reserved": torch.cuda.memory_reserved()}
    del held
    torch.cuda.empty_cache()
    again = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")  # usable again after the OOM
    again.fill_(1)
    ok_again = int(again[::4096].to(torch.int32).sum().item()) == (1 << 30) // 4096
    torch.cuda.synchronize()
    return {"mem_get_info_total": total, "mem_get_info_free": free0, "oom_message": err, **at_peak,
            "after_free_ok": ok_again, "stats": vpage_stats()}


def scenario_model(out):
    torch.manual_seed(1234)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)
    dev = "cuda"
    torch.zeros(1, device=dev)
    torch.cuda.synchronize()
    free0, _ = torch.cuda.mem_get_info()
    c0 = vpage_counted()
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(64, 128, 3, padding=1, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(8), torch.nn.Flatten(),
        torch.nn.Linear(128 * 64, 4096), torch.nn.GELU(), torch.nn.Linear(4096, 1000),
    ).to(dev)
    x = torch.randn(64, 3, 128, 128, device=dev)
    outs = {}
    with torch.no_grad():
        outs["cnn"] = net(x)
        a = torch.randn(4096, 4096, device=dev, dtype=torch.bfloat16)
        b = torch.randn(4096, 4096, device=dev, dtype=torch.bfloat16)
        outs["matmul"] = a @ b
        big = torch.randn(256, 1024, 1024, device=dev)  # 1 GiB, to see the count move
        outs["big_sum"] = big.sum(dim=(1, 2))
        # CUDA graph: capture once, replay three times on new input
        static_in = torch.randn(2048, 2048, device=dev)
        w = torch.randn(2048, 2048, device=dev)
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                static_out = torch.relu(static_in @ w)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            static_out = torch.relu(static_in @ w)
        replays = []
        for i in range(3):
            static_in.copy_(torch.full((2048, 2048), float(i) / 7.0, device=dev) + static_in * 0.5)
            g.replay()
            replays.append(static_out.clone())
        outs["graph"] = torch.stack(replays)
    torch.cuda.synchronize()
    free1, _ = torch.cuda.mem_get_info()
    c1 = vpage_counted()
    torch.save({k: v.cpu() for k, v in outs.items()}, out)
    return {"device_delta": free0 - free1, "counted_delta": (c1[0] - c0[0]) if c0 else None,
            "torch_reserved": torch.cuda.memory_reserved(), "stats": vpage_stats()}


def scenario_weights(out):
    """Load a safetensors file to the GPU with safetensors' own loader; report
    what vpage knows of where each tensor's device bytes came from."""
    import ctypes
    import resource
    from safetensors.torch import load_file
    path = out
    t0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    backend = os.environ.get("WEIGHTS_BACKEND", "mmap")  # safetensors >= 0.8: mmap or pread
    tensors = load_file(path, device="cuda", **({} if backend == "mmap" else {"backend": backend}))
    torch.cuda.synchronize()
    f = ctypes.CDLL(None).vpage_provenance
    f.argtypes = [ctypes.c_uint64, ctypes.c_char_p, ctypes.c_size_t]
    buf = ctypes.create_string_buffer(1024)
    named = {}
    for name, t in tensors.items():
        f(t.data_ptr(), buf, len(buf))
        named[name] = buf.value.decode().rsplit(":", 1)[-1]
    st = vpage_stats()
    files = [w for w in st["weight_files"] if w["path"].endswith(os.path.basename(path))]
    return {"tensors": len(tensors), "bytes": sum(t.numel() * t.element_size() for t in tensors.values()),
            "names_match": sum(named[k] == k for k in named), "file": files[0] if files else None,
            "file_size": os.path.getsize(path),
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "rss_before": t0 * 1024}


if __name__ == "__main__":
    name, out = sys.argv[1], sys.argv[2]
    res = {"oom": scenario_oom, "model": scenario_model, "weights": scenario_weights}[name](out)
    print("RESULT " + json.dumps(res), flush=True)
