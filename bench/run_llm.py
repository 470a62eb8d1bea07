#!/usr/bin/env python3
"""An LLM decode: transformers' LlamaForCausalLM from a Llama-3-8B-shaped
configuration with random weights, a prefill of a 512-token prompt, then 64
greedy decoded tokens.

    python3 bench/run_llm.py [--layers 32] [--prompt 512] [--new-tokens 64]
    VPAGE_CAP=8G VPAGE_PAGING=demand LD_PRELOAD=build/libvpage.so python3 bench/run_llm.py

Weights are random from a fixed seed, drawn on the GPU (bench/workload.py);
the prompt is random token ids. --save-pretrained DIR writes them as a
transformers checkpoint (safetensors shards) and exits; --from-pretrained
DIR loads the model from one as users do (LlamaForCausalLM.from_pretrained
into host memory, then .to("cuda")). --offload runs the peers: group (diffusers
group offloading over the decoder layers; the embedding and the head stay
on the GPU) and sequential (accelerate's cpu_offload).

Prints prefill time, decode tokens/s, peak device memory, the first decoded
tokens and a checksum of all of them (identical across runs with the same
seed: compare runs with and without the preload, or with an offload), and
vpage's stats when preloaded. --json writes all of it.
"""
import argparse
import hashlib
import json
import os
import time

import torch

import vpage_query
import workload

LLAMA3_8B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                 num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0)


def layers_parent(model):
    """Group offloading's blocks live in model.model.layers; the head is outside."""
    return model.model, [model.lm_head]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=LLAMA3_8B["hidden_size"], help="smaller for checks of the script")
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--offload", choices=workload.OFFLOAD, default="none")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-pretrained", metavar="DIR", help="save the model as a transformers checkpoint and exit")
    ap.add_argument("--from-pretrained", metavar="DIR", help="load the model from a transformers checkpoint")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--deterministic", action="store_true",
                    help="torch.use_deterministic_algorithms(True) and a fixed cuBLAS workspace")
    a = ap.parse_args()
    if a.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = dict(LLAMA3_8B, num_hidden_layers=a.layers)
    if a.hidden != LLAMA3_8B["hidden_size"]:
        scale = a.hidden / LLAMA3_8B["hidden_size"]
        shape.update(hidden_size=a.hidden, intermediate_size=int(14336 * scale) // 64 * 64,
                     num_attention_heads=max(1, a.hidden // 128), num_key_value_heads=max(1, a.hidden // 512),
                     vocab_size=8192)
    cfg = LlamaConfig(**shape)
    t0 = time.perf_counter()
    if a.from_pretrained:
        model = LlamaForCausalLM.from_pretrained(a.from_pretrained, torch_dtype=torch.bfloat16)
        if a.offload == "none":
            model = model.to(workload.DEVICE)
    else:
        with workload.params_on_meta():
            model = LlamaForCausalLM(cfg)
        workload.fill(model, a.seed, workload.home_of(a.offload), torch.bfloat16)
        if cfg.tie_word_embeddings:
            model.tie_weights()
    if a.save_pretrained:
        model.save_pretrained(a.save_pretrained)
        print(f"saved {a.save_pretrained}", flush=True)
        return
    model = workload.apply_offload(model.eval(), a.offload, layers_parent)
    workload.sync()
    res = workload.Result(a.offload, time.perf_counter() - t0, model)

    g = torch.Generator(device="cpu").manual_seed(a.seed + 1)
    ids = torch.randint(0, cfg.vocab_size, (1, a.prompt), generator=g).to(workload.DEVICE)
    tokens = []
    with torch.no_grad(), res.timed():
        s0 = time.perf_counter()
        out = model(input_ids=ids, use_cache=True)
        nxt = out.logits[:, -1:].argmax(-1)
        tokens.append(int(nxt.item()))
        prefill_s = time.perf_counter() - s0
        prefill_sum = hashlib.sha256(bytes(out.logits[:, -1].float().cpu().contiguous().untyped_storage())).hexdigest()[:16]
        past = out.past_key_values
        m1 = vpage_query.moved()
        s1 = time.perf_counter()
        for _ in range(a.new_tokens - 1):
            out = model(input_ids=nxt, past_key_values=past, use_cache=True)
            past = out.past_key_values
            nxt = out.logits[:, -1:].argmax(-1)
            tokens.append(int(nxt.item()))
        decode_s = time.perf_counter() - s1
        decode_moved = vpage_query.moved_between(m1, vpage_query.moved())
    checksum = hashlib.sha256(json.dumps(tokens).encode()).hexdigest()[:16]
    per_token = decode_s / max(1, a.new_tokens - 1)
    res.finish().update(model=f"Llama-3-8B-shaped, {a.layers} layers", prompt=a.prompt, new_tokens=a.new_tokens,
                        prefill_s=prefill_s, decode_s=decode_s, s_per_token=per_token, tok_s=1.0 / per_token,
                        tokens=tokens, prefill_checksum=prefill_sum, checksum=checksum,
                        moved_per_unit=[b / max(1, a.new_tokens - 1) for b in decode_moved] if decode_moved else None)
    print(f"{res['model']} (offload {a.offload}): {res['weight_bytes'] / 1e9:.2f} GB of weights, prefill "
          f"{a.prompt} tokens {prefill_s:.3f} s, decode {res['tok_s']:.2f} tok/s, peak allocated "
          f"{res['peak_allocated'] / 2**30:.2f} GiB, tokens {tokens[:6]}, checksum {checksum}")
    res.report(a.json)


if __name__ == "__main__":
    main()
