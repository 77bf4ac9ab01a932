#!/usr/bin/python3
"""PyTorch peer of `npx nx run training:bench-base`: one training step (forward + backward + AdamW)
of the paper's student, ViT-B/16 (224 px, CLS feature) + BERT-base (pooler), built from their
configs with random weights, two linear projections + L2 normalisation, a symmetric InfoNCE loss.
Prints one JSON line: ms/step (median of the timed steps), pairs/s, peak RSS, parameters.

Run with Debian's torch: OPENBLAS_NUM_THREADS=2 /usr/bin/python3 tools/bench/base_step.py --batch 8
(1 torch thread, 2 OpenBLAS threads, as in /work/shared/notes/environment.md).
"""
import argparse
import json
import math
import os
import resource
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class Attention(nn.Module):
    def __init__(self, d, heads, p):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.heads, self.p = heads, p

    def forward(self, x, bias=None):
        B, L, D = x.shape
        dh = D // self.heads
        split = lambda t: t.view(B, L, self.heads, dh).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dh)
        if bias is not None:
            s = s + bias
        a = F.dropout(torch.softmax(s, -1), self.p, self.training)
        return self.o(torch.matmul(a, v).transpose(1, 2).reshape(B, L, D))


class VitLayer(nn.Module):  # pre-LN (HF ViTLayer)
    def __init__(self, d, heads, mlp, eps):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)
        self.attn = Attention(d, heads, 0.0)
        self.fc1, self.fc2 = nn.Linear(d, mlp), nn.Linear(mlp, d)

    def forward(self, h):
        h = h + self.attn(self.ln1(h))
        return h + self.fc2(F.gelu(self.fc1(self.ln2(h))))


class Vit(nn.Module):
    """ViTModel (google/vit-base-patch16-224-in21k config), CLS feature of the final LayerNorm."""

    def __init__(self, image=224, patch=16, d=768, layers=12, heads=12, mlp=3072, eps=1e-12):
        super().__init__()
        self.patch = nn.Conv2d(3, d, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, d) * 0.02)
        self.layers = nn.ModuleList(VitLayer(d, heads, mlp, eps) for _ in range(layers))
        self.ln = nn.LayerNorm(d, eps=eps)

    def forward(self, px):
        x = self.patch(px).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        for layer in self.layers:
            h = layer(h)
        return self.ln(h)[:, 0]


class BertLayer(nn.Module):  # post-LN (HF BertLayer)
    def __init__(self, d, heads, mlp, eps, p):
        super().__init__()
        self.attn = Attention(d, heads, p)
        self.ln1, self.ln2 = nn.LayerNorm(d, eps=eps), nn.LayerNorm(d, eps=eps)
        self.fc1, self.fc2 = nn.Linear(d, mlp), nn.Linear(mlp, d)
        self.p = p

    def forward(self, h, bias):
        a = self.ln1(h + F.dropout(self.attn(h, bias), self.p, self.training))
        return self.ln2(a + F.dropout(self.fc2(F.gelu(self.fc1(a))), self.p, self.training))


class Bert(nn.Module):
    """BertModel (bert-base-uncased config), pooler output (dense + tanh on [CLS])."""

    def __init__(self, vocab=30522, d=768, layers=12, heads=12, mlp=3072, max_pos=512, eps=1e-12, p=0.1):
        super().__init__()
        self.word, self.pos, self.tok_type = nn.Embedding(vocab, d), nn.Embedding(max_pos, d), nn.Embedding(2, d)
        self.ln = nn.LayerNorm(d, eps=eps)
        self.layers = nn.ModuleList(BertLayer(d, heads, mlp, eps, p) for _ in range(layers))
        self.pool = nn.Linear(d, d)
        self.p = p

    def forward(self, ids, mask):
        L = ids.shape[1]
        pos = torch.arange(L).unsqueeze(0)
        h = F.dropout(self.ln(self.word(ids) + self.pos(pos) + self.tok_type(torch.zeros_like(ids))), self.p, self.training)
        bias = (1.0 - mask[:, None, None, :]) * -10000.0
        for layer in self.layers:
            h = layer(h, bias)
        return torch.tanh(self.pool(h[:, 0]))


class Student(nn.Module):
    def __init__(self, dim, vocab):
        super().__init__()
        self.image, self.text = Vit(), Bert(vocab=vocab)
        self.image_proj, self.text_proj = nn.Linear(768, dim), nn.Linear(768, dim)

    def forward(self, px, ids, mask):
        return F.normalize(self.image_proj(self.image(px)), dim=-1), F.normalize(self.text_proj(self.text(ids, mask)), dim=-1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=32)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=30522)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Student(a.dim, a.vocab).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    B, L = a.batch, a.length
    px = torch.randn(B, 3, 224, 224)
    ids = torch.randint(0, a.vocab, (B, L))
    mask = torch.ones(B, L)
    target = torch.arange(B)
    times = []
    for i in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        si, st = model(px, ids, mask)
        logits = si @ st.t() / 0.05
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= a.warmup:
            times.append((time.perf_counter() - t0) * 1000)
    ms = statistics.median(times)
    print(json.dumps({
        "engine": "pytorch", "torch": torch.__version__, "batch": B, "length": L, "ms": ms, "times": times,
        "pairs_per_s": B / ms * 1000, "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "params": sum(p.numel() for p in model.parameters()), "loss": float(loss),
    }))


if __name__ == "__main__":
    main()
