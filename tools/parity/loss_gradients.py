#!/usr/bin/env python3
"""Float64 PyTorch autograd gradients of distill's losses w.r.t. the student features: the
outside values the losses' gradient tests compare both engines (tfjs and the onnx graph) with.

  /usr/bin/python3 tools/parity/loss_gradients.py \
      --out packages/losses/src/fixtures/parity/loss_gradients.json \
      --balancer-out packages/balancer/src/fixtures/paper-balancer.json

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


# ---- DCD for dual encoders (the DCD block of dsmd_public.json's description, on in-batch candidates):
# row i of image-to-text scores its own caption (candidate 0), then the other captions in batch order,
# then the queue keys; scores = similarity / score_temperature; the teacher's plan has no gradient.
def dcd_rows(teacher, student, top_k, T, alpha):
    B, C = teacher.shape
    t_sel, s_sel = [], []
    for i in range(B):
        order = sorted(range(C), key=lambda c: -teacher[i, c].item())[:top_k]
        cand = [0] + [c for c in order if c != 0]
        cand = cand[:top_k]
        t_sel.append(teacher[i, order])
        s_sel.append(student[i, cand])
    t = torch.stack(t_sel)
    s = torch.stack(s_sel)
    p = torch.softmax(t, dim=1)
    plogp = (p * torch.log(p)).sum(dim=1)
    share = plogp / plogp.sum()
    r = torch.softmax((1 - share) ** 2, dim=0)
    # 'T^2 * sum_i mean_all((t/T - s/T)^2) * r_i': the mean over every entry of the batch, times r_i, summed over i
    d_loss = T * T * (((t / T - s / T) ** 2).mean() * r).sum()
    label = torch.zeros_like(s)
    label[:, 0] = 1
    bce = torch.nn.functional.binary_cross_entropy_with_logits(s, label, reduction='none').mean(dim=1)
    nll = (share * bce).sum()
    return alpha * d_loss + (1 - alpha) * nll


def candidates(q, k, extra, tau):
    B = q.shape[0]
    rows = []
    for i in range(B):
        cols = [k[i]] + [k[j] for j in range(B) if j != i] + ([] if extra is None else list(extra))
        rows.append(torch.stack([(q[i] * c).sum() for c in cols]))
    return torch.stack(rows) / tau


def dcd_dual(si, st, ti, tt, qi, qt, score_tau, top_k=8, T=1.0, alpha=0.2):
    i2t = dcd_rows(candidates(ti, tt, qt, score_tau).detach(), candidates(si, st, qt, score_tau), top_k, T, alpha)
    t2i = dcd_rows(candidates(tt, ti, qi, score_tau).detach(), candidates(st, si, qi, score_tau), top_k, T, alpha)
    return (i2t + t2i) / 2


# ---- the paper balancer (spec dsmd-dcd.md, "Paper balancer, made well defined", eqs 15-17 of the DSMD paper)
def paper_balancer(seq, T=1.0):
    out, hist = [], []
    for L in seq:
        M = len(L)
        a = [max(L) / l for l in L]
        if len(hist) >= 2:
            r = torch.tensor([hist[-1][m] / hist[-2][m] for m in range(M)])
            w = (M * torch.softmax(r / T, dim=0)).tolist()
        else:
            w = [1.0] * M
        hist.append(list(L))
        out.append([w[m] * a[m] for m in range(M)])
    return out


def grads_of(fn, consts, wrt):
    xs = {k: torch.tensor(v, requires_grad=True) for k, v in wrt.items()}
    y = fn(**{k: torch.tensor(v) if not isinstance(v, (int, float)) else v for k, v in consts.items()}, **xs)
    y.backward()
    return {'value': y.item(), 'grads': {k: x.grad.tolist() for k, x in xs.items()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out')
    ap.add_argument('--balancer-out', help='where the paper balancer reference goes (JSON)')
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

    # the formulas here reproduce the fixture's own float64 outputs first (official-code values)
    T_ = lambda k: torch.tensor(D[k])
    checks = {
        'step1/con_img': con(T_('si'), T_('ti'), T_('qi'), tau), 'step1/con_txt': con(T_('st'), T_('tt'), T_('qt'), tau),
        'step1/l1_img': l1(T_('si'), T_('ti')), 'step1/cos_img': cos_loss(T_('si'), T_('ti')),
        'step1/hnd_max_m0.0/total': hnd(T_('si'), T_('st'), T_('ti'), T_('tt'), 0.0, 'max'),
        'step1/hnd_sum_m0.2/total': hnd(T_('si'), T_('st'), T_('ti'), T_('tt'), 0.2, 'sum'),
        'dcd/total_loss': dcd_rows(torch.tensor(i['dcd_teacher_scores_all']), torch.tensor(i['dcd_student_scores_all']), 8, 1.0, 0.2),
    }
    for k, v in checks.items():
        rel = abs(v.item() - o[k]) / abs(o[k])
        if rel > 1e-12:
            sys.exit(f'{k}: {v.item()} != fixture {o[k]} (rel {rel:.3g})')

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

    # DCD for dual encoders (distill's adaptation; defaults topK 8, T 1, alpha 0.2), without and with 4 queue keys
    q4 = {'qi': D['qi'][:4], 'qt': D['qt'][:4]}
    for name, q in (('dcd_dual', None), ('dcd_dual_queue4', q4)):
        args = {'scoreTemperature': tau, 'topK': 8, 'temperature': 1.0, 'alpha': 0.2, 'queue': 0 if q is None else 4}
        add(name, 'dsmd', 'dcdDual', args,
            lambda ti, tt, si, st, q=q: dcd_dual(si, st, ti, tt, None if q is None else torch.tensor(q['qi']), None if q is None else torch.tensor(q['qt']), tau),
            {'ti': D['ti'], 'tt': D['tt']}, {'si': D['si'], 'st': D['st']})

    # the paper balancer's effective weights (w_m a_m) over the fixture's loss sequence and a longer one
    seqs = {'dsmd_public': i['balancer_loss_sequence'],
            'six_steps': [[0.41, 0.52, 3.64, 60.5], [0.37, 0.45, 3.64, 63.5], [0.35, 0.47, 3.1, 40.2], [0.33, 0.40, 2.9, 41.0], [0.36, 0.38, 2.2, 30.7], [0.30, 0.39, 2.4, 22.9]]}
    balancer = {k: {'temperature': 1.0, 'losses': v, 'weights': paper_balancer(v)} for k, v in seqs.items()}
    balancer['six_steps_t0.5'] = {'temperature': 0.5, 'losses': seqs['six_steps'], 'weights': paper_balancer(seqs['six_steps'], 0.5)}

    fx = {
        'about': 'float64 PyTorch autograd gradients of distill losses w.r.t. the student features, from tools/parity/loss_gradients.py; '
                 'inputs: dsmd = step-1 normalised features and initial queues of parity/dsmd_public.json, baselines = baselines-seed7.json',
        'torch': torch.__version__,
        'inputs': {'dsmd': D, 'baselines': Bs},
        'cases': cases,
    }
    text = json.dumps(fx) + '\n'
    if a.balancer_out:
        open(a.balancer_out, 'w').write(json.dumps({
            'about': 'the dsmd-paper balancer (spec dsmd-dcd.md, eqs 15-17: a_m = max L / L_m, r_m = L_m(t-1)/L_m(t-2), '
                     'w_m = M softmax(r/T)_m, 1 for the first two calls) in float64 PyTorch, from tools/parity/loss_gradients.py; '
                     'weights = the effective w_m a_m per call',
            'torch': torch.__version__, 'sequences': balancer}) + '\n')
    if a.out:
        open(a.out, 'w').write(text)
    else:
        print(text, end='')


if __name__ == '__main__':
    main()
