import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, tf, type NamedVariable } from '@distill/core';
import { AdamW } from './adamw.js';

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
    // reference, computed by hand from the torch formulas
    const ref = (x: number, gs: number[], lr: number) => {
      let m = 0, v = 0;
      gs.forEach((g, i) => {
        const t = i + 1;
        x *= 1 - lr * 0.01;
        m = 0.9 * m + 0.1 * g;
        v = 0.999 * v + 0.001 * g * g;
        x -= (lr * (m / (1 - 0.9 ** t))) / (Math.sqrt(v / (1 - 0.999 ** t)) + 1e-8);
      });
      return x;
    };
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
});
