import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Graph, type Sym } from '@distill/autodiff';
import { initRuntime, OnnxRunner, tf } from '../index.js';
import { graphOps } from './graph-ops.js';
import type { Ops } from '@distill/base';
import { conv2dSameNhwc, embeddingLookup } from './tf-kernels.js';
import { tfOps } from './tf-ops.js';

/**
 * The `Ops<T>` contract: every method gives the same values and the same gradients on the tfjs engine
 * (`tfOps`, tfjs autodiff, on the cpu and the wasm backend) and on the onnx engine (`graphOps`, the
 * graph builder's autodiff, run by onnxruntime). Each case is one function written once over `Ops<T>`;
 * the loss is sum(f(inputs) * w) for a fixed random w, the gradients are taken w.r.t. every input.
 */

let seed = 11;
const rand = (n: number, lo = -1, hi = 1) =>
  Float32Array.from({ length: n }, () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return lo + ((hi - lo) * seed) / 2147483648;
  });
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

interface Case {
  name: string;
  shapes: number[][];
  f: <T>(o: Ops<T>, xs: T[]) => T;
  /** Input values in [lo, hi] (default [-1, 1]), or fixed data per input. */
  range?: [number, number];
  data?: number[][];
  tol?: number;
}

/** Ints for `gather` / `take` live in the function (`intConstant`), so every input here is a float with a gradient. */
const CASES: Case[] = [
  { name: 'add (broadcast [3,4] + [4])', shapes: [[3, 4], [4]], f: (o, [a, b]) => o.add(a, b) },
  {
    name: 'sub (broadcast [3,1] - [1,4])',
    shapes: [
      [3, 1],
      [1, 4],
    ],
    f: (o, [a, b]) => o.sub(a, b),
  },
  {
    name: 'mul (broadcast [2,3,4] * [3,1])',
    shapes: [
      [2, 3, 4],
      [3, 1],
    ],
    f: (o, [a, b]) => o.mul(a, b),
  },
  {
    name: 'div (broadcast [3,4] / [4])',
    shapes: [[3, 4], [4]],
    f: (o, [a, b]) => o.div(a, o.add(o.mul(b, b), o.scalar(b, 0.5))),
  },
  { name: 'neg', shapes: [[3, 4]], f: (o, [a]) => o.neg(a) },
  { name: 'scale', shapes: [[3, 4]], f: (o, [a]) => o.scale(a, -2.5) },
  { name: 'exp', shapes: [[3, 4]], f: (o, [a]) => o.exp(a) },
  { name: 'log', shapes: [[3, 4]], f: (o, [a]) => o.log(a), range: [0.2, 2] },
  { name: 'log1p', shapes: [[3, 4]], f: (o, [a]) => o.log1p(a), range: [-0.5, 1] },
  {
    name: 'log1p of tiny values (accurate, not log(1 + x))',
    shapes: [[4]],
    f: (o, [a]) => o.scale(o.log1p(a), 1e8),
    data: [[1e-8, -3e-8, 2e-9, 5e-8]],
    tol: 1e-4,
  },
  { name: 'sqrt', shapes: [[3, 4]], f: (o, [a]) => o.sqrt(a), range: [0.2, 2] },
  { name: 'abs', shapes: [[3, 4]], f: (o, [a]) => o.abs(a) },
  { name: 'relu', shapes: [[3, 4]], f: (o, [a]) => o.relu(a) },
  { name: 'tanh', shapes: [[3, 4]], f: (o, [a]) => o.tanh(a), range: [-3, 3] },
  { name: 'sigmoid', shapes: [[3, 4]], f: (o, [a]) => o.sigmoid(a), range: [-4, 4] },
  { name: 'geluErf', shapes: [[4, 5]], f: (o, [a]) => o.geluErf(a), range: [-4, 4] },
  { name: 'geluTanh', shapes: [[4, 5]], f: (o, [a]) => o.geluTanh(a), range: [-4, 4] },
  { name: 'maximumConst', shapes: [[3, 4]], f: (o, [a]) => o.maximumConst(a, 0.1) },
  { name: 'minimumConst', shapes: [[3, 4]], f: (o, [a]) => o.minimumConst(a, -0.2) },
  {
    name: 'matmul 2-D',
    shapes: [
      [3, 4],
      [4, 5],
    ],
    f: (o, [a, b]) => o.matmul(a, b),
  },
  {
    name: 'matmul batched [2,3,4,5] @ [2,3,5,6]',
    shapes: [
      [2, 3, 4, 5],
      [2, 3, 5, 6],
    ],
    f: (o, [a, b]) => o.matmul(a, b),
  },
  {
    name: 'matmul with broadcast leading axes [2,4,5] @ [1,5,3]',
    shapes: [
      [2, 4, 5],
      [1, 5, 3],
    ],
    f: (o, [a, b]) => o.matmul(a, b),
  },
  {
    name: 'matmulT',
    shapes: [
      [3, 4],
      [5, 4],
    ],
    f: (o, [a, b]) => o.matmulT(a, b),
  },
  { name: 'linear 3-D with bias', shapes: [[2, 3, 4], [4, 5], [5]], f: (o, [x, w, b]) => o.linear(x, w, b) },
  {
    name: 'linear 2-D without bias',
    shapes: [
      [3, 4],
      [4, 5],
    ],
    f: (o, [x, w]) => o.linear(x, w),
  },
  { name: 'layerNorm', shapes: [[2, 3, 6], [6], [6]], f: (o, [x, g, b]) => o.layerNorm(x, g, b, 1e-5), tol: 5e-5 },
  { name: 'softmax (last axis, 4-D)', shapes: [[2, 2, 3, 5]], f: (o, [a]) => o.softmax(o.scale(a, 3)) },
  { name: 'reshape', shapes: [[2, 3, 4]], f: (o, [a]) => o.reshape(a, [6, 4]) },
  { name: 'transpose', shapes: [[2, 3, 4, 2]], f: (o, [a]) => o.transpose(a, [2, 0, 3, 1]) },
  {
    name: 'concat',
    shapes: [
      [2, 3],
      [2, 2],
      [2, 1],
    ],
    f: (o, xs) => o.concat(xs, 1),
  },
  { name: 'sliceAxis', shapes: [[4, 5, 3]], f: (o, [a]) => o.sliceAxis(a, 1, 1, 4) },
  { name: 'sliceAxis with a negative axis', shapes: [[4, 5]], f: (o, [a]) => o.sliceAxis(a, -1, 0, 2) },
  { name: 'expand [1,1,4] -> [2,3,4] (gradient sums)', shapes: [[1, 1, 4]], f: (o, [a]) => o.expand(a, [2, 3, 4]) },
  { name: 'reduceSum', shapes: [[3, 4, 5]], f: (o, [a]) => o.reduceSum(a, [1]) },
  { name: 'reduceSum keepdims, negative axis', shapes: [[3, 4, 5]], f: (o, [a]) => o.reduceSum(a, [-1], true) },
  { name: 'reduceMean over two axes', shapes: [[3, 4, 5]], f: (o, [a]) => o.reduceMean(a, [0, 2], true) },
  { name: 'reduceMean', shapes: [[3, 4, 5]], f: (o, [a]) => o.reduceMean(a, [2]) },
  { name: 'reduceMax', shapes: [[3, 4, 5]], f: (o, [a]) => o.reduceMax(a, [1]) },
  {
    name: 'reduceMax with ties (every tied position gets the gradient)',
    shapes: [[2, 4]],
    f: (o, [a]) => o.reduceMax(a, [1], true),
    data: [[1, 3, 3, 2, -1, -1, -2, -5]],
  },
  { name: 'stopGradient (d/dx x * sg(x) = x)', shapes: [[3, 4]], f: (o, [a]) => o.mul(a, o.stopGradient(a)) },
  {
    name: 'reduceMaxConst (d/dx x * maxConst(x) = maxConst(x))',
    shapes: [[3, 4, 5]],
    f: (o, [a]) => o.mul(a, o.reduceMaxConst(a, [1], true)),
  },
  {
    name: 'reduceMaxConst without keepdims, two axes',
    shapes: [[3, 4, 5]],
    f: (o, [a]) => o.add(o.reduceSum(a, [0, 2]), o.reduceMaxConst(a, [0, 2])),
  },
  {
    name: 'constant and scalar',
    shapes: [[2, 3]],
    f: (o, [a]) => o.mul(o.add(a, o.constant(a, [1, 2, 3, 4, 5, 6], [2, 3])), o.scalar(a, 3)),
  },
  {
    name: 'gather (embedding rows, repeated ids: gradients add up)',
    shapes: [[5, 4]],
    f: (o, [t]) => o.gather(t, o.intConstant(t, [1, 3, 3, 0, 1, 1], [2, 3])),
  },
  {
    name: 'take (distinct indices of a 1-D x)',
    shapes: [[7]],
    f: (o, [x]) => o.take(x, o.intConstant(x, [4, 0, 6, 2], [4])),
  },
  {
    name: 'conv2dSame 3x3 stride 1 with bias',
    shapes: [[2, 3, 6, 6], [3, 3, 3, 4], [4]],
    f: (o, [x, w, b]) => o.conv2dSame(x, w, b, 1),
    tol: 5e-5,
  },
  {
    name: 'conv2dSame 3x3 stride 2, odd size',
    shapes: [
      [2, 3, 7, 9],
      [3, 3, 3, 4],
    ],
    f: (o, [x, w]) => o.conv2dSame(x, w, undefined, 2),
    tol: 5e-5,
  },
  {
    name: 'conv2dSame 1x1 stride 2 (a shortcut)',
    shapes: [[2, 3, 8, 8], [1, 1, 3, 5], [5]],
    f: (o, [x, w, b]) => o.conv2dSame(x, w, b, 2),
  },
  {
    name: 'conv2dSame even 4x4 kernel stride 2',
    shapes: [
      [1, 2, 6, 6],
      [4, 4, 2, 3],
    ],
    f: (o, [x, w]) => o.conv2dSame(x, w, undefined, 2),
    tol: 5e-5,
  },
  {
    name: 'conv2dSame depthwise 3x3 stride 1 with bias (MobileNetV2)',
    shapes: [[2, 4, 6, 6], [3, 3, 1, 4], [4]],
    f: (o, [x, w, b]) => o.conv2dSame(x, w, b, 1, 4),
    tol: 5e-5,
  },
  {
    name: 'conv2dSame depthwise 3x3 stride 2, even size',
    shapes: [
      [2, 4, 8, 8],
      [3, 3, 1, 4],
    ],
    f: (o, [x, w]) => o.conv2dSame(x, w, undefined, 2, 4),
    tol: 5e-5,
  },
  {
    name: 'conv2dSame depthwise 3x3 stride 2, odd size, with bias',
    shapes: [[1, 3, 7, 9], [3, 3, 1, 3], [3]],
    f: (o, [x, w, b]) => o.conv2dSame(x, w, b, 2, 3),
    tol: 5e-5,
  },
  {
    name: 'conv2dSame 2 groups 3x3 (2 in, 3 out per group)',
    shapes: [[2, 4, 6, 6], [3, 3, 2, 6], [6]],
    f: (o, [x, w, b]) => o.conv2dSame(x, w, b, 1, 2),
    tol: 5e-5,
  },
  {
    name: 'conv2dSame 1 x k over a sequence (TextCNN)',
    shapes: [[2, 5, 1, 7], [1, 4, 5, 3], [3]],
    f: (o, [x, w, b]) => o.conv2dSame(x, w, b, 1),
    tol: 5e-5,
  },
  { name: 'dropout is the identity when the pass does not train', shapes: [[3, 4]], f: (o, [a]) => o.dropout(a, 0.5) },
];

