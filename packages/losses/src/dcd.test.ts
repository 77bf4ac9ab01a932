import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, Rng, tf, tfOps } from '@distill/core';
import { dcdDualEncoder, DCD_DEFAULTS } from './dcd.js';
import { l2n } from './dsmd.js';

const rand = (seed: number, n: number, d: number) => l2n(tf.tensor2d(new Rng(seed).normalArray(n * d), [n, d]));
const opts = { ...DCD_DEFAULTS, topK: 4, scoreTemperature: 0.5 };

/** Value and gradient (w.r.t. the raw student image features) of the dual-encoder DCD loss on the current backend. */
function dcdValueAndGrad(withQueue: boolean): { value: number; grad: Float32Array } {
  return tf.tidy(() => {
    const x = tf.tensor2d(new Rng(3).normalArray(6 * 8), [6, 8]);
    const queues = withQueue ? { image: rand(21, 5, 8), text: rand(22, 5, 8) } : undefined;
    const f = (v: tf.Tensor) => dcdDualEncoder({ image: l2n(v as tf.Tensor2D), text: rand(14, 6, 8) }, { image: rand(11, 6, 8), text: rand(12, 6, 8) }, opts, queues);
    const { value, grad } = tf.valueAndGrad(f)(x);
    return { value: value.dataSync()[0], grad: Float32Array.from(grad.dataSync()) };
  });
}

describe('DCD on every backend (no UnsortedSegmentSum)', () => {
  let cpu: { value: number; grad: Float32Array }[] = [];
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
    cpu = [dcdValueAndGrad(false), dcdValueAndGrad(true)];
  });
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it("the take DCD selects with (Ops.take on tfjs) has tf.gather's gradient bit for bit (each entry gets one dy or none)", () => {
    const gatherDistinct = (v: tf.Tensor1D, i: number[]) => tfOps().take(v, tf.tensor1d(i, 'int32'));
    const x = tf.tensor1d(new Rng(7).normalArray(12));
    const idx = [5, 0, 11, 3, 7];
    const w = tf.tensor1d(new Rng(8).normalArray(idx.length));
    const mine = tf.grad((v: tf.Tensor) => gatherDistinct(v as tf.Tensor1D, idx).mul(w).sum())(x).dataSync();
    const ref = tf.grad((v: tf.Tensor) => tf.gather(v, tf.tensor1d(idx, 'int32')).mul(w).sum())(x).dataSync();
    expect(Array.from(mine)).toEqual(Array.from(ref));
    expect(Array.from(gatherDistinct(x, idx).dataSync())).toEqual(idx.map((i) => x.dataSync()[i]));
    expect(() => gatherDistinct(x, [1, 1])).toThrow(/given twice/);
    expect(() => gatherDistinct(x, [12])).toThrow(/out of range/);
  });

  it('trains on wasm (the default engine) with the same loss and gradient as on cpu', async () => {
    await initRuntime('wasm', { quiet: true });
    expect(tf.getBackend()).toBe('wasm');
    for (const [k, withQueue] of [false, true].entries()) {
      const wasm = dcdValueAndGrad(withQueue);
      expect(Number.isFinite(wasm.value)).toBe(true);
      expect(Math.abs(wasm.value - cpu[k].value)).toBeLessThan(1e-5 * Math.abs(cpu[k].value) + 1e-7);
      const worst = Math.max(...Array.from(wasm.grad, (g, i) => Math.abs(g - cpu[k].grad[i])));
      expect(worst).toBeLessThan(1e-5);
      expect(Math.max(...Array.from(cpu[k].grad, Math.abs))).toBeGreaterThan(1e-4); // a gradient reaches the features
    }
  });
});
