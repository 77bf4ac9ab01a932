import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildingFor } from './gather-grad-webgpu.js';
import { GRADIENT_RULES } from './gradients.js';
import {
  Graph,
  type Sym,
  customGradient,
  defineGradient,
  differentiableOps,
  gradientRule,
  noGradient,
  stopGradient,
} from './graph.js';
import * as op from './ops.js';

/** A minimal onnxruntime-node runner for the tests (CPU, `threads` intra-op threads, every graph optimisation). */
const OnnxRunner = {
  async create(model: Uint8Array, opts: { threads?: number } = {}) {
    const session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'],
      intraOpNumThreads: opts.threads ?? 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
    });
    return {
      async run(
        feeds: Record<string, { data: Float32Array | BigInt64Array; dims: readonly number[] }>,
        outputs: string[],
      ): Promise<Float32Array[]> {
        const f: Record<string, ort.Tensor> = {};
        for (const [k, v] of Object.entries(feeds))
          f[k] =
            v.data instanceof Float32Array
              ? new ort.Tensor('float32', v.data, v.dims)
              : new ort.Tensor('int64', v.data, v.dims);
        const res = await session.run(f, outputs);
        return outputs.map((o) => res[o].data as Float32Array);
      },
      /** The output tensors themselves (their dims and types), by name. */
      async runTensors(
        feeds: Record<string, ort.Tensor>,
        outputs: string[],
      ): Promise<ort.InferenceSession.OnnxValueMapType> {
        return session.run(feeds, outputs);
      },
      release: () => session.release(),
    };
  },
};

/**
 * Every op's forward value and backward rule against tfjs autodiff (cpu backend) on the same
 * function: loss = sum(f(inputs) * w) for a fixed random w, gradients w.r.t. every input.
 */
let seed = 7;
const rand = (n: number) =>
  Float32Array.from({ length: n }, () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648 - 0.5;
  });
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Ops whose outputs are bool tensors (the graph declares no bool dtype: their values are checked through a Cast). */
const BOOL_OPS = new Set(['Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'Equal', 'And']);

/**
 * Every value the graph's nodes (forward and backward) produce, to be checked by `expectDeclaredShapes`; a bool
 * comparison's value as a float Cast declared with the comparison's shape (added to the graph here: call it last).
 */
function declaredValues(g: Graph): Sym[] {
  const nodes = [...g.nodes];
  const values: Sym[] = [];
  for (const n of nodes) {
    for (const name of n.outputs) {
      const s = g.values.get(name)!;
      values.push(
        BOOL_OPS.has(n.op) ? g.emit('Cast', [s], [[...s.shape]], { attrs: { to: 1 }, dtype: 'float32' })[0] : s,
      );
    }
  }
  return [...new Set(values)];
}

/**
 * Every declared value has the shape and dtype onnxruntime computes for it: later ops build on the declared
 * shapes (sumTo, reshape, the saved activations' model inputs), so a wrong one is a wrong graph even where the
 * final value happens to come out right. `res` holds the values of `declared` by name.
 */
function expectDeclaredShapes(declared: Sym[], res: ort.InferenceSession.OnnxValueMapType): void {
  for (const s of declared) {
    const t = res[s.name] as ort.Tensor;
    expect([[...t.dims], t.type], `declared shape and dtype of ${s.name}`).toEqual([[...s.shape], s.dtype]);
  }
}

async function check(
  shapes: number[][],
  onnxFn: (xs: Sym[]) => Sym,
  tfFn: (xs: tf.Tensor[]) => tf.Tensor,
  tol = 1e-5,
): Promise<void> {
  const data = shapes.map((s) => rand(size(s)));
  const g = new Graph();
  const xs = shapes.map((s, i) => g.input(`x${i}`, s, { requiresGrad: true }));
  const y = onnxFn(xs);
  const w = g.input('w', [...y.shape]);
  const loss = op.reduceSum(
    op.mul(y, w),
    y.shape.map((_, i) => i),
  );
  const grads = g.gradients([loss], [g.scalar(1)], xs);
  // every gradient has its input's shape (a [10, 5] gradient for a [4, 5] input must not pass on its first 20 values)
  grads.forEach((gr, i) => expect([...gr.shape], `shape of the gradient of input ${i}`).toEqual(shapes[i]));
  const declared = declaredValues(g);
  const runner = await OnnxRunner.create(
    g.encode([y, ...grads, ...declared], ['y', ...xs.map((_, i) => `g${i}`), ...declared.map((s) => s.name)]),
    { threads: 1 },
  );
  const wData = rand(y.size);
  const feeds: Record<string, { data: Float32Array; dims: number[] }> = { w: { data: wData, dims: [...y.shape] } };
  shapes.forEach((s, i) => (feeds[`x${i}`] = { data: data[i], dims: s }));
  const [yOut, ...gOut] = await runner.run(feeds, ['y', ...xs.map((_, i) => `g${i}`)]);
  const ortFeeds = Object.fromEntries(
    Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.dims)]),
  );
  expectDeclaredShapes(
    declared,
    await runner.runTensors(
      ortFeeds,
      declared.map((s) => s.name),
    ),
  );
  await runner.release();

  const tIn = shapes.map((s, i) => tf.tensor(data[i], s));
  const tW = tf.tensor(wData, [...y.shape]);
  const yRef = tfFn(tIn);
  expect(yRef.shape).toEqual([...y.shape]);
  const gRef = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(tfFn(a), tW)))(tIn);
  const close = (got: Float32Array, want: Float32Array, what: string) => {
    expect(got.length, `${what}: size`).toBe(want.length);
    const scale = Math.max(1e-3, ...Array.from(want, Math.abs));
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / scale);
    expect(worst, what).toBeLessThan(tol);
  };
  close(yOut, yRef.dataSync() as Float32Array, 'forward');
  gOut.forEach((gg, i) => close(gg, gRef[i].dataSync() as Float32Array, `gradient of input ${i}`));
  tf.dispose([...tIn, tW, yRef, ...gRef]);
}

