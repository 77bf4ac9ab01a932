import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { Graph, broadcastShape, customGradient } from './graph.js';
import * as op from './ops.js';

type Feeds = Record<string, { data: Float32Array; dims: readonly number[] }>;
/** Runs a model once in onnxruntime-node (CPU, 1 thread); returns every output by name. */
async function run(model: Uint8Array, feeds: Feeds): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
  const f: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) f[k] = new ort.Tensor('float32', v.data, v.dims);
  const res = await session.run(f);
  await session.release();
  return Object.fromEntries(Object.entries(res).map(([k, t]) => [k, t.data as Float32Array]));
}

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

describe('onnx graph: training split into a forward and a backward model', () => {
  it('gives the same outputs and gradients as one combined graph', async () => {
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
    const names = ['o0', 'o1', ...grads.map((_, i) => `g${i}`)];
    const r = await run(one.g.encode([...one.outputs, ...grads], names), {
      ...feeds,
      s0: { data: seeds[0], dims: [5, 2] },
      s1: { data: seeds[1], dims: [5] },
    });
    const want = names.map((n) => r[n]);

    // split: the forward model's saved activations feed the backward model, with the seeds
    const two = build();
    const graphs = two.g.compileTraining(two.outputs, two.params);
    expect(graphs.saved.length).toBeGreaterThan(0);
    expect(graphs.forward.inputs).toEqual(['w1', 'b1', 'w2', 'gamma', 'beta', 'x']);
    expect(graphs.forward.outputs).toEqual([...graphs.outputNames, ...graphs.saved]);
    expect(graphs.seedNames).toEqual(['seed_0', 'seed_1']);
    const fwd = await run(graphs.forward.model, Object.fromEntries(graphs.forward.inputs.map((n) => [n, feeds[n]])));
    const bFeeds: Feeds = { seed_0: { data: seeds[0], dims: [5, 2] }, seed_1: { data: seeds[1], dims: [5] } };
    for (const n of graphs.backward.inputs) {
      if (feeds[n]) bFeeds[n] = feeds[n];
      else if (graphs.saved.includes(n)) bFeeds[n] = { data: fwd[n], dims: [...two.g.values.get(n)!.shape] };
    }
    expect(Object.keys(bFeeds).sort()).toEqual([...graphs.backward.inputs].sort());
    const bwd = await run(graphs.backward.model, bFeeds);
    const got = [...graphs.outputNames.map((n) => fwd[n]), ...graphs.backward.outputs.map((n) => bwd[n])];
    got.forEach((v, i) => expect(Array.from(v), `output ${i}`).toEqual(Array.from(want[i])));
  });

  it('accumulates the gradient of a value used twice at its shape; the backward nodes record no gradients', () => {
    const g = new Graph();
    const x = g.input('x', [3, 4], { requiresGrad: true });
    const y = op.add(op.mul(x, x), op.tanh(x)); // x feeds three nodes: three gradients summed
    const [gx] = g.gradients([y], [g.input('seed', [3, 4])], [x]);
    expect(gx.shape).toEqual([3, 4]);
    expect(gx.requiresGrad).toBe(false);
    expect(g.nodes.filter((n) => n.op === 'Add').length).toBeGreaterThanOrEqual(3); // the forward Add + two accumulations
  });

  it('a gradient of the wrong shape is an error naming the value and both shapes', () => {
    const g = new Graph();
    const x = g.input('x', [3], { requiresGrad: true });
    const bad = customGradient(
      (v) => op.exp(v),
      (dy) => [op.reduceSum(dy, [0], true)],
    );
    expect(() => g.gradients([bad(x)], [g.input('seed', [3])], [x])).toThrow(
      'internal: gradient of x has shape [1], expected [3]',
    );
  });

  it('broadcasts static shapes like numpy', () => {
    expect(broadcastShape([3, 1, 5], [4, 1])).toEqual([3, 4, 5]);
    expect(() => broadcastShape([3], [4], 'Add')).toThrow('Add: shapes [3] and [4] do not broadcast');
  });
});

describe('onnx graph: inputs, constants and gradients that reach nothing', () => {
  it('an input name declared twice is an error; inputs default to float32 data (no gradient)', () => {
    const g = new Graph();
    const x = g.input('x', [2]);
    expect([x.dtype, x.requiresGrad, x.rank, x.size]).toEqual(['float32', false, 1, 2]);
    expect(() => g.input('x', [3])).toThrow("graph input 'x' declared twice");
  });

  it('small constants with the same dtype, shape and values are one initializer; others are not shared', async () => {
    const g = new Graph();
    expect(g.scalar(2)).toBe(g.scalar(2));
    expect(g.ints([1, 2])).toBe(g.ints([1, 2]));
    expect(g.constant([1, 2], [2])).not.toBe(g.constant([1, 2], [1, 2])); // another shape
    expect(g.constant([1, 2], [2])).not.toBe(g.constant([1, 2], [2], 'float64')); // another dtype
    const big = Array.from({ length: 17 }, (_, i) => i);
    expect(g.constant(big, [17])).not.toBe(g.constant(big, [17])); // more than 16 values: not looked up
    const n = g.initializers.length;
    expect(g.constant(big.slice(0, 16), [16])).toBe(g.constant(big.slice(0, 16), [16]));
    expect(g.initializers.length).toBe(n + 1);
    // each dtype's values are written as that dtype: float64 and int64 constants cast to float32 give the same numbers
    const f64 = g.constant([0.1, 1e300], [2], 'float64');
    const i64 = g.constant([3, -5], [2], 'int64');
    expect([f64.dtype, i64.dtype]).toEqual(['float64', 'int64']);
    const out = [f64, i64].map((c) => g.emit('Cast', [c], [[2]], { attrs: { to: 1 }, dtype: 'float32' })[0]);
    const res = await run(g.encode(out, ['a', 'b']), {});
    expect([Array.from(res.a), Array.from(res.b)]).toEqual([
      [Math.fround(0.1), Infinity],
      [3, -5],
    ]);
  });

  it('the gradient of an input the outputs do not depend on is zeros of its shape', async () => {
    const g = new Graph();
    const x = g.input('x', [2, 3], { requiresGrad: true });
    const unused = g.input('u', [4], { requiresGrad: true });
    const [gx, gu] = g.gradients([op.reduceSum(op.mul(x, x), [0, 1])], [g.scalar(1)], [x, unused]);
    expect([gx.shape, gu.shape]).toEqual([[2, 3], [4]]);
    const res = await run(g.encode([gx, gu], ['gx', 'gu']), {
      x: { data: Float32Array.from([1, 2, 3, 4, 5, 6]), dims: [2, 3] },
      u: { data: new Float32Array(4).fill(7), dims: [4] },
    });
    expect([Array.from(res.gx), Array.from(res.gu)]).toEqual([
      [2, 4, 6, 8, 10, 12],
      [0, 0, 0, 0],
    ]);
  });
});