interface Result {
  y: Float32Array;
  shape: number[];
  grads: Float32Array[];
}

function inputsOf(c: Case): Float32Array[] {
  return c.shapes.map((s, i) => (c.data?.[i] ? Float32Array.from(c.data[i]) : rand(size(s), ...(c.range ?? [-1, 1]))));
}

async function onGraph(c: Case, xs: Float32Array[], w: (shape: number[]) => Float32Array): Promise<Result> {
  const g = new Graph();
  const o = graphOps();
  const ins = c.shapes.map((s, i) => g.input(`x${i}`, s, { requiresGrad: true }));
  const y = c.f<Sym>(o, ins);
  const shape = [...o.shape(y)];
  const wIn = g.input('w', shape);
  const loss = o.reduceSum(
    o.mul(y, wIn),
    shape.map((_, i) => i),
  );
  const grads = g.gradients([loss], [g.scalar(1)], ins);
  const names = ins.map((_, i) => `g${i}`);
  const r = await OnnxRunner.create(g.encode([y, ...grads], ['y', ...names]), { threads: 1 });
  try {
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = { w: { data: w(shape), dims: shape } };
    c.shapes.forEach((s, i) => (feeds[`x${i}`] = { data: xs[i], dims: s }));
    const [yv, ...gv] = await r.run(feeds, ['y', ...names]);
    return { y: yv, shape, grads: gv };
  } finally {
    await r.release();
  }
}

