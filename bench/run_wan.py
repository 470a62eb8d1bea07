#!/usr/bin/env python3
"""A Wan 2.1 text-to-video transformer, run for N denoising steps.

    python3 bench/run_wan.py --model 1.3B --tokens 4096 --steps 5
    VPAGE_CAP=8G LD_PRELOAD=build/libvpage.so python3 bench/run_wan.py ...

The model is diffusers' WanTransformer3DModel built from the published
Wan2.1-T2V-1.3B or -14B configuration when diffusers can be imported
(--impl diffusers), else a plain-PyTorch DiT with the same layer shapes
(--impl plain: patch embedding, 30 or 40 blocks of self-attention with
RMS-normed q/k, cross-attention over 512 text tokens, a GELU FFN, adaLN
modulation from the timestep, the output head). Weights are random from a
fixed seed, drawn on the GPU (bench/workload.py); latents and text
embeddings are random too. What is measured is the memory and time of the
steps.

--offload runs the peers a user would pick instead of vpage: group
(diffusers group offloading, block level, side stream) and sequential
(accelerate's cpu_offload); the weights then live in host RAM.

Prints per-step time, peak device memory, a checksum of the final latents
(identical across runs with the same seed and model: compare runs with and
without the preload, or with an offload) and vpage's stats when preloaded.
--json writes all of it. --save-weights/--load-weights keep the weights in a
safetensors file so the weight-file path is exercised.

--graph captures one step's forward in a CUDA graph (torch.cuda.graph,
after two warm-up forwards on a side stream, not timed) and replays it for
every step; --spare GIB first allocates and fills GIB of tensors that no
step touches (the program's memory then exceeds a cap the model fits in).

--save-pretrained DIR writes the model (random weights, as above) as a
diffusers checkpoint (config and safetensors shards) and exits;
--from-pretrained DIR then loads it the way users do:
WanTransformer3DModel.from_pretrained(DIR, torch_dtype=...) into host
memory, then .to("cuda") (or the offload's placement). build_s is then the
load's time.
"""
import argparse
import hashlib
import importlib.util
import math
import os
import time

import torch
import torch.nn.functional as F
from torch import nn

import vpage_query
import workload

CONFIGS = {
    # dim, ffn, heads, layers  (Wan2.1-T2V-1.3B and -14B)
    "1.3B": dict(dim=1536, ffn=8960, heads=12, layers=30),
    "14B": dict(dim=5120, ffn=13824, heads=40, layers=40),
    "tiny": dict(dim=256, ffn=512, heads=2, layers=2),  # for checks of the scripts
}
IN_CH, OUT_CH, TEXT_DIM, FREQ_DIM, TEXT_LEN, PATCH = 16, 16, 4096, 256, 512, (1, 2, 2)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps).to(x.dtype) * self.weight


