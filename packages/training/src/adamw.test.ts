import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, Rng, tf, type NamedVariable } from '@distill/core';
import { AdamW, ArrayAdamW } from './adamw.js';

/**
 * torch.optim.AdamW by hand, step by step (decoupled decay first, then the bias-corrected Adam update),
 * with wd 0.01, betas (0.9, 0.999), eps 1e-8: the reference both holders are checked against.
 */
const ref = (x: number, gs: number[], lr: number) => {
  let m = 0,
    v = 0;
  gs.forEach((g, i) => {
    const t = i + 1;
    x *= 1 - lr * 0.01;
    m = 0.9 * m + 0.1 * g;
    v = 0.999 * v + 0.001 * g * g;
    x -= (lr * (m / (1 - 0.9 ** t))) / (Math.sqrt(v / (1 - 0.999 ** t)) + 1e-8);
  });
  return x;
};

describe('AdamW', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  it('matches torch.optim.AdamW on two steps, with per-group learning rates', () => {
    const p: NamedVariable[] = [
      { name: 'a', group: 'image', variable: tf.variable(tf.tensor1d([1, -2])) },
      { name: 'b', group: 'head', variable: tf.variable(tf.tensor1d([0.5])) },
    ];
    const opt = new AdamW(p, { lr: 0.1, weightDecay: 0.01, betas: [0.9, 0.999], eps: 1e-8, groupLr: { head: 0.2 } });
    const g1 = { a: tf.tensor1d([0.3, -0.1]), b: tf.tensor1d([2]) };
    const g2 = { a: tf.tensor1d([0.2, 0.4]), b: tf.tensor1d([-1]) };
    opt.apply(g1);
    opt.apply(g2);
    const a = p[0].variable.dataSync();
    expect(a[0]).toBeCloseTo(ref(1, [0.3, 0.2], 0.1), 6);
    expect(a[1]).toBeCloseTo(ref(-2, [-0.1, 0.4], 0.1), 6);
    expect(p[1].variable.dataSync()[0]).toBeCloseTo(ref(0.5, [2, -1], 0.2), 6);
  });

  it('state round-trips (checkpoint) and lrScale applies to every group', () => {
    const mk = () => [{ name: 'w', group: 'text' as const, variable: tf.variable(tf.tensor1d([1, 2, 3])) }];
    const p1 = mk();
    const o1 = new AdamW(p1, { lr: 0.05, weightDecay: 0, betas: [0.9, 0.999], eps: 1e-8 });
    o1.apply({ w: tf.tensor1d([1, 1, 1]) });
    o1.lrScale = 0.1;
    const saved = o1.state();
    const p2 = mk();
    p2[0].variable.assign(p1[0].variable);
    const o2 = new AdamW(p2, { lr: 0.05, weightDecay: 0, betas: [0.9, 0.999], eps: 1e-8 });
    o2.load(saved);
    expect(o2.groupLr('text')).toBeCloseTo(0.005, 9);
    o1.apply({ w: tf.tensor1d([0.5, -1, 2]) });
    o2.apply({ w: tf.tensor1d([0.5, -1, 2]) });
    expect(Array.from(p2[0].variable.dataSync())).toEqual(Array.from(p1[0].variable.dataSync()));
  });

  it("ArrayAdamW (the onnx engine's, over Float32Arrays) matches torch.optim.AdamW on two steps, with per-group learning rates", () => {
    const a = { name: 'a', group: 'image' as const, shape: [2], data: Float32Array.of(1, -2) };
    const b = { name: 'b', group: 'head' as const, shape: [1], data: Float32Array.of(0.5) };
    const opt = new ArrayAdamW([a, b], {
      lr: 0.1,
      weightDecay: 0.01,
      betas: [0.9, 0.999],
      eps: 1e-8,
      groupLr: { head: 0.2 },
    });
    opt.apply([Float32Array.of(0.3, -0.1), Float32Array.of(2)]);
    opt.apply([Float32Array.of(0.2, 0.4), Float32Array.of(-1)]);
    expect(a.data[0]).toBeCloseTo(ref(1, [0.3, 0.2], 0.1), 6);
    expect(a.data[1]).toBeCloseTo(ref(-2, [-0.1, 0.4], 0.1), 6);
    expect(b.data[0]).toBeCloseTo(ref(0.5, [2, -1], 0.2), 6);
    expect(opt.step).toBe(2);
  });

  it('ArrayAdamW follows the tfjs AdamW over 8 steps (lrScale schedule, per-group lr, weight decay, a parameter without gradient)', () => {
    const rng = new Rng(7);
    const shapes = [[3, 4], [5], [2, 2]];
    const groups = ['image', 'text', 'head'] as const;
    const init = shapes.map((s) => rng.normalArray(s.reduce((x, y) => x * y, 1)));
    const opts = {
      lr: 0.01,
      weightDecay: 0.05,
      betas: [0.9, 0.98] as [number, number],
      eps: 1e-6,
      groupLr: { text: 0.003, head: 0.02 },
    };
    const tv: NamedVariable[] = shapes.map((s, i) => ({
      name: `w${i}`,
      group: groups[i],
      variable: tf.variable(tf.tensor(init[i], s)),
    }));
    const arr = shapes.map((s, i) => ({ name: `w${i}`, group: groups[i], shape: s, data: Float32Array.from(init[i]) }));
    const o1 = new AdamW(tv, opts);
    const o2 = new ArrayAdamW(arr, opts);
    for (let t = 0; t < 8; t++) {
      const scale = t < 4 ? (t + 1) / 4 : 0.1; // warm-up, then a step decay
      o1.lrScale = scale;
      o2.lrScale = scale;
      const g = shapes.map((s) => rng.normalArray(s.reduce((x, y) => x * y, 1)));
      const skip = t % 3 === 2 ? 1 : -1; // w1 gets no gradient on some steps: left alone by both
      o1.apply(Object.fromEntries(shapes.flatMap((s, i) => (i === skip ? [] : [[`w${i}`, tf.tensor(g[i], s)]]))));
      o2.apply(g.map((x, i) => (i === skip ? undefined : x)));
      expect(o2.groupLr('head')).toBeCloseTo(o1.groupLr('head'), 12);
    }
    tv.forEach((v, i) => {
      const want = v.variable.dataSync();
      arr[i].data.forEach((x, k) => expect(Math.abs(x - want[k]), `w${i}[${k}]`).toBeLessThan(1e-6));
    });
    const s1 = o1.state();
    const s2 = o2.state();
    expect(s2.step).toBe(s1.step);
    for (const n of ['w0', 'w1', 'w2']) s2.m[n].forEach((x, k) => expect(Math.abs(x - s1.m[n][k])).toBeLessThan(1e-6));
  });

  it('ArrayAdamW state round-trips through load, and load rejects a mismatched checkpoint', () => {
    const mk = () => [{ name: 'w', group: 'text' as const, shape: [3], data: Float32Array.of(1, 2, 3) }];
    const p1 = mk();
    const o1 = new ArrayAdamW(p1, { lr: 0.05, weightDecay: 0, betas: [0.9, 0.999], eps: 1e-8 });
    o1.apply([Float32Array.of(1, 1, 1)]);
    o1.lrScale = 0.1;
    const saved = o1.state();
    const p2 = mk();
    p2[0].data.set(p1[0].data);
    const o2 = new ArrayAdamW(p2, { lr: 0.05, weightDecay: 0, betas: [0.9, 0.999], eps: 1e-8 });
    o2.load({ ...saved, m: { w: Float32Array.from(saved.m.w) }, v: { w: Float32Array.from(saved.v.w) } });
    o1.apply([Float32Array.of(0.5, -1, 2)]);
    o2.apply([Float32Array.of(0.5, -1, 2)]);
    expect(Array.from(p2[0].data)).toEqual(Array.from(p1[0].data));
    expect(() => o2.load({ ...saved, m: { w: new Float32Array(2) } })).toThrow(
      /'m' of w has 2 values, the parameter 3/,
    );
    expect(() => o2.load({ ...saved, m: {} })).toThrow(/no 'm' for parameter w/);
  });
});
