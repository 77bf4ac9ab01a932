#!/usr/bin/env python3
"""Reference values of distill's baseline losses in float64 PyTorch, written from
the formulas of spec/baseline-losses.md only (not from distill's TypeScript code).

  /usr/bin/python3 tools/parity/baseline_losses.py --seed 7 --batch 13 --dim 20 \
      --out packages/losses/src/fixtures/baselines-seed7.json
  /usr/bin/python3 tools/parity/baseline_losses.py --check packages/losses/src/fixtures/baselines.json

--check recomputes a fixture's outputs from its own inputs and prints the largest relative
difference per key (a cross-check of this script against the independent shared fixture).
Output format: the one of shared/parity/baselines.json (inputs s_image, s_text, t_image,
t_text, ids; outputs info_nce_image_text, contrastive, kd, fitnet, rkd_distance_image,
rkd_angle_image, rkd, clip_kd).
"""
import argparse
import json

import torch

torch.set_default_dtype(torch.float64)


def unit_rows(x):
    return x / x.norm(dim=1, keepdim=True)


def positives(ids):
    """P_ij = [id_i = id_j] / #{j : id_j = id_i}."""
    same = (ids[:, None] == ids[None, :]).to(torch.float64)
    return same / same.sum(dim=1, keepdim=True)


def info_nce(q, k, ids, tau):
    logits = q @ k.T / tau
    logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    return -(positives(ids) * logp).sum(dim=1).mean()


def contrastive(si, st, ids, tau):
    return (info_nce(si, st, ids, tau) + info_nce(st, si, ids, tau)) / 2


def kl_rows(p_logits, q_logits):
    """KL(p || q) per row, averaged over rows; p = softmax(p_logits), q = softmax(q_logits)."""
    lp = torch.log_softmax(p_logits, dim=1)
    lq = torch.log_softmax(q_logits, dim=1)
    return (lp.exp() * (lp - lq)).sum(dim=1).mean()


def kd(si, st, ti, tt, tau):
    Ss = si @ st.T / tau
    St = ti @ tt.T / tau
    i2t = kl_rows(St, Ss)
    t2i = kl_rows(St.T, Ss.T)
    return tau * tau * (i2t + t2i) / 2


def fitnet(si, st, ti, tt):
    return ((si - ti) ** 2).mean() + ((st - tt) ** 2).mean()


def smooth_l1(a, b):
    d = (a - b).abs()
    return torch.where(d < 1, 0.5 * d * d, d - 0.5).mean()


def psi_d(x):
    B = x.shape[0]
    d = torch.zeros(B, B)
    for i in range(B):
        for j in range(B):
            if i != j:
                d[i, j] = (x[i] - x[j]).norm()
    return d / d[d > 0].mean()


def psi_a(x):
    B = x.shape[0]
    e = torch.zeros(B, B, x.shape[1])  # e[i, j] = normalise(x_j - x_i), zero when j = i
    for i in range(B):
        for j in range(B):
            if i != j:
                v = x[j] - x[i]
                e[i, j] = v / v.norm()
    return torch.einsum('ijd,ikd->ijk', e, e)  # <e_ji, e_ki>


def rkd_distance(s, t):
    return smooth_l1(psi_d(s), psi_d(t))


def rkd_angle(s, t):
    return smooth_l1(psi_a(s), psi_a(t))


def rkd(si, st, ti, tt):
    return rkd_distance(si, ti) + 2 * rkd_angle(si, ti) + rkd_distance(st, tt) + 2 * rkd_angle(st, tt)


def clip_kd(si, st, ti, tt, ids, tau):
    fd = ((si - ti) ** 2).sum(dim=1).mean() + ((st - tt) ** 2).sum(dim=1).mean()
    return fd + (info_nce(si, tt, ids, tau) + info_nce(st, ti, ids, tau)) / 2


def outputs(inp, tau, tau_kd):
    si, st, ti, tt = (torch.tensor(inp[k]) for k in ('s_image', 's_text', 't_image', 't_text'))
    ids = torch.tensor(inp['ids'])
    return {
        'info_nce_image_text': info_nce(si, st, ids, tau).item(),
        'contrastive': contrastive(si, st, ids, tau).item(),
        'kd': kd(si, st, ti, tt, tau_kd).item(),
        'fitnet': fitnet(si, st, ti, tt).item(),
        'rkd_distance_image': rkd_distance(si, ti).item(),
        'rkd_angle_image': rkd_angle(si, ti).item(),
        'rkd': rkd(si, st, ti, tt).item(),
        'clip_kd': clip_kd(si, st, ti, tt, ids, tau).item(),
    }


def make(seed, batch, dim, tau, tau_kd):
    g = torch.Generator().manual_seed(seed)
    # Groups of 3, 2, 1, 3, 2, 1, ... rows (repeated ids, as several captions of one image).
    ids, gid = [], 0
    while len(ids) < batch:
        ids += [gid] * min(3 - gid % 3, batch - len(ids))
        gid += 1
    si = unit_rows(torch.randn(batch, dim, generator=g))
    st = unit_rows(torch.randn(batch, dim, generator=g))
    # Teacher features correlated with the student's (as after some training), still unit rows.
    ti = unit_rows(si + 0.7 * torch.randn(batch, dim, generator=g))
    tt = unit_rows(st + 0.7 * torch.randn(batch, dim, generator=g))
    inp = {'s_image': si.tolist(), 's_text': st.tolist(), 't_image': ti.tolist(), 't_text': tt.tolist(), 'ids': ids}
    return {
        'about': 'distill baseline losses, float64 PyTorch reference from tools/parity/baseline_losses.py; '
                 'formulas in shared/spec/baseline-losses.md',
        'seed': seed, 'batch': batch, 'dim': dim, 'temperature': tau, 'kd_temperature': tau_kd,
        'inputs': inp, 'outputs': outputs(inp, tau, tau_kd),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seed', type=int, default=7)
    ap.add_argument('--batch', type=int, default=13)
    ap.add_argument('--dim', type=int, default=20)
    ap.add_argument('--temperature', type=float, default=0.1)
    ap.add_argument('--kd-temperature', type=float, default=4.0)
    ap.add_argument('--out')
    ap.add_argument('--check', help='recompute the outputs of an existing fixture and compare')
    a = ap.parse_args()
    if a.check:
        fx = json.load(open(a.check))
        got = outputs(fx['inputs'], fx['temperature'], fx['kd_temperature'])
        worst = 0.0
        for k, v in fx['outputs'].items():
            rel = abs(got[k] - v) / max(abs(v), 1e-12)
            worst = max(worst, rel)
            print(f'{k} {got[k]:.17g} rel={rel:.3g}')
        print(f'worst_rel={worst:.3g}')
        return
    fx = make(a.seed, a.batch, a.dim, a.temperature, a.kd_temperature)
    text = json.dumps(fx) + '\n'
    if a.out:
        open(a.out, 'w').write(text)
    else:
        print(text, end='')


if __name__ == '__main__':
    main()
