#!/usr/bin/env python3
"""The paper's student step of tools/bench/base_step.py (vit-bert base: ViT-B/16 224 px + BERT-base,
two projections, symmetric InfoNCE at temperature 0.05, AdamW) on a chosen torch device, timed with
device synchronisation: the PyTorch peer of student-bench.ts in the GPU bundle. Prints one JSON line.

    python3 torch_base_step.py --device cuda --batch 64 [--tf32]
"""
import argparse
import json
import os
import statistics
import sys
import time

_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [_here, os.path.join(_here, "..")]  # the repo (tools/bench) or the bundle (same folder)
from base_step import Student  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    for k, v in dict(batch=64, length=32, dim=512, vocab=30522, warmup=2, steps=5).items():
        ap.add_argument(f"--{k}", type=int, default=v)
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmuls on CUDA (off: strict fp32, as Dawn's matmuls)")
    a = ap.parse_args()
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
        torch.backends.cudnn.allow_tf32 = a.tf32
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    model = Student(a.dim, a.vocab).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    B, L = a.batch, a.length
    px = torch.randn(B, 3, 224, 224, device=dev)
    ids = torch.randint(0, a.vocab, (B, L), device=dev)
    mask = torch.ones(B, L, device=dev)
    target = torch.arange(B, device=dev)
    times, losses = [], []
    for i in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        si, st = model(px, ids, mask)
        logits = si @ st.t() / 0.05
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss))  # the loss crosses to the host every step, as in the onnx bench
        sync()
        if i >= a.warmup:
            times.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({
        "engine": f"pytorch {torch.__version__} {dev} vit-bert-base" + (" tf32" if a.tf32 and dev.type == "cuda" else ""),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "params": sum(p.numel() for p in model.parameters()),
        "batch": B,
        "ms_per_step": round(statistics.median(times), 3),
        "ms_all": [round(t, 2) for t in times],
        "peak_device_mib": round(torch.cuda.max_memory_allocated(dev) / 2**20) if dev.type == "cuda" else None,
        "loss_first": losses[0],
        "loss_last": losses[-1],
    }))


if __name__ == "__main__":
    sys.exit(main())
