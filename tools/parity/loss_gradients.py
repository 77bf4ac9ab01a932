#!/usr/bin/env python3
"""Float64 PyTorch autograd gradients of distill's losses w.r.t. the student features: the
outside values the losses' gradient tests compare both engines (tfjs and the onnx graph) with.

  /usr/bin/python3 tools/parity/loss_gradients.py \
      --out packages/losses/src/fixtures/parity/loss_gradients.json

Inputs come from the committed forward fixtures (no randomness here):
- the DSMD block of packages/losses/src/fixtures/parity/dsmd_public.json (official-code semantics,
  chrisx599/DSMD @241417d): step-1 normalised student/teacher features, the initial queues,
  T = 0.05. The DSMD losses are written from that fixture's `description` (spec section E).
- packages/losses/src/fixtures/baselines-seed7.json (B = 13, D = 20, repeated group ids): the
  baseline losses, with the formulas of tools/parity/baseline_losses.py (written from
  spec/baseline-losses.md, not from distill's TypeScript).

Output: {about, cases: {name: {loss, args, value, grads: {input: [[...]]}}}, inputs: {set: {...}}};
every gradient is d value / d input for the inputs named in `grads` (teacher features and queues are
constants). Both hinge reductions are included: the paper's (max, margin 0) and the official code's
(sum, margin 0.2).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import baseline_losses as bl  # noqa: E402

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, '..', '..', 'packages', 'losses', 'src', 'fixtures')


# ---- DSMD (the dsmd_public.json description)
def con(s, t, q, tau):
    """mean_i CE over logits [s_i.t_i, s_i.q_1..q_K]/T, label 0."""
    logits = torch.cat([(s * t).sum(1, keepdim=True), s @ q.T], dim=1) / tau
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def l1(s, t):
    return (s - t).abs().mean()


def cos_loss(s, t, eps=1e-6):
    c = (s * t).sum(1) / torch.clamp(s.norm(dim=1) * t.norm(dim=1), min=eps)
    return 1 - (c.mean() + 1) / 2


def hinge(a, c, m, reduction):
    S = a @ c.T
    B = S.shape[0]
    off = 1 - torch.eye(B)
    d = S.diag()
    cost_s = torch.clamp(m + S - d[:, None], min=0) * off
    cost_im = torch.clamp(m + S - d[None, :], min=0) * off
    if reduction == 'max':
        return cost_s.max(dim=1).values.sum() + cost_im.max(dim=0).values.sum()
    return cost_s.sum() + cost_im.sum()


def hnd(si, st, ti, tt, m, reduction):
    return hinge(si, ti, m, reduction) + hinge(st, tt, m, reduction) + hinge(si, tt, m, reduction) + hinge(st, ti, m, reduction)


def grads_of(fn, consts, wrt):
    xs = {k: torch.tensor(v, requires_grad=True) for k, v in wrt.items()}
    y = fn(**{k: torch.tensor(v) if not isinstance(v, (int, float)) else v for k, v in consts.items()}, **xs)
    y.backward()
    return {'value': y.item(), 'grads': {k: x.grad.tolist() for k, x in xs.items()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out')
    a = ap.parse_args()
    dsmd = json.load(open(os.path.join(FIX, 'parity', 'dsmd_public.json')))
    o, i = dsmd['outputs'], dsmd['inputs']
    tau = dsmd['config']['temperature_T']
    D = {'si': o['step1/stu_img_norm'], 'st': o['step1/stu_txt_norm'], 'ti': o['step1/tea_img_norm'], 'tt': o['step1/tea_txt_norm'],
         'qi': i['i_queue_init'], 'qt': i['t_queue_init']}
    base = json.load(open(os.path.join(FIX, 'baselines-seed7.json')))
    bi = base['inputs']
    Bs = {'si': bi['s_image'], 'st': bi['s_text'], 'ti': bi['t_image'], 'tt': bi['t_text'], 'ids': bi['ids']}
    btau, kdtau = base['temperature'], base['kd_temperature']

    cases = {}

    def add(name, set_name, loss, args, fn, consts, wrt):
        r = grads_of(fn, consts, wrt)
        cases[name] = {'inputs': set_name, 'loss': loss, 'args': args, **r}

    # DSMD components (the image side; the text side is the same function), both hinge modes, the 4-pair total
    add('cd_img', 'dsmd', 'contrastiveDistill', {'temperature': tau}, lambda ti, qi, si: con(si, ti, qi, tau), {'ti': D['ti'], 'qi': D['qi']}, {'si': D['si']})
    add('cd_txt', 'dsmd', 'contrastiveDistill', {'temperature': tau}, lambda tt, qt, st: con(st, tt, qt, tau), {'tt': D['tt'], 'qt': D['qt']}, {'st': D['st']})
    add('fd_img', 'dsmd', 'featureDistill', {}, lambda ti, si: l1(si, ti), {'ti': D['ti']}, {'si': D['si']})
    add('sd_img', 'dsmd', 'similarityDistill', {}, lambda ti, si: cos_loss(si, ti), {'ti': D['ti']}, {'si': D['si']})
    for red, m in (('max', 0.0), ('sum', 0.2)):
        add(f'hinge_{red}_m{m}', 'dsmd', 'hingePair', {'margin': m, 'reduction': red}, lambda tt, si, m=m, red=red: hinge(si, tt, m, red), {'tt': D['tt']}, {'si': D['si']})
        add(f'hnd_{red}_m{m}', 'dsmd', 'hardNegativeDistill', {'margin': m, 'reduction': red},
            lambda ti, tt, si, st, m=m, red=red: hnd(si, st, ti, tt, m, red), {'ti': D['ti'], 'tt': D['tt']}, {'si': D['si'], 'st': D['st']})

    # baseline losses (tools/parity/baseline_losses.py formulas)
    ids = torch.tensor(Bs['ids'])
    add('contrastive', 'baselines', 'contrastive', {'temperature': btau}, lambda si, st: bl.contrastive(si, st, ids, btau), {}, {'si': Bs['si'], 'st': Bs['st']})
    for t in (kdtau, 0.5):
        add(f'kd_tau{t}', 'baselines', 'kd', {'temperature': t}, lambda ti, tt, si, st, t=t: bl.kd(si, st, ti, tt, t), {'ti': Bs['ti'], 'tt': Bs['tt']}, {'si': Bs['si'], 'st': Bs['st']})
    add('fitnet', 'baselines', 'fitnet', {}, lambda ti, tt, si, st: bl.fitnet(si, st, ti, tt), {'ti': Bs['ti'], 'tt': Bs['tt']}, {'si': Bs['si'], 'st': Bs['st']})
    add('rkd', 'baselines', 'rkd', {}, lambda ti, tt, si, st: bl.rkd(si, st, ti, tt), {'ti': Bs['ti'], 'tt': Bs['tt']}, {'si': Bs['si'], 'st': Bs['st']})
    add('clip_kd', 'baselines', 'clipKd', {'temperature': btau}, lambda ti, tt, si, st: bl.clip_kd(si, st, ti, tt, ids, btau), {'ti': Bs['ti'], 'tt': Bs['tt']}, {'si': Bs['si'], 'st': Bs['st']})

    fx = {
        'about': 'float64 PyTorch autograd gradients of distill losses w.r.t. the student features, from tools/parity/loss_gradients.py; '
                 'inputs: dsmd = step-1 normalised features and initial queues of parity/dsmd_public.json, baselines = baselines-seed7.json',
        'torch': torch.__version__,
        'inputs': {'dsmd': D, 'baselines': Bs},
        'cases': cases,
    }
    text = json.dumps(fx) + '\n'
    if a.out:
        open(a.out, 'w').write(text)
    else:
        print(text, end='')


if __name__ == '__main__':
    main()
