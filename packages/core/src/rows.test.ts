import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { l2NormalizeOps, l2NormalizeRows } from '@distill/base';
import { tfOps } from './tensor-ops/index.js';

describe('l2NormalizeRows', () => {
  it('scales each row to unit norm; an all-zero row stays zero (the 1e-12 floor)', () => {
    const x = Float32Array.from([3, 4, 0, 0, 0, -2]);
    expect(Array.from(l2NormalizeRows(x, 2))).toEqual([0.6, 0.8, 0, 0, 0, -1].map(Math.fround));
    expect(Array.from(x)).toEqual([3, 4, 0, 0, 0, -2]); // the input is untouched
  });

  it('divides by the floor when the norm is below it', () => {
    const y = l2NormalizeRows(Float32Array.from([1e-13, 0, 0, 0.5]), 2);
    expect(y[0]).toBeCloseTo(0.1, 6); // 1e-13 / 1e-12: the floor, not the norm
    expect(y[3]).toBe(1);
    expect(l2NormalizeRows(Float32Array.from([1e-13, 0]), 2, 1e-14)[0]).toBeCloseTo(1, 6);
  });

  it('refuses a length that is not whole rows', () => {
    expect(() => l2NormalizeRows(new Float32Array(5), 2)).toThrow(/not rows of 2/);
  });
});

describe('l2NormalizeOps', () => {
  it('equals l2NormalizeRows on the tfjs engine (last axis, same floor)', () => {
    const v = Float32Array.from([1, 2, 2, 0, 0, 0, -3, 0, 4]);
    const y = tf.tidy(() => (l2NormalizeOps(tfOps(), tf.tensor2d(v, [3, 3])) as tf.Tensor).dataSync());
    Array.from(y).forEach((a, i) => expect(a).toBeCloseTo(l2NormalizeRows(v, 3)[i], 6));
  });
});
