import { graphOps, initRuntime, OnnxRunner, tf, tfOps, type Ops } from '@distill/core';
import { Graph, type Sym } from '@distill/autodiff';
import { beforeAll, describe, expect, it } from 'vitest';
import { activation, additiveMask, conv1dSame, l2Normalize, type HiddenAct } from './ops.js';

/** The tower layers on both engines: f written once over Ops, run on tfjs and as an onnx graph. */
async function onBoth(
  inputs: { data: number[]; shape: number[] }[],
  f: <T>(o: Ops<T>, xs: T[]) => T,
): Promise<{ tfjs: number[]; graph: number[] }> {
  const tfjs = tf.tidy(() =>
    Array.from(
      f(
        tfOps(),
        inputs.map((x) => tf.tensor(x.data, x.shape)),
      ).dataSync(),
    ),
  );
  const g = new Graph();
  const y = f(graphOps(), inputs.map((x, i) => g.input(`x${i}`, x.shape)) as Sym[]);
  const r = await OnnxRunner.create(g.encode([y], ['y']), { threads: 1 });
  try {
    const feeds = Object.fromEntries(
      inputs.map((x, i) => [`x${i}`, { data: Float32Array.from(x.data), dims: x.shape }]),
    );
    return { tfjs, graph: Array.from((await r.run(feeds, ['y']))[0]) };
  } finally {
    await r.release();
  }
}

describe('tower layers (ops.ts) on tfjs and on the onnx graph', () => {
  beforeAll(async () => {
    await initRuntime('wasm', { quiet: true });
  });

  it('activations at known points: gelu (erf), gelu_new (tanh), quick_gelu, relu, tanh', async () => {
    const x = { data: [-1, 0, 1, 2], shape: [4] };
    const want: Record<HiddenAct, number[]> = {
      gelu: [-0.1586553, 0, 0.8413447, 1.9544997], // x Phi(x)
      gelu_new: [-0.158808, 0, 0.841192, 1.9545977],
      gelu_pytorch_tanh: [-0.158808, 0, 0.841192, 1.9545977],
      quick_gelu: [-1 / (1 + Math.exp(1.702)), 0, 1 / (1 + Math.exp(-1.702)), 2 / (1 + Math.exp(-3.404))],
      relu: [0, 0, 1, 2],
      tanh: [-0.7615942, 0, 0.7615942, 0.9640276],
    };
    for (const act of Object.keys(want) as HiddenAct[]) {
      const { tfjs, graph } = await onBoth([x], (o, [a]) => activation(o, a, act));
      want[act].forEach((v, i) => {
        expect(tfjs[i], `${act} tfjs at ${x.data[i]}`).toBeCloseTo(v, 5);
        expect(graph[i], `${act} graph at ${x.data[i]}`).toBeCloseTo(v, 5);
      });
    }
    expect(() => activation(tfOps(), tf.scalar(1), 'swish' as HiddenAct)).toThrow(
      /Unknown hidden_act 'swish'.*gelu, gelu_new/,
    );
  });

  it('l2Normalize: unit rows, and an all-zero row stays 0 (the 1e-12 floor) on both engines', async () => {
    const { tfjs, graph } = await onBoth([{ data: [3, 4, 0, 0, 0, 0], shape: [2, 3] }], (o, [a]) => l2Normalize(o, a));
    for (const got of [tfjs, graph]) {
      expect(got.slice(0, 3).map((v) => +v.toFixed(6))).toEqual([0.6, 0.8, 0]);
      expect(got.slice(3)).toEqual([0, 0, 0]);
    }
  });

  it("conv1dSame equals tf.conv1d 'same' (even width: TensorFlow pads more on the right), as [B, F, L]", async () => {
    const x = tf.randomNormal([2, 7, 5], 0, 1, 'float32', 3);
    const w = tf.randomNormal([4, 5, 3], 0, 1, 'float32', 4);
    const ref = tf.transpose(tf.conv1d(x as tf.Tensor3D, w as tf.Tensor3D, 1, 'same'), [0, 2, 1]).dataSync();
    const { tfjs, graph } = await onBoth(
      [
        { data: Array.from(x.dataSync()), shape: [2, 7, 5] },
        { data: Array.from(w.dataSync()), shape: [4, 5, 3] },
      ],
      (o, [a, b]) => conv1dSame(o, a, b, undefined),
    );
    for (const got of [tfjs, graph]) got.forEach((v, i) => expect(Math.abs(v - ref[i])).toBeLessThan(1e-5));
    tf.dispose([x, w]);
  });

  it('additiveMask: 0 on tokens, -1e9 on padding, shaped [B, 1, 1, L]', async () => {
    const { tfjs, graph } = await onBoth([{ data: [1, 1, 0, 1, 0, 0], shape: [2, 3] }], (o, [m]) => {
      const a = additiveMask(o, m);
      expect(o.shape(a)).toEqual([2, 1, 1, 3]);
      return a;
    });
    for (const got of [tfjs, graph]) expect(got).toEqual([0, 0, -1e9, 0, -1e9, -1e9]);
  });
});
