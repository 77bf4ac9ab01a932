#!/usr/bin/env python3
"""The reference step of tools/bench/reference_step.py (same model, same AdamW) on a chosen torch
device, timed with device synchronisation. Prints one JSON line. Used by the GPU bundle's run.sh:

    python3 torch_step.py --device cuda [--layers 4 --batch 32 --seq 65 --dim 256 --heads 4 --mlp 1024]
"""
import argparse
import json
import os
import statistics
import sys
import time

_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_here, os.path.join(_here, "..")]  # the repo (tools/bench) or the bundle (same folder)
from reference_step import build, loss_fn  # noqa: E402
import torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    for k, v in dict(layers=4, batch=32, seq=65, dim=256, heads=4, mlp=1024, warmup=3, steps=10).items():
        ap.add_argument(f"--{k}", type=int, default=v)
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on CUDA (PyTorch's default is off for matmul)")
    a = ap.parse_args()
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    gen = torch.Generator().manual_seed(1)
    params = [p.detach().to(dev).requires_grad_() for p in build(a.layers, a.dim, a.mlp, gen)]
    x = torch.randn(a.batch, a.seq, a.dim, generator=gen).to(dev)
    target = torch.randn(a.batch, a.dim, generator=gen).to(dev)
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    times, losses = [], []
    for s in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(params, x, target, a.layers, a.heads)
        loss.backward()
        opt.step()
        losses.append(float(loss))  # the loss crosses to the host every step, as in the onnx bench
        sync()
        if s >= a.warmup:
            times.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({
        "engine": f"pytorch {torch.__version__} {dev}" + (" tf32" if a.tf32 and dev.type == "cuda" else ""),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "params": sum(p.numel() for p in params),
        "ms_per_step": round(statistics.median(times), 3),
        "ms_all": [round(t, 2) for t in times],
        "loss_first": losses[0],
        "loss_last": losses[-1],
    }))


if __name__ == "__main__":
    sys.exit(main())