describe('onnx graph ops: values and gradients equal tfjs autodiff', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('element-wise ops with broadcasting (add, sub, mul, div)', async () => {
    await check(
      [[3, 4], [4]],
      ([a, b]) => op.add(a, b),
      ([a, b]) => tf.add(a, b),
    );
    await check(
      [
        [3, 1],
        [1, 4],
      ],
      ([a, b]) => op.sub(a, b),
      ([a, b]) => tf.sub(a, b),
    );
    await check(
      [
        [2, 3, 4],
        [3, 1],
      ],
      ([a, b]) => op.mul(a, b),
      ([a, b]) => tf.mul(a, b),
    );
    await check(
      [[3, 4], [4]],
      ([a, b]) => op.div(a, op.add(op.mul(b, b), a.graph.scalar(1))),
      ([a, b]) => tf.div(a, tf.add(tf.mul(b, b), 1)),
    );
  });

  it('unary ops (tanh, exp, sqrt, relu, scale, neg)', async () => {
    await check(
      [[5, 6]],
      ([a]) => op.tanh(a),
      ([a]) => tf.tanh(a),
    );
    await check(
      [[5, 6]],
      ([a]) => op.exp(a),
      ([a]) => tf.exp(a),
    );
    await check(
      [[5, 6]],
      ([a]) => op.sqrt(op.add(op.mul(a, a), a.graph.scalar(0.5))),
      ([a]) => tf.sqrt(tf.add(tf.mul(a, a), 0.5)),
    );
    await check(
      [[5, 6]],
      ([a]) => op.relu(a),
      ([a]) => tf.relu(a),
    );
    await check(
      [[5, 6]],
      ([a]) => op.neg(op.scale(a, 3)),
      ([a]) => tf.neg(tf.mul(a, 3)),
    );
  });

  it('GELU (tanh approximation and erf)', async () => {
    const tanhGelu = (x: tf.Tensor) =>
      tf.mul(
        tf.mul(x, 0.5),
        tf.add(tf.tanh(tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI))), 1),
      );
    await check(
      [[4, 9]],
      ([a]) => op.geluTanh(op.scale(a, 6)),
      ([a]) => tanhGelu(tf.mul(a, 6)),
    );
    // tfjs has no erf gradient: compare with the tanh form's values at 1e-3 and the exact derivative below.
    const g = new Graph();
    const x = g.input('x', [7], { requiresGrad: true });
    const y = op.geluErf(x);
    const [gx] = g.gradients([op.reduceSum(y, [0])], [g.scalar(1)], [x]);
    const r = await OnnxRunner.create(g.encode([y, gx], ['y', 'g']), { threads: 1 });
    const xs = Float32Array.from([-3, -1, -0.5, 0, 0.5, 1, 3]);
    const [yv, gv] = await r.run({ x: { data: xs, dims: [7] } }, ['y', 'g']);
    await r.release();
    // Phi(x) from a 7-digit erf table: gelu(x) = x Phi(x), gelu'(x) = Phi(x) + x phi(x).
    const Phi: Record<number, number> = {
      [-3]: 0.0013499,
      [-1]: 0.1586553,
      [-0.5]: 0.3085375,
      0: 0.5,
      0.5: 0.6914625,
      1: 0.8413447,
      3: 0.9986501,
    };
    xs.forEach((v, i) => {
      const phi = Math.exp((-v * v) / 2) / Math.sqrt(2 * Math.PI);
      expect(yv[i]).toBeCloseTo(v * Phi[v], 5);
      expect(gv[i]).toBeCloseTo(Phi[v] + v * phi, 5);
    });
  });

  it('shape ops (reshape, transpose, split, concat, slice)', async () => {
    await check(
      [[2, 3, 4]],
      ([a]) => op.transpose(op.reshape(a, [6, 4]), [1, 0]),
      ([a]) => tf.transpose(tf.reshape(a, [6, 4]), [1, 0]),
    );
    await check(
      [[2, 3, 4, 2]],
      ([a]) => op.transpose(a, [2, 0, 3, 1]),
      ([a]) => tf.transpose(a, [2, 0, 3, 1]),
    );
    // Only the first and last split pieces are used: the middle one gets a zero gradient.
    await check(
      [[3, 6]],
      ([a]) => {
        const [p, , r] = op.split(a, 1, [1, 2, 3]);
        return op.concat([r, p], 1);
      },
      ([a]) => {
        const [p, , r] = tf.split(a, [1, 2, 3], 1);
        return tf.concat([r, p], 1);
      },
    );
    await check(
      [[4, 5]],
      ([a]) => op.sliceAxis(a, 0, 1, 3),
      ([a]) => tf.slice(a, [1, 0], [2, 5]),
    );
  });

  it('slice on a non-leading axis (rank 2, 3 and 4; negative axis)', async () => {
    await check(
      [[4, 5]],
      ([a]) => op.sliceAxis(a, 1, 1, 4),
      ([a]) => tf.slice(a, [0, 1], [4, 3]),
    );
    await check(
      [[2, 3, 6]],
      ([a]) => op.sliceAxis(a, 1, 0, 2),
      ([a]) => tf.slice(a, [0, 0, 0], [2, 2, 6]),
    );
    await check(
      [[2, 3, 6]],
      ([a]) => op.sliceAxis(a, -1, 2, 5),
      ([a]) => tf.slice(a, [0, 0, 2], [2, 3, 3]),
    );
    await check(
      [[2, 3, 4, 5]],
      ([a]) => op.sliceAxis(a, 2, 1, 2),
      ([a]) => tf.slice(a, [0, 0, 1, 0], [2, 3, 1, 5]),
    );
  });

  it('reductions (sum, mean over any axes, with and without keepdims)', async () => {
    await check(
      [[3, 4, 5]],
      ([a]) => op.reduceSum(a, [1]),
      ([a]) => tf.sum(a, 1),
    );
    await check(
      [[3, 4, 5]],
      ([a]) => op.reduceMean(a, [0, 2], true),
      ([a]) => tf.mean(a, [0, 2], true),
    );
    await check(
      [[3, 4, 5]],
      ([a]) => op.reduceMean(a, [-1]),
      ([a]) => tf.mean(a, -1),
    );
  });

  it('gemm with every transpose combination and a bias; linear on 3-D input', async () => {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const sa = transA ? [4, 3] : [3, 4];
        const sb = transB ? [5, 4] : [4, 5];
        await check(
          [sa, sb, [5]],
          ([a, b, c]) => op.gemm(a, b, c, { transA, transB }),
          ([a, b, c]) => tf.add(tf.matMul(a, b, transA, transB), c),
        );
      }
    }
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        const sa = transA ? [4, 3] : [3, 4];
        const sb = transB ? [5, 4] : [4, 5];
        await check(
          [sa, sb],
          ([a, b]) => op.gemm(a, b, undefined, { transA, transB }),
          ([a, b]) => tf.matMul(a, b, transA, transB),
        );
      }
    }
    await check(
      [[2, 3, 4], [4, 5], [5]],
      ([x, w, b]) => op.linear(x, w, b),
      ([x, w, b]) => tf.add(tf.matMul(tf.reshape(x, [6, 4]), w).reshape([2, 3, 5]), b),
    );
  });

  it('expand and sigmoid', async () => {
    await check(
      [[1, 3, 1]],
      ([a]) => op.expand(a, [2, 3, 4]),
      ([a]) => tf.broadcastTo(a, [2, 3, 4]),
    );
    await check(
      [[4, 5]],
      ([a]) => op.sigmoid(op.scale(a, 3)),
      ([a]) => tf.sigmoid(tf.mul(a, 3)),
    );
  });

  it('max over an axis (ties get the gradient, as tfjs)', async () => {
    await check(
      [[3, 5, 2]],
      ([a]) => op.reduceMax(a, [1]),
      ([a]) => tf.max(a, 1),
    );
    await check(
      [[4, 6]],
      ([a]) => op.reduceMax(op.relu(a), [-1], true),
      ([a]) => tf.max(tf.relu(a), -1, true),
    ); // ties at 0
  });

  it('conv2d: stride 1 and 2, kernels 1 and 3, TensorFlow same padding, with a bias', async () => {
    for (const [H, k, s] of [
      [6, 3, 1],
      [6, 3, 2],
      [7, 3, 2],
      [6, 1, 2],
      [5, 2, 1],
    ]) {
      const [pt, pb] = op.samePads(H, k, s);
      const [pl, pr] = op.samePads(H + 1, k, s);
      // tfjs reference in NHWC with weight [kh, kw, C, O]; the graph works in NCHW / OIHW
      await check(
        [[2, 3, H, H + 1], [4, 3, k, k], [4]],
        ([x, w, b]) => op.conv2d(x, w, b, s, [pt, pl, pb, pr]),
        ([x, w, b]) => {
          const y = tf.conv2d(
            tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D,
            tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D,
            s,
            'same',
          );
          return tf.transpose(tf.add(y, b), [0, 3, 1, 2]);
        },
        1e-4,
      );
    }
  });

  it('conv2d: explicit uneven pads, a width (and height) crop of the weight gradient, no bias', async () => {
    // [kh, kw, stride, H, W, pads t l b r]: stride 2 over an even width leaves a kernel-gradient wider than the kernel (the crop)
    const cases: [number, number, number, number, number, [number, number, number, number]][] = [
      [1, 1, 2, 5, 6, [0, 0, 0, 0]],
      [3, 2, 2, 7, 8, [1, 0, 2, 1]],
      [2, 3, 2, 6, 7, [0, 1, 1, 2]],
      [3, 3, 1, 5, 4, [2, 1, 0, 1]],
      [2, 3, 1, 5, 6, [1, 0, 0, 0]], // one pad only (top): the weight gradient still pads x
      [3, 2, 2, 6, 5, [0, 1, 0, 0]], // one pad only (left)
    ];
    for (const [kh, kw, s, H, W, [pt, pl, pb, pr]] of cases) {
      await check(
        [
          [2, 3, H, W],
          [4, 3, kh, kw],
        ],
        ([x, w]) => op.conv2d(x, w, undefined, s, [pt, pl, pb, pr]),
        ([x, w]) => {
          const y = tf.conv2d(
            tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D,
            tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D,
            s,
            [
              [0, 0],
              [pt, pb],
              [pl, pr],
              [0, 0],
            ],
          );
          return tf.transpose(y, [0, 3, 1, 2]);
        },
        1e-4,
      );
    }
  });

  it('grouped and depthwise conv2d (MobileNetV2: 3x3 depthwise, stride 1 and 2, pad 1): values and gradients of x, w and b', async () => {
    // tfjs reference: depthwiseConv2d (NHWC, weight [kh, kw, C, mult], output channel c * mult + m, as ONNX's
    // [C * mult, 1, kh, kw]) after an explicit tf.pad; general groups as per-group conv2d + concat.
    const nhwc = (x: tf.Tensor) => tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
    const nchw = (y: tf.Tensor) => tf.transpose(y, [0, 3, 1, 2]);
    const padded = (x: tf.Tensor, p: number[]) =>
      tf.pad(nhwc(x), [
        [0, 0],
        [p[0], p[2]],
        [p[1], p[3]],
        [0, 0],
      ]) as tf.Tensor4D;
    for (const [H, s, mult] of [
      [6, 1, 1],
      [6, 2, 1],
      [7, 2, 1],
      [5, 1, 2],
      [8, 2, 2],
    ]) {
      const C = 4;
      const [pt, pb] = op.samePads(H, 3, s); // MobileNetV2's: [1, 1] at stride 1, [0, 1] (even) or [1, 1] (odd) at stride 2
      const [pl, pr] = op.samePads(H + 1, 3, s);
      const pads: [number, number, number, number] = [pt, pl, pb, pr];
      await check(
        [[2, C, H, H + 1], [C * mult, 1, 3, 3], [C * mult]],
        ([x, w, b]) => {
          const y = op.conv2d(x, w, b, s, pads, C);
          expect(y.shape).toEqual([2, C * mult, Math.ceil(H / s), Math.ceil((H + 1) / s)]);
          return y;
        },
        ([x, w, b]) => {
          const wt = tf.transpose(tf.reshape(w, [C, mult, 3, 3]), [2, 3, 0, 1]) as tf.Tensor4D; // [kh, kw, C, mult]
          return nchw(tf.add(tf.depthwiseConv2d(padded(x, pads), wt, s, 'valid'), b));
        },
        1e-4,
      );
    }
    // 2 groups, 4 -> 6 channels, stride 2, and pad 1 on every side (not 'same')
    await check(
      [[2, 4, 7, 6], [6, 2, 3, 3], [6]],
      ([x, w, b]) => op.conv2d(x, w, b, 2, [1, 1, 1, 1], 2),
      ([x, w, b]) => {
        const xs = tf.split(padded(x, [1, 1, 1, 1]), 2, 3);
        const ws = tf.split(tf.transpose(w, [2, 3, 1, 0]), 2, 3); // [3, 3, 2, 6] -> two [3, 3, 2, 3]
        return nchw(
          tf.add(
            tf.concat(
              xs.map((xi, i) => tf.conv2d(xi as tf.Tensor4D, ws[i] as tf.Tensor4D, 2, 'valid')),
              3,
            ),
            b,
          ),
        );
      },
      1e-4,
    );
    const g = new Graph();
    expect(() =>
      op.conv2d(g.input('x', [1, 4, 5, 5]), g.input('w', [4, 2, 3, 3]), undefined, 1, [1, 1, 1, 1], 4),
    ).toThrow(/in 4 groups/);
  });

  it('grouped conv2d gradients equal central finite differences (depthwise, stride 2)', async () => {
    // loss = sum(conv(x, w) * r) is linear in x and in w, so a central difference is exact up to float32 rounding.
    const xShape = [2, 3, 5, 4];
    const wShape = [3, 1, 3, 3];
    const g = new Graph();
    const x = g.input('x', xShape, { requiresGrad: true });
    const w = g.input('w', wShape, { requiresGrad: true });
    const y = op.conv2d(x, w, undefined, 2, [1, 0, 1, 1], 3);
    const loss = op.reduceSum(op.mul(y, g.input('r', [...y.shape])), [0, 1, 2, 3]);
    const [gx, gw] = g.gradients([loss], [g.scalar(1)], [x, w]);
    const runner = await OnnxRunner.create(g.encode([loss, gx, gw], ['loss', 'gx', 'gw']));
    const xv = rand(size(xShape));
    const wv = rand(size(wShape));
    const rv = rand(y.size);
    const at = async (xd: Float32Array, wd: Float32Array) =>
      runner.run(
        { x: { data: xd, dims: xShape }, w: { data: wd, dims: wShape }, r: { data: rv, dims: [...y.shape] } },
        ['loss', 'gx', 'gw'],
      );
    const [, gxv, gwv] = await at(xv, wv);
    expect([gxv.length, gwv.length]).toEqual([xv.length, wv.length]);
    const eps = 0.25;
    const fd = async (which: 'x' | 'w', i: number) => {
      const plus = (which === 'x' ? xv : wv).slice();
      const minus = plus.slice();
      plus[i] += eps;
      minus[i] -= eps;
      const [lp] = which === 'x' ? await at(plus, wv) : await at(xv, plus);
      const [lm] = which === 'x' ? await at(minus, wv) : await at(xv, minus);
      return (lp[0] - lm[0]) / (2 * eps);
    };
    for (let i = 0; i < xv.length; i += 7) expect(gxv[i], `dx[${i}]`).toBeCloseTo(await fd('x', i), 4);
    for (let i = 0; i < wv.length; i += 2) expect(gwv[i], `dw[${i}]`).toBeCloseTo(await fd('w', i), 4);
    await runner.release();
  });

  it('clip (ReLU6): values and gradient inside [lo, hi] only, as tfjs clipByValue', async () => {
    await check(
      [[6, 7]],
      ([a]) => op.clip(op.scale(a, 16), 0, 6),
      ([a]) => tf.clipByValue(tf.mul(a, 16), 0, 6),
    );
    await check(
      [[6, 7]],
      ([a]) => op.clip(op.scale(a, 4), -1, 0.5),
      ([a]) => tf.clipByValue(tf.mul(a, 4), -1, 0.5),
    );
    expect(() => op.clip(new Graph().input('x', [2]), 1, 1)).toThrow(/lo < hi/);
  });

  it('batched matmul (attention shapes)', async () => {
    await check(
      [
        [2, 3, 5, 4],
        [2, 3, 4, 6],
      ],
      ([a, b]) => op.matmul(a, b),
      ([a, b]) => tf.matMul(a, b),
    );
  });

  it('softmax and layer norm', async () => {
    await check(
      [[3, 7]],
      ([a]) => op.softmax(op.scale(a, 4)),
      ([a]) => tf.softmax(tf.mul(a, 4)),
    );
    await check(
      [[4, 6], [6], [6]],
      ([x, g, b]) => op.layerNorm(x, g, b),
      ([x, g, b]) => {
        const { mean, variance } = tf.moments(x, -1, true);
        return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
      },
      1e-4,
    );
  });

  it('softmax and layer norm on rank-3 and rank-4 inputs, over every axis (moved last by a transpose)', async () => {
    const lnRef = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
    };
    for (const shape of [
      [2, 3, 5],
      [2, 3, 4, 5],
    ]) {
      const r = shape.length;
      for (let axis = 0; axis < r; axis++) {
        // perm moves `axis` last; the inverse brings it back
        const perm = [...Array(r).keys()].filter((i) => i !== axis).concat(axis);
        const inv = perm.map((_, i) => perm.indexOf(i));
        const n = shape[axis];
        await check(
          [shape],
          ([a]) => op.transpose(op.softmax(op.scale(op.transpose(a, perm), 3)), inv),
          ([a]) => tf.transpose(tf.softmax(tf.mul(tf.transpose(a, perm), 3)), inv),
        );
        await check(
          [shape, [n], [n]],
          ([x, g, b]) => op.transpose(op.layerNorm(op.transpose(x, perm), g, b), inv),
          ([x, g, b]) => tf.transpose(lnRef(tf.transpose(x, perm), g, b), inv),
          1e-4,
        );
      }
    }
  });

  it('gather (embedding lookup) scatters gradients back, adding repeated ids', async () => {
    const g = new Graph();
    const table = g.input('t', [5, 3], { requiresGrad: true });
    const ids = g.input('ids', [2, 3], { dtype: 'int64' });
    const y = op.gather(table, ids);
    expect(y.shape).toEqual([2, 3, 3]);
    const [gt] = g.gradients([op.reduceSum(y, [0, 1, 2])], [g.scalar(1)], [table]);
    const r = await OnnxRunner.create(g.encode([y, gt], ['y', 'g']), { threads: 1 });
    const t = Float32Array.from({ length: 15 }, (_, i) => i);
    const [yv, gv] = await r.run(
      { t: { data: t, dims: [5, 3] }, ids: { data: BigInt64Array.from([0n, 2n, 2n, 4n, 0n, 2n]), dims: [2, 3] } },
      ['y', 'g'],
    );
    await r.release();
    expect(Array.from(yv.slice(0, 6))).toEqual([0, 1, 2, 6, 7, 8]);
    // Row i's gradient counts how often id i was looked up (each of its 3 values).
    expect(Array.from(gv)).toEqual([2, 2, 2, 0, 0, 0, 3, 3, 3, 0, 0, 0, 1, 1, 1]);
  });

  it('gather feeds no table to the backward model (only ids and dL/dy)', () => {
    const g = new Graph();
    const t = g.input('t', [50, 8], { requiresGrad: true });
    const y = op.gather(t, g.input('ids', [3, 4], { dtype: 'int64' }));
    expect(g.compileTraining([y], [t]).backward.inputs.sort()).toEqual(['ids', 'seed_0']);
  });

  it('loss ops: abs, log, log1p, max with a constant', async () => {
    await check(
      [[5, 6]],
      ([a]) => op.abs(a),
      ([a]) => tf.abs(a),
    );
    await check(
      [[5, 6]],
      ([a]) => op.log(op.add(op.mul(a, a), a.graph.scalar(0.1))),
      ([a]) => tf.log(tf.add(tf.mul(a, a), 0.1)),
    );
    await check(
      [[5, 6]],
      ([a]) => op.log1p(op.mul(a, a)),
      ([a]) => tf.log1p(tf.mul(a, a)),
    );
    await check(
      [[5, 6]],
      ([a]) => op.maximumConst(a, 0.1),
      ([a]) => tf.maximum(a, 0.1),
    );
  });

  it('log1p keeps its digits where 1 + x rounds to 1', async () => {
    const g = new Graph();
    const x = g.input('x', [3], { requiresGrad: true });
    const y = op.log1p(x);
    const [gx] = g.gradients([op.reduceSum(y, [0])], [g.scalar(1)], [x]);
    const r = await OnnxRunner.create(g.encode([y, gx], ['y', 'g']), { threads: 1 });
    const [yv, gv] = await r.run({ x: { data: Float32Array.from([1e-9, 3e-8, 0.5]), dims: [3] } }, ['y', 'g']);
    await r.release();
    expect(yv[0]).toBeCloseTo(1e-9, 15); // log(1 + 1e-9) would be 0 in float32
    expect(yv[1] / 3e-8).toBeCloseTo(1, 6);
    expect(yv[2]).toBeCloseTo(Math.log1p(0.5), 6);
    expect(gv[2]).toBeCloseTo(1 / 1.5, 6);
  });

  it('reduceMaxConst is the row max with no gradient (a log-sum-exp shift)', async () => {
    // logsumexp(x) = m + log sum exp(x - m): the same value and gradient (softmax) whatever m is.
    await check(
      [[4, 7]],
      ([a]) => {
        const m = op.reduceMaxConst(op.scale(a, 5), [1]);
        return op.add(m, op.log(op.reduceSum(op.exp(op.sub(op.scale(a, 5), m)), [1], true)));
      },
      ([a]) => tf.logSumExp(tf.mul(a, 5), 1, true),
    );
  });

  it('errors name both shapes', () => {
    const g = new Graph();
    const a = g.input('a', [3, 4]);
    const b = g.input('b', [5, 6]);
    expect(() => op.gemm(a, b)).toThrow(/\[3,4\] @ \[5,6\]/);
    expect(() => op.add(a, b)).toThrow(/\[3,4\] and \[5,6\]/);
    expect(() => op.reshape(a, [5])).toThrow(/cannot become \[5\]/);
  });
});