function onTf(c: Case, xs: Float32Array[], w: (shape: number[]) => Float32Array): Result {
  return tf.tidy(() => {
    const o = tfOps();
    const ins = c.shapes.map((s, i) => tf.tensor(xs[i], s));
    const y = c.f<tf.Tensor>(o, ins);
    const shape = [...o.shape(y)];
    const wt = tf.tensor(w(shape), shape);
    const grads = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(c.f<tf.Tensor>(o, a), wt)))(ins);
    return { y: y.dataSync() as Float32Array, shape, grads: grads.map((g) => g.dataSync() as Float32Array) };
  });
}

/** max |got - want| / max(1e-3, max |want|) */
function relErr(got: Float32Array, want: Float32Array): number {
  expect(got.length).toBe(want.length);
  const scale = Math.max(1e-3, ...Array.from(want, Math.abs));
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / scale);
  return worst;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`Ops contract: tfOps (tfjs ${backend}) and graphOps (onnxruntime) give the same values and gradients`, () => {
    beforeAll(async () => {
      await initRuntime(backend, { quiet: true });
    });
    afterAll(async () => {
      await initRuntime('wasm', { quiet: true });
    });
    for (const c of CASES) {
      it(c.name, async () => {
        const xs = inputsOf(c);
        const ws = new Map<string, Float32Array>();
        const w = (shape: number[]) => {
          const k = shape.join();
          if (!ws.has(k)) ws.set(k, rand(size(shape)));
          return ws.get(k)!;
        };
        const want = await onGraph(c, xs, w);
        const got = onTf(c, xs, w);
        expect(got.shape, 'output shape').toEqual(want.shape);
        const tol = c.tol ?? 2e-5;
        expect(relErr(got.y, want.y), 'forward').toBeLessThan(tol);
        got.grads.forEach((gg, i) => expect(relErr(gg, want.grads[i]), `gradient of input ${i}`).toBeLessThan(tol));
      });
    }
  });
}

