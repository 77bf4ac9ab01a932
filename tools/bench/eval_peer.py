#!/usr/bin/env python3
"""PyTorch (or NumPy) peer of @distill/eval's grouped Recall@K, for `nx run eval:bench`.

Same definitions as packages/eval/src/recall.ts: S = I T^T in float32; i2t rank = wrong captions
scoring >= the image's best own caption; t2i rank = other images scoring >= the caption's image
(ties pessimistic). Prints one JSON line: metrics, seconds (best of --repeat), engine.
Run with /usr/bin/python3 (Debian's torch + OpenBLAS).
"""
import argparse, json, time, warnings
warnings.filterwarnings("ignore", message="scatter_reduce")
import numpy as np


def ranks_torch(I, T, t2i, torch):
    I = torch.from_numpy(I); T = torch.from_numpy(T); g = torch.from_numpy(t2i.astype(np.int64))
    S = I @ T.T                                   # [nI, nT] float32
    nI, nT = S.shape
    pos = S[g, torch.arange(nT)]                  # own image's score per caption
    best = torch.full((nI,), -float('inf')).scatter_reduce(0, g, pos, reduce='amax')
    ge = (S >= best[:, None]).sum(1)
    own = torch.zeros(nI, dtype=torch.long).scatter_add(0, g, (pos >= best[g]).long())
    i2t = (ge - own).numpy()
    has = torch.zeros(nI, dtype=torch.bool); has[g] = True
    t2i_r = ((S >= pos[None, :]).sum(0) - 1).numpy()
    return i2t[has.numpy()], t2i_r


def ranks_numpy(I, T, t2i):
    S = I @ T.T
    nI, nT = S.shape
    pos = S[t2i, np.arange(nT)]
    best = np.full(nI, -np.inf, dtype=np.float32); np.maximum.at(best, t2i, pos)
    ge = (S >= best[:, None]).sum(1)
    own = np.bincount(t2i, weights=(pos >= best[t2i]), minlength=nI).astype(np.int64)
    has = np.bincount(t2i, minlength=nI) > 0
    return (ge - own)[has], (S >= pos[None, :]).sum(0) - 1


def metrics(i2t, t2i):
    m = {}
    for name, r in (('i2t', i2t), ('t2i', t2i)):
        for k in (1, 5, 10):
            m[f'{name}_r{k}'] = float(100.0 * (r < k).mean())
        m[f'{name}_medr'] = float(np.floor(np.median(r)) + 1)
        m[f'{name}_meanr'] = float(r.mean() + 1)
    m['rsum'] = sum(m[f'{n}_r{k}'] for n in ('i2t', 't2i') for k in (1, 5, 10))
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--images', required=True); ap.add_argument('--texts', required=True)
    ap.add_argument('--text-image', required=True); ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    I = np.load(a.images).astype(np.float32); T = np.load(a.texts).astype(np.float32)
    g = np.load(a.text_image).astype(np.int64)
    try:
        import torch
        torch.set_num_threads(a.threads)
        fn, engine = (lambda: ranks_torch(I, T, g, torch)), f'torch {torch.__version__} ({a.threads} threads)'
    except ImportError:
        fn, engine = (lambda: ranks_numpy(I, T, g)), f'numpy {np.__version__}'
    best = float('inf')
    for _ in range(a.repeat):
        t0 = time.perf_counter(); r = fn(); best = min(best, time.perf_counter() - t0)
    print(json.dumps({'engine': engine, 'seconds': best, 'metrics': metrics(*r)}))


if __name__ == '__main__':
    main()