/** Runs y and dL/dx of loss = sum(y * w) for one input x; returns [y, dx]. */
async function valueAndGrad(
  f: (x: Sym) => Sym,
  x: Float32Array,
  w: Float32Array,
): Promise<[Float32Array, Float32Array]> {
  const g = new Graph();
  const xs = g.input('x', [x.length], { requiresGrad: true });
  const y = f(xs);
  const loss = op.reduceSum(op.mul(y, g.input('w', [...y.shape])), [0]);
  const [gx] = g.gradients([loss], [g.scalar(1)], [xs]);
  const r = await OnnxRunner.create(g.encode([y, gx], ['y', 'g']));
  const [yv, gv] = await r.run({ x: { data: x, dims: [x.length] }, w: { data: w, dims: [w.length] } }, ['y', 'g']);
  await r.release();
  return [yv, gv];
}

describe('gradients: one rule per primitive, custom gradients, stop-gradient', () => {
  const x = Float32Array.from([-1.5, -0.25, 0.5, 2]);
  const w = Float32Array.from([1, -2, 0.5, 3]);

  it('the table holds one rule per differentiable primitive, and the graph uses exactly those', () => {
    expect(differentiableOps()).toEqual(Object.keys(GRADIENT_RULES).sort());
    for (const name of ['Add', 'Gemm', 'Gather', 'LayerNormalization', 'Conv', 'Max'])
      expect(gradientRule(name), name).toBe(GRADIENT_RULES[name]);
    expect(gradientRule('Where')).toBeUndefined(); // log1p's Where has a custom gradient, not a rule
    expect(() => defineGradient('Add', () => [])).toThrow('a gradient rule for Add is already defined');
    const g = new Graph();
    expect(() => g.primitive('Where', [g.input('c', [2], { requiresGrad: true })], [[2]])).toThrow(
      /no gradient rule for the ONNX op Where/,
    );
  });

  it('customGradient: forward values from forward, gradients only from backward (the forward ops record none)', async () => {
    // y = x^2 with a straight-through gradient dx = dy (a square's own rule would give 2 x dy)
    const straight = customGradient(
      (v: Sym) => op.mul(v, v),
      (dy) => [dy],
    );
    const [y, gx] = await valueAndGrad(straight, x, w);
    expect(Array.from(y)).toEqual(Array.from(x, (v) => Math.fround(v * v)));
    expect(Array.from(gx)).toEqual(Array.from(w));
    // backward sees the inputs and the output: exp with dx = dy y equals exp's own rule
    const [, ge] = await valueAndGrad(
      customGradient(
        (v: Sym) => op.exp(v),
        (dy, { output }) => [op.mul(dy, output)],
      ),
      x,
      w,
    );
    const [, want] = await valueAndGrad(op.exp, x, w);
    expect(Array.from(ge)).toEqual(Array.from(want));
  });

  it('customGradient of a value passed through unchanged gets its own node (identity with a doubled gradient)', async () => {
    const g = new Graph();
    const v = g.input('v', [3], { requiresGrad: true });
    const y = customGradient(
      (a: Sym) => a,
      (dy) => [op.scale(dy, 2)],
    )(v);
    expect(y.name).not.toBe(v.name);
    const [, gx] = await valueAndGrad(
      customGradient(
        (a: Sym) => a,
        (dy) => [op.scale(dy, 2)],
      ),
      x,
      w,
    );
    expect(Array.from(gx)).toEqual(Array.from(w, (u) => 2 * u));
  });

  it('stopGradient and noGradient: same values, no gradient through them', async () => {
    // y = x + stop(x) * x: dy/dx = 1 + stop(x) = 1 + x (the stopped factor is a constant)
    const [y, gx] = await valueAndGrad((v) => op.add(v, op.mul(stopGradient(v), v)), x, w);
    expect(Array.from(y)).toEqual(Array.from(x, (v) => Math.fround(v + Math.fround(v * v))));
    expect(Array.from(gx)).toEqual(Array.from(x, (v, i) => Math.fround(w[i] * Math.fround(1 + v))));
    const g = new Graph();
    const v = g.input('v', [2, 3], { requiresGrad: true });
    expect(stopGradient(v).requiresGrad).toBe(false);
    expect(op.reduceMaxConst(v, [1]).requiresGrad).toBe(false);
    expect(noGradient((a: Sym) => op.exp(a))(v).requiresGrad).toBe(false);
    const passed = noGradient((a: Sym) => a)(v); // an input passed through gets its own (Identity) value
    expect([passed.name === v.name, passed.requiresGrad, v.requiresGrad]).toEqual([false, false, true]);
    expect(op.reduceMax(v, [1]).requiresGrad).toBe(true);
    // a stopped value alone: every gradient is zero
    const [, gz] = await valueAndGrad((a) => op.mul(stopGradient(a), a.graph.scalar(3)), x, w);
    expect(Array.from(gz)).toEqual([0, 0, 0, 0]);
  });

  it('log1p: one Where forward, its hand-written gradient reads x (no rule for Where, no gradient of the branches)', () => {
    const g = new Graph();
    const v = g.input('v', [4], { requiresGrad: true });
    const y = op.log1p(v);
    const graphs = g.compileTraining([y], [v]);
    expect(g.nodes.filter((n) => n.op === 'Where')).toHaveLength(1);
    // backward: dx = seed / (1 + x): an Add and a Div (plus the grad's Identity), nothing from the Goldberg branches
    expect(graphs.saved).toEqual([]);
    expect(graphs.backward.inputs.sort()).toEqual(['seed_0', 'v']);
  });
});