/** Grouped 'same' convolution by definition (NCHW, weight [kh, kw, C / group, O]): the reference for conv2dSame's group option. */
function naiveGroupedConv(
  x: Float32Array,
  xs: number[],
  w: Float32Array,
  ws: number[],
  b: Float32Array | undefined,
  stride: number,
  group: number,
) {
  const [N, C, H, W] = xs;
  const [kh, kw, cg, O] = ws;
  const og = O / group;
  const Ho = Math.ceil(H / stride),
    Wo = Math.ceil(W / stride);
  const padT = Math.floor(Math.max((Ho - 1) * stride + kh - H, 0) / 2),
    padL = Math.floor(Math.max((Wo - 1) * stride + kw - W, 0) / 2);
  const y = new Float32Array(N * O * Ho * Wo);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / og);
      for (let i = 0; i < Ho; i++)
        for (let j = 0; j < Wo; j++) {
          let acc = b ? b[o] : 0;
          for (let c = 0; c < cg; c++)
            for (let u = 0; u < kh; u++)
              for (let v = 0; v < kw; v++) {
                const hi = i * stride + u - padT,
                  wi = j * stride + v - padL;
                if (hi < 0 || hi >= H || wi < 0 || wi >= W) continue;
                acc += x[((n * C + g * cg + c) * H + hi) * W + wi] * w[((u * kw + v) * cg + c) * O + o];
              }
          y[((n * O + o) * Ho + i) * Wo + j] = acc;
        }
    }
  return y;
}

