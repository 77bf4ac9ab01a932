import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, tf } from '../index.js';
// The benchmark's reference transformer (a dev tool in tools/bench, not shipped) is the workload compared here.
import { createReferenceModel, referenceGrads } from '../../../../tools/bench/src/reference-model.js';
import { collapseTranspose, transposeInto } from './js-transpose.js';
import { installWasmFastKernels } from './wasm-fast-kernels.js';

function permutations(n: number): number[][] {
  if (n === 1) return [[0]];
  return permutations(n - 1).flatMap((p) =>
    Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]),
  );
}

describe('JS transpose', () => {
  it('collapses size-1 and adjacent in-order dims', () => {
    expect(collapseTranspose([32, 65, 4, 64], [0, 2, 1, 3])).toEqual({ shape: [32, 65, 4, 64], perm: [0, 2, 1, 3] });
    expect(collapseTranspose([2, 3, 4, 5], [2, 3, 0, 1])).toEqual({ shape: [6, 20], perm: [1, 0] });
    expect(collapseTranspose([2, 1, 4], [1, 2, 0])).toEqual({ shape: [2, 4], perm: [1, 0] });
    expect(collapseTranspose([1, 1], [1, 0])).toEqual({ shape: [1], perm: [0] });
  });

  it('agrees with tf.transpose for every permutation of ranks 1-5 (with size-1 dims)', async () => {
    await initRuntime('cpu', { quiet: true });
    for (const shape of [[7], [3, 5], [2, 1, 4], [2, 3, 4, 5], [3, 2, 1, 4, 5], [2, 5, 3, 2, 4]]) {
      for (const perm of permutations(shape.length)) {
        const x = tf
          .range(
            0,
            shape.reduce((a, b) => a * b, 1),
          )
          .reshape(shape);
        const want = tf.transpose(x, perm).dataSync();
        const got = new Float32Array(want.length);
        transposeInto(x.dataSync() as Float32Array, shape, perm, got);
        expect(Array.from(got), `${shape} ${perm}`).toEqual(Array.from(want));
        x.dispose();
      }
    }
  });
});

describe('installWasmFastKernels', () => {
  const config = { layers: 2, batch: 3, seq: 9, dim: 16, heads: 2, mlp: 32 };
  let plain: { loss: number; grads: Float32Array[] };
  beforeAll(async () => {
    await initRuntime('wasm', { quiet: true });
    const m = createReferenceModel(config, 5);
    const { loss, grads } = referenceGrads(m);
    plain = { loss: loss.dataSync()[0], grads: grads.map((g) => g.dataSync() as Float32Array) };
    tf.dispose([loss, ...grads]);
    m.dispose();
  });
  afterAll(() => installWasmFastKernels().uninstall());

  it('batched matMul agrees with the plain wasm kernel for every transpose flag', () => {
    const fast = installWasmFastKernels();
    fast.uninstall();
    const cases = [false, true].flatMap((ta) => [false, true].map((tb) => ({ ta, tb })));
    const make = (ta: boolean, tb: boolean) => {
      const a = tf.randomNormal(ta ? [2, 3, 7, 5] : [2, 3, 5, 7], 0, 1, 'float32', 11);
      const b = tf.randomNormal(tb ? [2, 3, 4, 7] : [2, 3, 7, 4], 0, 1, 'float32', 12);
      return { a, b };
    };
    const plainOut = cases.map(({ ta, tb }) =>
      tf.tidy(() => {
        const { a, b } = make(ta, tb);
        return Array.from(tf.matMul(a, b, ta, tb).dataSync());
      }),
    );
    const again = installWasmFastKernels();
    cases.forEach(({ ta, tb }, i) => {
      const got = tf.tidy(() => {
        const { a, b } = make(ta, tb);
        return Array.from(tf.matMul(a, b, ta, tb).dataSync());
      });
      expect(got.length).toBe(plainOut[i].length);
      got.forEach((v, j) => expect(v).toBeCloseTo(plainOut[i][j], 4));
    });
    expect(again.stats.perItemBatchMatMuls).toBe(4);
  });

  it('gives the same loss and gradients on the reference step (float tolerance), using both fast paths', () => {
    const fast = installWasmFastKernels();
    const m = createReferenceModel(config, 5);
    const { loss, grads } = referenceGrads(m);
    expect(fast.stats.jsTransposes).toBeGreaterThan(0);
    expect(fast.stats.perItemBatchMatMuls).toBeGreaterThan(0);
    expect(loss.dataSync()[0]).toBeCloseTo(plain.loss, 6);
    let worst = 0;
    grads.forEach((g, j) => {
      const v = g.dataSync();
      const scale = Math.max(...plain.grads[j].map(Math.abs), 1e-12);
      for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(v[i] - plain.grads[j][i]) / scale);
    });
    expect(worst).toBeLessThan(1e-4);
    tf.dispose([loss, ...grads]);
    m.dispose();
  });
});