/**
 * onnxruntime's CPU ScatterND(reduction='add') splits index rows over threads and adds without locks:
 * with it as the gradient of gather, repeated ids lost updates at 2+ threads (issue 13: 12% of the
 * entries of a [64, 768] table wrong at 2 threads). The gradient must be the exact sum at any thread
 * count: each entry within one float32 ulp of the float64 sum, and bit-identical across thread counts.
 */
describe('gather gradient: exact sums of repeated ids at 1, 2 and 4 threads, width 768', () => {
  async function backwardAt(
    rows: number,
    width: number,
    ids: BigInt64Array,
    idShape: number[],
    dy: Float32Array,
    threads: number,
    runs: number,
  ) {
    const g = new Graph();
    const t = g.input('t', [rows, width], { requiresGrad: true });
    const y = op.gather(t, g.input('ids', idShape, { dtype: 'int64' }));
    const graphs = g.compileTraining([y], [t]);
    const r = await OnnxRunner.create(graphs.backward.model, { threads });
    const outs: Float32Array[] = [];
    for (let i = 0; i < runs; i++)
      outs.push(
        (await r.run({ ids: { data: ids, dims: idShape }, seed_0: { data: dy, dims: [...y.shape] } }, ['grad_0']))[0],
      );
    await r.release();
    return outs;
  }

  /** The float64 sums of dy's rows per id. */
  function reference(rows: number, width: number, ids: BigInt64Array, dy: Float32Array): Float64Array {
    const ref = new Float64Array(rows * width);
    ids.forEach((id, n) => {
      for (let j = 0; j < width; j++) ref[Number(id) * width + j] += dy[n * width + j];
    });
    return ref;
  }
  /** Entries of `got` off the float64 sum by more than one float32 ulp (+1e-9 for float64 rounding near 0). */
  const wrong = (got: Float32Array, ref: Float64Array) => {
    let bad = 0;
    for (let i = 0; i < ref.length; i++) if (!(Math.abs(got[i] - ref[i]) <= Math.abs(ref[i]) * 2 ** -23 + 1e-9)) bad++;
    return bad;
  };
  /** Entries that are not bit-identical. */
  const differ = (a: Float32Array, b: Float32Array) => {
    let d = 0;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) d++;
    return d;
  };

  it('table [64, 768], ids [128, 30] with ids repeated up to hundreds of times', async () => {
    const [V, W, B, L] = [64, 768, 128, 30];
    const ids = BigInt64Array.from(rand(B * L), (u) => BigInt(Math.floor(V * (u + 0.5) ** 3))); // skewed: id 0 ~ 25% of rows
    const dy = rand(B * L * W);
    const ref = reference(V, W, ids, dy);
    const counts = new Map<bigint, number>();
    ids.forEach((id) => counts.set(id, (counts.get(id) ?? 0) + 1));
    expect(Math.max(...counts.values())).toBeGreaterThan(500);
    let one: Float32Array | undefined;
    for (const threads of [1, 2, 4]) {
      const outs = await backwardAt(V, W, ids, [B, L], dy, threads, 5);
      one ??= outs[0];
      outs.forEach((o, i) => {
        expect(wrong(o, ref), `entries off the exact sum, ${threads} threads, run ${i}`).toBe(0);
        expect(differ(o, one!), `entries unlike 1 thread, ${threads} threads, run ${i}`).toBe(0);
      });
    }
  });

  it('BERT-base word embeddings: vocab 30522 x 768, a batch of [64, 32] token ids', async () => {
    const [V, W, B, L] = [30522, 768, 64, 32];
    // text-like ids: [CLS] ... [SEP] then [PAD] (0), words from a skewed distribution
    const u = rand(B * L);
    const ids = BigInt64Array.from({ length: B * L }, (_, i) => {
      const pos = i % L;
      const len = 8 + (((i / L) | 0) % 20);
      if (pos === 0) return 101n;
      if (pos === len) return 102n;
      if (pos > len) return 0n;
      return BigInt(1000 + Math.floor(29000 * (u[i] + 0.5) ** 4));
    });
    const dy = rand(B * L * W);
    const ref = reference(V, W, ids, dy);
    let one: Float32Array | undefined;
    for (const threads of [1, 2, 4]) {
      const outs = await backwardAt(V, W, ids, [B, L], dy, threads, 2);
      one ??= outs[0];
      outs.forEach((o, i) => {
        expect(wrong(o, ref), `entries off the exact sum, ${threads} threads, run ${i}`).toBe(0);
        expect(differ(o, one!), `entries unlike 1 thread, ${threads} threads, run ${i}`).toBe(0);
      });
    }
  }, 120_000);
});

