import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, tf } from './index.js';

// Every transpose/bias combination of matMul and fused.matMul, computed on the reference `cpu`
// backend and on `wasm` with the fix installed, must agree.
const cases: { ta: boolean; tb: boolean; bias: boolean; batch: boolean }[] = [];
for (const ta of [false, true])
  for (const tb of [false, true])
    for (const bias of [false, true]) for (const batch of [false, true]) cases.push({ ta, tb, bias, batch });

function inputs(c: (typeof cases)[number], seed: number) {
  const [m, k, n, b] = [5, 7, 3, 2];
  const aShape = c.batch ? [b, ...(c.ta ? [k, m] : [m, k])] : c.ta ? [k, m] : [m, k];
  const bShape = c.batch ? [b, ...(c.tb ? [n, k] : [k, n])] : c.tb ? [n, k] : [k, n];
  return {
    a: tf.randomNormal(aShape, 0, 1, 'float32', seed),
    b: tf.randomNormal(bShape, 0, 1, 'float32', seed + 1),
    bias: c.bias ? tf.randomNormal([n], 0, 1, 'float32', seed + 2) : undefined,
  };
}

function run(c: (typeof cases)[number], fused: boolean): number[] {
  return tf.tidy(() => {
    const { a, b, bias } = inputs(c, 7);
    const out = fused
      ? tf.fused.matMul({
          a: a as tf.Tensor2D,
          b: b as tf.Tensor2D,
          transposeA: c.ta,
          transposeB: c.tb,
          bias,
          activation: 'relu',
        })
      : tf.matMul(a, b, c.ta, c.tb);
    return Array.from(out.dataSync());
  });
}

function maxDiff(x: number[], y: number[]): number {
  expect(x.length).toBe(y.length);
  return Math.max(...x.map((v, i) => Math.abs(v - y[i])));
}

describe('wasm matmul fix', () => {
  const reference = new Map<string, number[]>();
  let unpatchedFusedBiasError = 0;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    for (const c of cases)
      for (const fused of [false, true]) reference.set(JSON.stringify({ ...c, fused }), run(c, fused));
    // The bug the fix exists for: wasm's own _FusedMatMul with a bias and a transpose flag is wrong.
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const { createRequire } = await import('node:module');
    const { dirname } = await import('node:path');
    wasm.setWasmPaths(dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm')) + '/');
    await tf.setBackend('wasm');
    const c = { ta: true, tb: false, bias: true, batch: false };
    unpatchedFusedBiasError = maxDiff(run(c, true), reference.get(JSON.stringify({ ...c, fused: true }))!);
    const rt = await initRuntime('wasm', { quiet: true });
    expect(rt.wasmMatmulFix).toBe(true);
  });

  it('documents that unpatched wasm _FusedMatMul with bias + transposeA is wrong', () => {
    expect(unpatchedFusedBiasError).toBeGreaterThan(0.1);
  });

  for (const c of cases) {
    for (const fused of [false, true]) {
      if (fused && c.batch) continue; // tf.fused.matMul takes rank-2 inputs here; batched is covered by matMul
      if (!fused && c.bias) continue; // a bias exists only for the fused kernel
      it(`${fused ? 'fused.matMul' : 'matMul'} transposeA=${c.ta} transposeB=${c.tb} bias=${c.bias} batched=${c.batch} equals cpu`, () => {
        expect(tf.getBackend()).toBe('wasm');
        expect(maxDiff(run(c, fused), reference.get(JSON.stringify({ ...c, fused }))!)).toBeLessThan(1e-4);
      });
    }
  }

  it('gradients through transposed matmuls equal cpu', async () => {
    const grads = () =>
      tf.tidy(() => {
        const a = tf.randomNormal([4, 6], 0, 1, 'float32', 3);
        const b = tf.randomNormal([5, 6], 0, 1, 'float32', 4);
        const bias = tf.randomNormal([5], 0, 1, 'float32', 5);
        const g = tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
          tf.fused
            .matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, transposeB: true, bias: z })
            .square()
            .sum(),
        )([a, b, bias]);
        return g.map((t) => Array.from(t.dataSync()));
      });
    const onWasm = grads();
    await tf.setBackend('cpu');
    const onCpu = grads();
    await tf.setBackend('wasm');
    onWasm.forEach((g, i) => expect(maxDiff(g, onCpu[i])).toBeLessThan(1e-3));
  });

  it('leaks no tensors or backend buffers over 100 calls', () => {
    const c = { ta: true, tb: true, bias: true, batch: false };
    run(c, true);
    run({ ...c, batch: true }, false);
    const before = tf.memory().numTensors;
    const dataIds = tf.backend().numDataIds();
    for (let i = 0; i < 100; i++) {
      run(c, true);
      run({ ...c, batch: true }, false);
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.backend().numDataIds()).toBe(dataIds);
  });
});