describe('Ops contract: grouped and depthwise conv2dSame (forward) on both engines = the definition (gradients: CASES above)', () => {
  beforeAll(async () => {
    await initRuntime('wasm', { quiet: true });
  });
  const cases: [string, number[], number[], number, number, boolean][] = [
    ['depthwise 3x3 stride 1 with bias', [2, 6, 7, 7], [3, 3, 1, 6], 1, 6, true],
    ['depthwise 3x3 stride 2, even size', [2, 4, 8, 8], [3, 3, 1, 4], 2, 4, false],
    ['depthwise 3x3 stride 2, odd size', [1, 3, 7, 9], [3, 3, 1, 3], 2, 3, true],
    ['2 groups 3x3 (2 in, 3 out per group)', [2, 4, 6, 6], [3, 3, 2, 6], 1, 2, true],
  ];
  for (const [label, xs, ws, stride, group, bias] of cases) {
    it(label, async () => {
      const x = rand(size(xs));
      const w = rand(size(ws));
      const b = bias ? rand(ws[3]) : undefined;
      const want = naiveGroupedConv(x, xs, w, ws, b, stride, group);
      const fromTf = tf.tidy(
        () =>
          tfOps()
            .conv2dSame(tf.tensor(x, xs), tf.tensor(w, ws), b && tf.tensor(b), stride, group)
            .dataSync() as Float32Array,
      );
      const g = new Graph();
      const o = graphOps();
      const y = o.conv2dSame(g.input('x', xs), g.input('w', ws), b && g.input('b', [ws[3]]), stride, group);
      const r = await OnnxRunner.create(g.encode([y], ['y']), { threads: 1 });
      const feeds: Record<string, { data: Float32Array; dims: number[] }> = {
        x: { data: x, dims: xs },
        w: { data: w, dims: ws },
      };
      if (b) feeds.b = { data: b, dims: [ws[3]] };
      const [fromGraph] = await r.run(feeds, ['y']);
      await r.release();
      expect(relErr(fromTf, want)).toBeLessThan(1e-5);
      expect(relErr(fromGraph, want)).toBeLessThan(1e-5);
    });
  }
  it('refuses a weight whose channels do not split into the groups', () => {
    const g = new Graph();
    expect(() =>
      graphOps().conv2dSame(g.input('x', [1, 4, 5, 5]), g.input('w', [3, 3, 3, 4]), undefined, 1, 2),
    ).toThrow(/2 groups/);
    expect(() =>
      tf.tidy(() => tfOps().conv2dSame(tf.zeros([1, 4, 5, 5]), tf.zeros([3, 3, 3, 4]), undefined, 1, 2)),
    ).toThrow(/2 groups/);
  });
});

describe('Ops contract: the parts that are not one value', () => {
  beforeAll(async () => {
    await initRuntime('wasm', { quiet: true });
  });

  it('engine names the implementation', () => {
    expect(tfOps().engine).toBe('tfjs');
    expect(graphOps().engine).toBe('graph');
  });

  it('dropout while training: tfjs zeroes about `rate` of the values and scales the rest by 1/(1-rate); the graph calls its drop hook once per site', () => {
    const x = tf.ones([100, 100]);
    const v = Array.from(tfOps({ training: true }).dropout(x, 0.25).dataSync());
    const zeros = v.filter((u) => u === 0).length / v.length;
    expect(zeros).toBeGreaterThan(0.2);
    expect(zeros).toBeLessThan(0.3);
    for (const u of v) if (u !== 0) expect(u).toBeCloseTo(1 / 0.75, 6);
    expect(tfOps({ training: true }).dropout(x, 0)).toBe(x);
    expect(tfOps({ training: false }).dropout(x, 0.25)).toBe(x);
    tf.dispose(x);

    const g = new Graph();
    const a = g.input('a', [2, 3]);
    const sites: number[] = [];
    const plain = graphOps();
    const o = graphOps({ drop: (s, rate) => (sites.push(rate), plain.scale(s, 2)) });
    expect(o.dropout(a, 0.1)).not.toBe(a);
    expect(o.dropout(a, 0)).toBe(a); // rate 0: no site
    expect(graphOps().dropout(a, 0.1)).toBe(a); // no hook: dropout off
    expect(sites).toEqual([0.1]);
  });

  it('take rejects repeated or out-of-range indices on tfjs', () => {
    const o = tfOps();
    const x = tf.tensor1d([1, 2, 3]);
    expect(() => o.take(x, o.intConstant(x, [0, 0], [2]))).toThrow(/given twice/);
    expect(() => o.take(x, o.intConstant(x, [3], [1]))).toThrow(/out of range/);
    tf.dispose(x);
  });
});