describe('gradient graphs: the nodes a rule emits', () => {
  /** The backward nodes' ops of loss = sum(f(inputs) * r), with `trainable[i]` saying which inputs need a gradient. */
  function backwardOps(shapes: number[][], trainable: boolean[], f: (xs: Sym[]) => Sym): string[] {
    const g = new Graph();
    const xs = shapes.map((s, i) => g.input(`x${i}`, s, { requiresGrad: trainable[i] }));
    const y = f(xs);
    const loss = op.reduceSum(
      op.mul(y, g.input('r', [...y.shape])),
      y.shape.map((_, i) => i),
    );
    const n0 = g.nodes.length;
    g.gradients(
      [loss],
      [g.scalar(1)],
      xs.filter((_, i) => trainable[i]),
    );
    return g.nodes.slice(n0).map((n) => n.op);
  }
  const count = (ops: string[], name: string) => ops.filter((o) => o === name).length;

  it('gemm: an input that needs no gradient (data, a frozen weight or bias) gets no gradient node', () => {
    for (const [transA, transB] of [
      [false, false],
      [true, true],
    ]) {
      const gemm = ([a, b, c]: Sym[]) => op.gemm(a, b, c, { transA, transB });
      const shapes = [transA ? [4, 3] : [3, 4], transB ? [5, 4] : [4, 5], [5]];
      // loss = sum(y * r): y's own backward (Mul) emits no Gemm or ReduceSum, so each one here is the Gemm rule's
      const wOnly = backwardOps(shapes, [false, true, false], gemm);
      expect([count(wOnly, 'Gemm'), count(wOnly, 'ReduceSum')], 'weight only').toEqual([1, 0]);
      const xOnly = backwardOps(shapes, [true, false, false], gemm);
      expect([count(xOnly, 'Gemm'), count(xOnly, 'ReduceSum')], 'input only').toEqual([1, 0]);
      const biasOnly = backwardOps(shapes, [false, false, true], gemm);
      expect([count(biasOnly, 'Gemm'), count(biasOnly, 'ReduceSum')], 'bias only').toEqual([0, 1]);
    }
  });

  it('add with broadcasting: a data input gets no summed-back gradient', () => {
    const ops = backwardOps([[3, 4], [4]], [true, false], ([x, b]) => op.add(x, b));
    expect(count(ops, 'ReduceSum')).toBe(0);
    const both = backwardOps([[3, 4], [4]], [true, true], ([x, b]) => op.add(x, b));
    expect(count(both, 'ReduceSum')).toBe(1);
  });

  it('conv2d: a data input gets no ConvTranspose, a frozen weight no weight-gradient Conv or Pad, a frozen bias no sum', () => {
    const conv = ([x, w, b]: Sym[]) => op.conv2d(x, w, b, 2, [1, 0, 1, 1]);
    const shapes = [[2, 3, 6, 5], [4, 3, 3, 3], [4]];
    const wOnly = backwardOps(shapes, [false, true, false], conv);
    expect(
      ['ConvTranspose', 'Conv', 'Pad', 'ReduceSum'].map((o) => count(wOnly, o)),
      'weight only',
    ).toEqual([0, 1, 1, 0]);
    const xOnly = backwardOps(shapes, [true, false, false], conv);
    expect(
      ['ConvTranspose', 'Conv', 'Pad', 'ReduceSum'].map((o) => count(xOnly, o)),
      'input only',
    ).toEqual([1, 0, 0, 0]);
    const bOnly = backwardOps(shapes, [false, false, true], conv);
    expect(
      ['ConvTranspose', 'Conv', 'Pad', 'ReduceSum'].map((o) => count(bOnly, o)),
      'bias only',
    ).toEqual([0, 0, 0, 1]);
    // no padding at all: the weight gradient reads x as it is (no Pad node)
    const unpadded = backwardOps(
      [
        [2, 3, 5, 5],
        [4, 3, 3, 3],
      ],
      [false, true],
      ([x, w]) => op.conv2d(x, w, undefined, 1, [0, 0, 0, 0]),
    );
    expect(count(unpadded, 'Pad')).toBe(0);
  });

  /** table [5, 3] (0..14), ids [2, 2]; returns the gradient of sum(gather(table, ids) * r) and (`shapes`) checks every declared shape. */
  async function gatherGradient(
    ids: bigint[],
    device: 'cpu' | 'webgpu',
    shapes = true,
  ): Promise<{ grad: Float32Array; ops: string[] }> {
    // built (and differentiated) for `device`, run on onnxruntime's CPU provider either way
    const { g, gt, ops, declared } = buildingFor(device, () => {
      const g = new Graph();
      const table = g.input('t', [5, 3], { requiresGrad: true });
      const y = op.gather(table, g.input('ids', [2, 2], { dtype: 'int64' }));
      const r = g.input('r', [...y.shape]);
      const n0 = g.nodes.length;
      const [gt] = g.gradients([op.reduceSum(op.mul(y, r), [0, 1, 2])], [g.scalar(1)], [table]);
      return { g, gt, ops: g.nodes.slice(n0).map((n) => n.op), declared: declaredValues(g) };
    });
    const runner = await OnnxRunner.create(g.encode([gt, ...declared], ['grad', ...declared.map((s) => s.name)]));
    const res = await runner.runTensors(
      {
        t: new ort.Tensor(
          'float32',
          Float32Array.from({ length: 15 }, (_, i) => i),
          [5, 3],
        ),
        ids: new ort.Tensor('int64', BigInt64Array.from(ids), [2, 2]),
        r: new ort.Tensor(
          'float32',
          Float32Array.from({ length: 12 }, (_, i) => i + 1),
          [2, 2, 3],
        ),
      },
      ['grad', ...declared.map((s) => s.name)],
    );
    await runner.release();
    if (shapes) expectDeclaredShapes(declared, res);
    return { grad: (res.grad as ort.Tensor).data as Float32Array, ops };
  }

  // r = 1..12 as [2, 2, 3]: position n's row of dL/dy is [3n + 1, 3n + 2, 3n + 3]
  it('gather gradient (CPU form): sorted ids summed in float64, every declared shape right (distinct ids: U = n)', async () => {
    const { grad, ops } = await gatherGradient([4n, 0n, 2n, 1n], 'cpu');
    expect(Array.from(grad)).toEqual([4, 5, 6, 10, 11, 12, 7, 8, 9, 0, 0, 0, 1, 2, 3]);
    expect(['TopK', 'Unique', 'CumSum', 'ScatterND'].map((o) => count(ops, o))).toEqual([1, 1, 1, 1]);
  });

  it('gather gradient built for WebGPU: one-hot Gemm, no TopK/Unique/float64 kernels, the same sums', async () => {
    const { grad, ops } = await gatherGradient([4n, 0n, 4n, 1n], 'webgpu');
    expect(Array.from(grad)).toEqual([4, 5, 6, 10, 11, 12, 0, 0, 0, 0, 0, 0, 1 + 7, 2 + 8, 3 + 9]);
    expect(['TopK', 'Unique', 'CumSum', 'ScatterND', 'Gemm'].map((o) => count(ops, o))).toEqual([0, 0, 0, 0, 1]);
    const cpu = await gatherGradient([4n, 0n, 4n, 1n], 'cpu', false); // Unique's outputs are 3 long here, declared 4
    expect(Array.from(cpu.grad)).toEqual(Array.from(grad));
  });
});

