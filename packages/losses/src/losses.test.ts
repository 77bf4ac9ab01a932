import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, Rng, tf } from '@distill/core';
import { clipKdLoss, contrastiveLoss, fitnetLoss, kdLoss, rkdLoss } from './baselines.js';
import { dcdDualEncoder, DCD_DEFAULTS } from './dcd.js';
import { contrastiveDistill, dsmdLosses, featureDistill, hingePair, l2n, similarityDistill } from './dsmd.js';
import { resolveLossMethod } from './methods.js';
import { FeatureQueue } from './queue.js';

const B = 5, D = 6, K = 10;
const rand = (seed: number, n = B, d = D) => l2n(tf.tensor2d(new Rng(seed).normalArray(n * d), [n, d]));

/** Max relative difference between tfjs gradients and central finite differences of f at x. */
function gradCheck(f: (x: tf.Tensor2D) => tf.Scalar, x0: tf.Tensor2D, h = 1e-2): number {
  const g = tf.grad((x: tf.Tensor) => f(x as tf.Tensor2D))(x0).dataSync();
  const base = x0.dataSync();
  let worst = 0;
  for (let i = 0; i < base.length; i += 3) {
    const plus = Float32Array.from(base); plus[i] += h;
    const minus = Float32Array.from(base); minus[i] -= h;
    const fp = tf.tidy(() => f(tf.tensor2d(plus, x0.shape as [number, number])).dataSync()[0]);
    const fm = tf.tidy(() => f(tf.tensor2d(minus, x0.shape as [number, number])).dataSync()[0]);
    const num = (fp - fm) / (2 * h);
    worst = Math.max(worst, Math.abs(num - g[i]) / Math.max(1e-2, Math.abs(num), Math.abs(g[i])));
  }
  return worst;
}

describe('DSMD losses', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  // Gradients flow from each loss to the (raw, pre-normalisation) student features.
  const teacher = () => ({ image: rand(11), text: rand(12) });
  const cases: [string, (x: tf.Tensor2D) => tf.Scalar, number?][] = [
    ['contrastive distillation', (x) => contrastiveDistill(l2n(x), teacher().image, rand(13, K), 0.5)],
    ['feature distillation (L1)', (x) => featureDistill(l2n(x), teacher().image)],
    ['similarity distillation', (x) => similarityDistill(l2n(x), teacher().image)],
    ['hinge sum m=0.2', (x) => hingePair(l2n(x), teacher().text, 0.2, 'sum')],
    // max is piecewise linear: a small step keeps the finite differences on one piece
    ['hinge max m=0.2', (x) => hingePair(l2n(x), teacher().text, 0.2, 'max'), 1e-3],
    ['contrastive (no teacher)', (x) => contrastiveLoss(l2n(x), rand(14), 0.5)],
    ['kd', (x) => kdLoss({ image: l2n(x), text: rand(14) }, teacher(), 0.5)],
    ['fitnet', (x) => fitnetLoss({ image: l2n(x), text: rand(14) }, teacher())],
    ['rkd', (x) => rkdLoss({ image: l2n(x), text: rand(14) }, teacher())],
    ['clip-kd', (x) => clipKdLoss({ image: l2n(x), text: rand(14) }, teacher(), 0.5)],
    ['dcd (dual encoder)', (x) => dcdDualEncoder({ image: l2n(x), text: rand(14) }, teacher(), { ...DCD_DEFAULTS, topK: 4, scoreTemperature: 0.5 })],
  ];
  for (const [name, f, h] of cases) {
    it(`${name}: tfjs gradient = finite differences`, () => {
      const x = tf.tensor2d(new Rng(3).normalArray(B * D), [B, D]);
      expect(gradCheck(f, x, h)).toBeLessThan(0.03);
    });
  }

  it('paper and official modes differ exactly in the hinge (max / margin 0 vs sum / margin 0.2)', () => {
    const s = { image: rand(1), text: rand(2) };
    const t = { image: rand(3), text: rand(4) };
    const q = { image: rand(5, K), text: rand(6, K) };
    const paper = resolveLossMethod('dsmd', { temperature: 0.05 });
    const official = resolveLossMethod('dsmd-official', { temperature: 0.05 });
    const x = { studentImage: s.image, studentText: s.text, teacherImage: t.image, teacherText: t.text, imageQueue: q.image, textQueue: q.text };
    const a = Object.fromEntries(Object.entries(paper.loss(x)).map(([k, v]) => [k, v.dataSync()[0]]));
    const b = Object.fromEntries(Object.entries(official.loss(x)).map(([k, v]) => [k, v.dataSync()[0]]));
    expect(Object.keys(a)).toEqual(['l1_loss', 'cos_loss', 'con_loss', 'hnd_loss']);
    for (const k of ['l1_loss', 'cos_loss', 'con_loss']) expect(a[k]).toBe(b[k]);
    expect(a.hnd_loss).not.toBeCloseTo(b.hnd_loss, 3);
    expect(paper.defaultBalancer).toBe('dsmd-paper');
    expect(official.defaultBalancer).toBe('dsmd-official');
    const direct = dsmdLosses(s, t, q, { temperature: 0.05, margin: 0.2, reduction: 'sum', enabled: ['hnd'] });
    expect(direct.hnd_loss.dataSync()[0]).toBeCloseTo(b.hnd_loss, 5);
  });

  it('ablations leave switched-off components out', () => {
    const m = resolveLossMethod('cd,hnd', { temperature: 0.05 });
    expect(m.components).toEqual(['con_loss', 'hnd_loss']);
    expect(m.needsQueue).toBe(true);
    expect(resolveLossMethod('fd,sd', { temperature: 0.05 }).needsQueue).toBe(false);
    expect(() => resolveLossMethod('cd,xx', { temperature: 0.05 })).toThrow(/Unknown loss method 'cd,xx'/);
  });

  it('wrong shapes name both sizes', () => {
    expect(() => featureDistill(rand(1, B, 6), rand(2, B, 8))).toThrow(/student dim 6 != teacher dim 8/);
    expect(() => new FeatureQueue(4, D).enqueue(new Float32Array(B * D), B)).toThrow(/Queue size 4 is smaller than the batch 5/);
  });
});

describe('FeatureQueue', () => {
  it('starts with unit keys, wraps around for any K >= batch, and restores its state', () => {
    const q = new FeatureQueue(7, 3, 1);
    const keys = q.tensor.arraySync() as number[][];
    keys.forEach((k) => expect(Math.hypot(...k)).toBeCloseTo(1, 5));
    const rows = (v: number) => new Float32Array(5 * 3).fill(v);
    q.enqueue(rows(1), 5);
    expect(q.ptr).toBe(5);
    q.enqueue(rows(2), 5); // rows 5, 6, 0, 1, 2
    expect(q.ptr).toBe(3);
    const after = q.tensor.arraySync() as number[][];
    expect(after.map((r) => r[0])).toEqual([2, 2, 2, 1, 1, 2, 2]);
    const saved = q.state();
    const r = new FeatureQueue(7, 3, 99);
    r.load(saved);
    expect(r.ptr).toBe(3);
    expect(r.tensor.arraySync()).toEqual(after);
  });
});
