import { Graph, onnxOps as op } from '@distill/autodiff';
import { describe, expect, it } from 'vitest';
import { OnnxRunner, OnnxTrainingRunner } from './session.js';

const rand = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 0.5);

/** y = LN(gelu(x W1 + b1) W2) with a 2-output head; the loss lives outside the graph. */
function build() {
  const g = new Graph();
  const w1 = g.input('w1', [6, 8], { requiresGrad: true });
  const b1 = g.input('b1', [8], { requiresGrad: true });
  const w2 = g.input('w2', [8, 6], { requiresGrad: true });
  const gamma = g.input('gamma', [6], { requiresGrad: true });
  const beta = g.input('beta', [6], { requiresGrad: true });
  const x = g.input('x', [5, 6]);
  const h = op.layerNorm(op.gemm(op.geluTanh(op.gemm(x, w1, b1)), w2), gamma, beta);
  const [a, b] = op.split(h, 1, [2, 4]);
  return { g, params: [w1, b1, w2, gamma, beta], outputs: [op.tanh(a), op.reduceSum(b, [1])] };
}

describe('OnnxTrainingRunner: a forward and a backward session over the graphs of compileTraining', () => {
  it('gives the same outputs and gradients as one combined graph in an OnnxRunner', async () => {
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
    const shapes: Record<string, number[]> = { w1: [6, 8], b1: [8], w2: [8, 6], gamma: [6], beta: [6], x: [5, 6] };
    Object.entries(shapes).forEach(
      ([k, s], i) =>
        (feeds[k] = {
          data: rand(
            s.reduce((p, q) => p * q, 1),
            i,
          ),
          dims: s,
        }),
    );
    const seeds = [rand(10, 9), rand(5, 10)];

    // combined: seeds as inputs, gradients as outputs
    const one = build();
    const sIn = one.outputs.map((o, i) => one.g.input(`s${i}`, [...o.shape]));
    const grads = one.g.gradients(one.outputs, sIn, one.params);
    const r = await OnnxRunner.create(
      one.g.encode([...one.outputs, ...grads], ['o0', 'o1', ...grads.map((_, i) => `g${i}`)]),
      { threads: 1 },
    );
    const want = await r.run({ ...feeds, s0: { data: seeds[0], dims: [5, 2] }, s1: { data: seeds[1], dims: [5] } }, [
      'o0',
      'o1',
      ...grads.map((_, i) => `g${i}`),
    ]);
    await r.release();

    const two = build();
    const t = await OnnxTrainingRunner.create(two.g.compileTraining(two.outputs, two.params), { threads: 1 });
    const outs = await t.forward(feeds);
    const gs = await t.backward(seeds);
    await t.release();
    [...outs, ...gs].forEach((got, i) => expect(Array.from(got), `output ${i}`).toEqual(Array.from(want[i])));
  });

  it('says which feed is missing, and that backward needs a forward run first', async () => {
    const { g, params, outputs } = build();
    const t = await OnnxTrainingRunner.create(g.compileTraining(outputs, params), { threads: 1 });
    await expect(t.backward([new Float32Array(10), new Float32Array(5)])).rejects.toThrow(/run forward first/);
    await expect(t.forward({})).rejects.toThrow(/no feed for input 'w1'/);
    await t.release();
  });
});