class Attention(nn.Module):
    def __init__(self, dim, heads, kv_dim=None):
        super().__init__()
        kv_dim = kv_dim or dim
        self.heads = heads
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim), nn.Linear(kv_dim, dim), nn.Linear(kv_dim, dim),
                                          nn.Linear(dim, dim))
        self.norm_q, self.norm_k = RMSNorm(dim), RMSNorm(dim)

    def forward(self, x, ctx=None):
        ctx = x if ctx is None else ctx
        b, n, d = x.shape
        h = self.heads
        q = self.norm_q(self.q(x)).view(b, n, h, d // h).transpose(1, 2)
        k = self.norm_k(self.k(ctx)).view(b, ctx.shape[1], h, d // h).transpose(1, 2)
        v = self.v(ctx).view(b, ctx.shape[1], h, d // h).transpose(1, 2)
        return self.o(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, dim, ffn, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.self_attn = Attention(dim, heads)
        self.norm3 = nn.LayerNorm(dim)
        self.cross_attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(approximate="tanh"), nn.Linear(ffn, dim))
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim ** 0.5)

    def forward(self, x, e, ctx):
        m = (self.modulation + e).chunk(6, dim=1)
        x = x + self.self_attn(self.norm1(x) * (1 + m[1]) + m[0]) * m[2]
        x = x + self.cross_attn(self.norm3(x), ctx)
        return x + self.ffn(self.norm2(x) * (1 + m[4]) + m[3]) * m[5]


class WanDiT(nn.Module):
    def __init__(self, dim, ffn, heads, layers):
        super().__init__()
        self.dim = dim
        self.patch_embedding = nn.Conv3d(IN_CH, dim, kernel_size=PATCH, stride=PATCH)
        self.text_embedding = nn.Sequential(nn.Linear(TEXT_DIM, dim), nn.GELU(approximate="tanh"),
                                            nn.Linear(dim, dim))
        self.time_embedding = nn.Sequential(nn.Linear(FREQ_DIM, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim * 6))
        self.blocks = nn.ModuleList(Block(dim, ffn, heads) for _ in range(layers))
        self.norm_out = nn.LayerNorm(dim, elementwise_affine=False)
        self.head = nn.Linear(dim, OUT_CH * math.prod(PATCH))

    def forward(self, latents, t, text):
        b, c, f, h, w = latents.shape
        x = self.patch_embedding(latents).flatten(2).transpose(1, 2)
        half = FREQ_DIM // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        temb = torch.cat([torch.cos(t[:, None].float() * freqs), torch.sin(t[:, None].float() * freqs)], dim=1)
        e = self.time_embedding(temb.to(x.dtype))
        e6 = self.time_projection(e).unflatten(1, (6, self.dim))
        ctx = self.text_embedding(text)
        for blk in self.blocks:
            x = blk(x, e6, ctx)
        x = self.head(self.norm_out(x))
        pf, ph, pw = PATCH
        x = x.view(b, f // pf, h // ph, w // pw, OUT_CH, pf, ph, pw)
        return x.permute(0, 4, 1, 5, 2, 6, 3, 7).reshape(b, OUT_CH, f, h, w)


def latent_shape(tokens):
    """A latent (frames, height, width) whose patch count is `tokens`: 32760 is 480p, 81 frames."""
    if tokens == 32760:
        return 21, 60, 104
    side = int(math.isqrt(tokens))
    while tokens % side:
        side -= 1
    return 1, 2 * side, 2 * (tokens // side)




def device_used_mib():
    """The device's own memory use (nvidia-smi), when RUN_WAN_DEVICE_USED=1."""
    return vpage_query.device_used_mib() if os.environ.get("RUN_WAN_DEVICE_USED") == "1" else None


def have_diffusers():
    return importlib.util.find_spec("diffusers") is not None


def make(name, impl):
    c = CONFIGS[name]
    if impl == "plain":
        return WanDiT(**c)
    from diffusers import WanTransformer3DModel  # the other arguments' defaults are Wan 2.1 T2V's
    return WanTransformer3DModel(num_attention_heads=c["heads"], attention_head_dim=c["dim"] // c["heads"],
                                 ffn_dim=c["ffn"], num_layers=c["layers"])


def from_pretrained(path, dtype, offload):
    """The model as a user loads it: diffusers' from_pretrained reads the safetensors shards into host memory,
    then the model goes to the GPU (or to the offload)."""
    from diffusers import WanTransformer3DModel
    model = WanTransformer3DModel.from_pretrained(path, torch_dtype=dtype)
    if offload == "none":
        model = model.to(workload.DEVICE)
    return workload.apply_offload(model.eval(), offload)


def build(name, impl, dtype, seed, load, offload):
    home = workload.home_of(offload)
    with workload.params_on_meta():
        model = make(name, impl)
    workload.fill(model, seed, home, dtype, draw=not load)
    if load:
        from safetensors.torch import load_model
        load_model(model, load, device=home)
    return workload.apply_offload(model.eval(), offload)


def forward(model, impl, latents, t, text):
    if impl == "plain":
        return model(latents, t, text)
    return model(hidden_states=latents, timestep=t, encoder_hidden_states=text, return_dict=False)[0]


class Graphed:
    """One forward captured in a CUDA graph over static inputs; a call
    copies its inputs in, replays, and returns a copy of the output."""

    def __init__(self, model, impl, latents, text):
        self.lat, self.text = latents.clone(), text
        self.t = torch.full((1,), 1000.0, device=latents.device)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.no_grad(), torch.cuda.stream(side):
            for _ in range(2):
                forward(model, impl, self.lat, self.t, self.text)
        torch.cuda.current_stream().wait_stream(side)
        self.g = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(self.g):
            self.out = forward(model, impl, self.lat, self.t, self.text)

    def __call__(self, latents, t):
        self.lat.copy_(latents)
        self.t.copy_(t)
        self.g.replay()
        return self.out.clone()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=CONFIGS, default="1.3B")
    ap.add_argument("--impl", choices=["auto", "diffusers", "plain"], default="auto",
                    help="auto: diffusers' WanTransformer3DModel when diffusers can be imported")
    ap.add_argument("--offload", choices=workload.OFFLOAD, default="none")
    ap.add_argument("--tokens", type=int, default=4096, help="video patches per step (32760: 480p, 81 frames)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--dtype", choices=["bf16", "fp16"], default="bf16")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-weights", metavar="FILE.safetensors")
    ap.add_argument("--load-weights", metavar="FILE.safetensors")
    ap.add_argument("--save-pretrained", metavar="DIR", help="save the model as a diffusers checkpoint and exit")
    ap.add_argument("--from-pretrained", metavar="DIR", help="load the model from a diffusers checkpoint")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    ap.add_argument("--graph", action="store_true", help="replay one step's forward as a CUDA graph")
    ap.add_argument("--spare", type=float, default=0, metavar="GIB", help="GiB of tensors no step touches")
    a = ap.parse_args()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[a.dtype]
    impl = a.impl if a.impl != "auto" else ("diffusers" if have_diffusers() else "plain")
    if (a.save_pretrained or a.from_pretrained) and impl != "diffusers":
        ap.error("--save-pretrained and --from-pretrained need diffusers (--impl diffusers)")

    t0 = time.perf_counter()
    if a.from_pretrained:
        model = from_pretrained(a.from_pretrained, dtype, a.offload)
    else:
        model = build(a.model, impl, dtype, a.seed, a.load_weights, a.offload)
    workload.sync()
    res = workload.Result(a.offload, time.perf_counter() - t0, model)
    used = {"after_build": device_used_mib()}
    if a.save_pretrained:
        model.save_pretrained(a.save_pretrained)
        print(f"saved {a.save_pretrained}", flush=True)
        return
    if a.save_weights:
        from safetensors.torch import save_model
        save_model(model, a.save_weights)
    params = sum(p.numel() for p in model.parameters())
    res.update(model=a.model, impl=impl, params=params, steps=a.steps, dtype=a.dtype, graph=a.graph, spare_gib=a.spare)

    _spare = [torch.ones(1 << 26, device=workload.DEVICE, dtype=torch.float32) for _ in range(int(a.spare * 4))]
    f, h, w = latent_shape(a.tokens)
    g = torch.Generator(device=workload.DEVICE).manual_seed(a.seed + 1)
    latents = torch.randn(1, IN_CH, f, h, w, device=workload.DEVICE, dtype=dtype, generator=g)
    text = torch.randn(1, TEXT_LEN, TEXT_DIM, device=workload.DEVICE, dtype=dtype, generator=g)
    step = Graphed(model, impl, latents, text) if a.graph else None
    step_s, step_moved = [], []
    with torch.no_grad(), res.timed():
        for i in range(a.steps):
            workload.sync()
            m0 = vpage_query.moved()
            s0 = time.perf_counter()
            t = torch.full((1,), 1000.0 * (1 - i / a.steps), device=workload.DEVICE)
            noise = step(latents, t) if step else forward(model, impl, latents, t, text)
            latents = latents - noise.to(dtype) / a.steps   # an Euler step of the flow
            workload.sync()
            step_s.append(time.perf_counter() - s0)
            step_moved.append(vpage_query.moved_between(m0, vpage_query.moved()))
            used[f"after_step_{i}"] = device_used_mib()
            print(f"step {i}: {step_s[-1]:.3f} s", flush=True)
    checksum = hashlib.sha256(bytes(latents.float().cpu().contiguous().untyped_storage())).hexdigest()[:16]
    med_i = sorted(range(len(step_s)), key=step_s.__getitem__)[len(step_s) // 2] if step_s else None
    res.finish().update(tokens=f * (h // 2) * (w // 2), step_s=step_s,
                        median_step_s=step_s[med_i] if step_s else None, step_moved=step_moved,
                        moved_per_unit=step_moved[med_i] if step_s else None,
                        device_used_mib=used, checksum=checksum)
    med = f"{res['median_step_s']:.3f} s" if step_s else "-"
    print(f"{a.model} ({impl}, offload {a.offload}): {params / 1e9:.2f} B parameters, {res['tokens']} tokens, "
          f"median step {med}, peak allocated {res['peak_allocated'] / 2**30:.2f} GiB, "
          f"device total seen {res['mem_get_info'][1] / 2**30:.2f} GiB, checksum {checksum}")
    res.report(a.json)


if __name__ == "__main__":
    main()