/**
 * The tfjs kernels behind tfOps (tf-kernels.ts: hand-written gradients for what tfjs-wasm lacks)
 * against tfjs's own ops and autograd on the cpu backend, run on cpu and wasm.
 */
describe("tf-kernels: custom gradients match tfjs's own ops", () => {
  const maxAbs = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
  async function compare(
    ours: (xs: tf.Tensor[]) => tf.Tensor,
    ref: (xs: tf.Tensor[]) => tf.Tensor,
    make: () => tf.Tensor[],
  ) {
    await initRuntime('cpu', { quiet: true });
    const xs = make();
    const loss =
      (f: typeof ours) =>
      (...a: tf.Tensor[]) => {
        const y = f(a);
        return tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size), y.shape)))) as tf.Scalar;
      };
    const refVals = [ref(xs), ...tf.grads(loss(ref))(xs)].map((t) => ({ data: t.dataSync().slice(), shape: t.shape }));
    const out: number[] = [];
    for (const backend of ['cpu', 'wasm'] as const) {
      await initRuntime(backend, { quiet: true });
      const ys = xs.map((x) => tf.tensor(x.dataSync(), x.shape, x.dtype));
      const got = [ours(ys), ...tf.grads(loss(ours))(ys)];
      got.forEach((g, i) => out.push(maxAbs(g, tf.tensor(refVals[i].data, refVals[i].shape))));
    }
    await initRuntime('wasm', { quiet: true });
    return Math.max(...out);
  }

  const cases: [string, number[], number[], 1 | 2][] = [
    ['3x3 stride 1', [2, 6, 6, 3], [3, 3, 3, 4], 1],
    ['3x3 stride 2, odd size', [2, 7, 9, 3], [3, 3, 3, 4], 2],
    ['1x1 stride 2 (shortcut)', [2, 8, 8, 3], [1, 1, 3, 5], 2],
    ['even 4x4 kernel stride 2', [1, 6, 6, 2], [4, 4, 2, 3], 2],
  ];
  for (const [label, xs, ws, stride] of cases) {
    it(`conv2dSameNhwc ${label} = tf.conv2d 'same'`, async () => {
      const d = await compare(
        ([x, w]) => conv2dSameNhwc(x as tf.Tensor4D, w, undefined, stride),
        ([x, w]) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, stride, 'same'),
        () => [tf.randomNormal(xs, 0, 1, 'float32', 1), tf.randomNormal(ws, 0, 1, 'float32', 2)],
      );
      expect(d).toBeLessThan(1e-4);
    });
  }

  it('embeddingLookup (scatter-add gradient, repeated ids) = tf.gather', async () => {
    const ids = [1, 3, 3, 0, 1, 1];
    const d = await compare(
      ([t]) => embeddingLookup(t, tf.tensor2d(ids, [2, 3], 'int32')),
      ([t]) => tf.reshape(tf.gather(t, tf.tensor1d(ids, 'int32')), [2, 3, 4]),
      () => [tf.randomNormal([5, 4], 0, 1, 'float32', 5)],
    );
    expect(d).toBeLessThan(1e-5);
  });

  it('conv2dSameNhwc refuses strides other than 1 and 2', () => {
    expect(() => conv2dSameNhwc(tf.zeros([1, 4, 4, 1]) as tf.Tensor4D, tf.zeros([3, 3, 1, 1]), undefined, 3)).toThrow(
      /stride 3/,
    );
  });
});