describe('ops: shape checks and their messages, no-op shortcuts, negative axes', () => {
  const g = new Graph();
  let inputs = 0;
  const x = (name: string, shape: number[]) => g.input(`${name}_${inputs++}`, shape);

  it('gemm and matmul name the shapes that do not fit', () => {
    expect(() => op.gemm(x('a3', [2, 3, 4]), x('b2', [4, 5]))).toThrow('gemm: needs 2-D inputs, got [2,3,4] and [4,5]');
    expect(() => op.gemm(x('b1', [4, 5]), x('a1', [4]))).toThrow('gemm: needs 2-D inputs, got [4,5] and [4]');
    expect(() => op.gemm(x('ta', [3, 4]), x('tb', [3, 4]), undefined, { transA: true, transB: true })).toThrow(
      'gemm: inner sizes differ: [3,4]ᵀ @ [3,4]ᵀ',
    );
    expect(() => op.gemm(x('ua', [3, 4]), x('ub', [3, 4]), undefined, { transA: true })).not.toThrow();
    expect(() => op.gemm(x('va', [3, 4]), x('vb', [3, 4]), undefined, { transB: true })).not.toThrow();
    expect(op.gemm(x('wa', [4, 3]), x('wb', [5, 4]), undefined, { transA: true, transB: true }).shape).toEqual([3, 5]);
    const msg = (a: number[], b: number[]) =>
      `matmul: shapes [${a}] and [${b}] do not match (batched, same leading dims)`;
    for (const [a, b] of [
      [
        [2, 3, 4],
        [2, 4, 5, 1],
      ],
      [
        [3, 4],
        [4, 5],
      ],
      [
        [2, 3, 4],
        [3, 4, 5],
      ],
      [
        [2, 3, 4],
        [2, 5, 6],
      ],
    ]) {
      expect(() => op.matmul(x(`m${a}`, a), x(`n${b}`, b))).toThrow(msg(a, b));
    }
    expect(op.matmul(x('ma', [2, 3, 4]), x('mb', [2, 4, 6])).shape).toEqual([2, 3, 6]);
  });

  it('split, conv2d and reshape errors; reshape and expand to the same shape emit nothing', () => {
    const s = x('s', [2, 6]);
    expect(() => op.split(s, -1, [2, 3])).toThrow('split: sizes [2,3] do not add up to 6');
    expect(op.split(s, -1, [2, 4]).map((p) => p.shape)).toEqual([
      [2, 2],
      [2, 4],
    ]);
    expect(op.concat([s, s], -1).shape).toEqual([2, 12]);
    expect(op.sliceAxis(s, -1, 1, 4).shape).toEqual([2, 3]);
    const bad =
      (xs: number[], ws: number[], group = 1) =>
      () =>
        op.conv2d(x(`cx${xs}${ws}${group}`, xs), x(`cw${xs}${ws}${group}`, ws), undefined, 1, [0, 0, 0, 0], group);
    expect(bad([1, 3, 5], [4, 3, 3, 3])).toThrow(
      'conv2d: input [1,3,5] (NCHW) and weight [4,3,3,3] (OIHW) do not match',
    );
    expect(bad([1, 3, 5, 5], [4, 3, 3])).toThrow(
      'conv2d: input [1,3,5,5] (NCHW) and weight [4,3,3] (OIHW) do not match',
    );
    expect(bad([1, 3, 5, 5], [4, 2, 3, 3])).toThrow(/do not match$/);
    expect(bad([1, 4, 5, 5], [4, 2, 3, 3], 1.5)).toThrow('in 1.5 groups');
    expect(bad([1, 4, 5, 5], [4, 4, 3, 3], 0)).toThrow(/do not match$/);
    expect(bad([1, 6, 5, 5], [4, 2, 3, 3], 3)).toThrow('in 3 groups'); // O = 4 is not a multiple of 3
    expect(bad([1, 6, 5, 5], [6, 3, 3, 3], 3)).toThrow('in 3 groups'); // C/k = 2, not 3
    expect(bad([1, 6, 5, 5], [6, 2, 3, 3], 3)).not.toThrow();
    const r = x('r', [2, 3]);
    const n0 = g.nodes.length;
    expect(op.reshape(r, [2, 3])).toBe(r);
    expect(op.expand(r, [2, 3])).toBe(r);
    expect(op.expand(r, [3])).toBe(r); // broadcasts to its own shape
    expect(g.nodes.length).toBe(n0);
    expect(op.reshape(r, [3, 2]).shape).toEqual([3, 2]);
    expect(() => op.reshape(r, [4, 2])).toThrow('reshape: [2,3] (6 values) cannot become [4,2] (8)');
    expect(() => op.expand(r, [4, 3])).toThrow('expand: shapes [2,3] and [4,3] do not broadcast');
    expect(() => op.clip(r, 2, 1)).toThrow('clip: needs lo < hi, got 2 and 1');
  });

  it('linear on a rank-2 input is one Gemm; TensorFlow same pads', () => {
    const n0 = g.nodes.length;
    expect(op.linear(x('lx', [3, 4]), x('lw', [4, 5])).shape).toEqual([3, 5]);
    expect(g.nodes.slice(n0).map((n) => n.op)).toEqual(['Gemm']);
    expect([
      op.samePads(6, 3, 1),
      op.samePads(6, 3, 2),
      op.samePads(7, 3, 2),
      op.samePads(5, 1, 2),
      op.samePads(4, 5, 1),
    ]).toEqual([
      [1, 1],
      [0, 1],
      [1, 1],
      [0, 0],
      [2, 2],
    ]);
  });
});

describe('declared shapes where check() cannot run (no tfjs gradient)', () => {
  it('GELU (erf): every value of the forward and backward graph has its declared shape', async () => {
    const g = new Graph();
    const x = g.input('x', [2, 3], { requiresGrad: true });
    const y = op.geluErf(x);
    g.gradients([op.reduceSum(y, [0, 1])], [g.scalar(1)], [x]);
    const declared = declaredValues(g);
    const runner = await OnnxRunner.create(g.encode(declared));
    const res = await runner.runTensors(
      { x: new ort.Tensor('float32', rand(6), [2, 3]) },
      declared.map((s) => s.name),
    );
    await runner.release();
    expect(g.nodes.some((n) => n.op === 'Erf')).toBe(true);
    expectDeclaredShapes(declared, res);
  });
});
