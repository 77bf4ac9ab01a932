#!/usr/bin/python3
"""PyTorch peer of packages/core/src/bench/reference-model.ts: one training step (forward +
backward + AdamW) of the same pre-LN transformer on the same shapes. Prints one JSON line.

Run with Debian's torch: OPENBLAS_NUM_THREADS=2 /usr/bin/python3 tools/bench/reference_step.py
(1 torch thread, 2 OpenBLAS threads, as in /work/shared/notes/environment.md).
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def build(layers, dim, mlp, gen):
    def w(*shape):
        return (torch.randn(*shape, generator=gen) * 0.02).requires_grad_()

    def z(n):
        return torch.zeros(n, requires_grad=True)

    def o(n):
        return torch.ones(n, requires_grad=True)

    params = []
    for _ in range(layers):
        params += [o(dim), z(dim), w(dim, 3 * dim), z(3 * dim), w(dim, dim), z(dim),
                   o(dim), z(dim), w(dim, mlp), z(mlp), w(mlp, dim), z(dim)]
    params += [o(dim), z(dim)]
    return params


def loss_fn(params, x, target, layers, heads):
    B, L, D = x.shape
    dh = D // heads
    h = x.reshape(B * L, D)
    i = 0
    for _ in range(layers):
        ln1g, ln1b, wqkv, bqkv, wo, bo, ln2g, ln2b, w1, b1, w2, b2 = params[i:i + 12]
        i += 12
        a = F.layer_norm(h, (D,), ln1g, ln1b, 1e-5)
        qkv = torch.addmm(bqkv, a, wqkv)
        q, k, v = qkv.reshape(B, L, 3, heads, dh).permute(2, 0, 3, 1, 4).unbind(0)
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(dh))
        ctx = torch.matmul(torch.softmax(scores, -1), v)
        merged = ctx.permute(0, 2, 1, 3).reshape(B * L, D)
        h = h + torch.addmm(bo, merged, wo)
        c = F.layer_norm(h, (D,), ln2g, ln2b, 1e-5)
        f = F.gelu(torch.addmm(b1, c, w1), approximate="tanh")
        h = h + torch.addmm(b2, f, w2)
    out = F.layer_norm(h, (D,), params[i], params[i + 1], 1e-5)
    pooled = out.reshape(B, L, D).mean(1)
    return ((pooled - target) ** 2).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=65)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--mlp", type=int, default=1024)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(1)
    params = build(a.layers, a.dim, a.mlp, gen)
    x = torch.randn(a.batch, a.seq, a.dim, generator=gen)
    target = torch.randn(a.batch, a.dim, generator=gen)
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    times, losses = [], []
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(params, x, target, a.layers, a.heads)
        loss.backward()
        opt.step()
        dt = (time.perf_counter() - t0) * 1000
        losses.append(float(loss))
        if s >= a.warmup:
            times.append(dt)
    print(json.dumps({
        "engine": "pytorch",
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "params": sum(p.numel() for p in params),
        "ms_per_step": statistics.median(times),
        "ms_all": [round(t, 2) for t in times],
        "loss_first": losses[0],
        "loss_last": losses[-1],
    }))


if __name__ == "__main__":
    sys.exit(main())
