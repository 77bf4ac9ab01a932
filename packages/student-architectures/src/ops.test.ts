import { initRuntime, tf } from '@distill/core';
import { describe, expect, it } from 'vitest';
import { activation, conv1dSame, conv2dSame, embeddingLookup } from './ops.js';

const maxAbs = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];

/** Values and gradients of f on the cpu backend with tfjs's own ops (reference) vs ours, on cpu and wasm. */
async function compare(ours: (xs: tf.Tensor[]) => tf.Tensor, ref: (xs: tf.Tensor[]) => tf.Tensor, make: () => tf.Tensor[]) {
  await initRuntime('cpu', { quiet: true });
  const xs = make();
  const loss = (f: typeof ours) => (...a: tf.Tensor[]) => tf.sum(tf.mul(f(a), tf.sin(tf.range(0, f(a).size).reshape(f(a).shape)))) as tf.Scalar;
  const refVals = [ref(xs), ...tf.grads(loss(ref))(xs)].map((t) => ({ data: t.dataSync().slice(), shape: t.shape }));
  const out: number[] = [];
  for (const backend of ['cpu', 'wasm'] as const) {
    await initRuntime(backend, { quiet: true });
    const ys = xs.map((x) => tf.tensor(x.dataSync(), x.shape, x.dtype));
    const got = [ours(ys), ...tf.grads(loss(ours))(ys.filter((y) => y.dtype === 'float32'))];
    got.forEach((g, i) => out.push(maxAbs(g, tf.tensor(refVals[i].data, refVals[i].shape))));
  }
  await initRuntime('wasm', { quiet: true });
  return Math.max(...out);
}

describe('ops: custom gradients that tfjs-wasm lacks kernels for match tfjs autograd on cpu', () => {
  const cases: [string, number[], number[], 1 | 2][] = [
    ['3x3 stride 1', [2, 6, 6, 3], [3, 3, 3, 4], 1],
    ['3x3 stride 2, odd size', [2, 7, 9, 3], [3, 3, 3, 4], 2],
    ['1x1 stride 2 (shortcut)', [2, 8, 8, 3], [1, 1, 3, 5], 2],
    ['even 4x4 kernel stride 2', [1, 6, 6, 2], [4, 4, 2, 3], 2],
  ];
  for (const [label, xs, ws, stride] of cases) {
    it(`conv2dSame ${label}`, async () => {
      const d = await compare(
        ([x, w]) => conv2dSame(x as tf.Tensor4D, w, undefined, stride),
        ([x, w]) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, 'same'),
        () => [tf.randomNormal(xs, 0, 1, 'float32', 1), tf.randomNormal(ws, 0, 1, 'float32', 2)],
      );
      expect(d).toBeLessThan(1e-4);
    });
  }

  it('conv1dSame with an even width matches tf.conv1d', async () => {
    const d = await compare(
      ([x, w]) => conv1dSame(x as tf.Tensor3D, w, undefined),
      ([x, w]) => tf.conv1d(x as tf.Tensor3D, w as tf.Tensor3D, 1, 'same'),
      () => [tf.randomNormal([2, 7, 5], 0, 1, 'float32', 3), tf.randomNormal([4, 5, 3], 0, 1, 'float32', 4)],
    );
    expect(d).toBeLessThan(1e-4);
  });

  it('embeddingLookup (scatter-add gradient, repeated ids) matches tf.gather', async () => {
    const ids = tf.tensor2d([[1, 3, 3], [0, 1, 1]], [2, 3], 'int32');
    const d = await compare(
      ([t]) => embeddingLookup(t, tf.tensor2d(ids.dataSync(), [2, 3], 'int32')),
      ([t]) => tf.reshape(tf.gather(t, tf.reshape(ids, [-1])), [2, 3, 4]),
      () => [tf.randomNormal([5, 4], 0, 1, 'float32', 5)],
    );
    expect(d).toBeLessThan(1e-5);
  });
});

describe('activations', () => {
  it('gelu (erf), gelu_new (tanh) and quick_gelu at known points', async () => {
    await initRuntime('wasm', { quiet: true });
    const x = tf.tensor1d([-1, 0, 1, 2]);
    const v = (a: Parameters<typeof activation>[1]) => [...activation(x, a).dataSync()];
    // exact: x * Phi(x)
    expect(v('gelu')[2]).toBeCloseTo(0.8413447, 5);
    expect(v('gelu')[0]).toBeCloseTo(-0.1586553, 5);
    expect(v('gelu_new')[3]).toBeCloseTo(1.9545977, 5);
    expect(v('quick_gelu')[2]).toBeCloseTo(1 / (1 + Math.exp(-1.702)), 5);
  });
});
