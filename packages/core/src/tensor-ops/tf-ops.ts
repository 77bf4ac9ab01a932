/** `Ops<tf.Tensor>`: the tfjs engine (tfjs autodiff; kernels tfjs-wasm lacks in tf-kernels.ts). */
import { tf } from '../runtime.js';
import type { Ops } from '@distill/base';
import { conv2dSameNhwc, embeddingLookup, groupedConv2dSameNhwc, takeDistinct } from './tf-kernels.js';

const SQRT1_2 = Math.SQRT1_2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** A stop-gradient: the value of x, zero gradient. */
const stop = tf.customGrad(((x: tf.Tensor) => ({
  value: tf.clone(x),
  gradFunc: () => tf.zerosLike(x),
})) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;

/**
 * log(1 + x) accurate for small x on every backend (tfjs-wasm's Log1p loses x below float32's
 * epsilon): log(u) x / (u - 1) with u = 1 + x, and x where u rounds to 1 (Goldberg); gradient 1 / (1 + x).
 */
const log1p = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x]);
  const u = tf.add(x, 1);
  const d = tf.sub(u, 1);
  const value = tf.where(tf.equal(d, 0), x, tf.div(tf.mul(tf.log(u), x), tf.where(tf.equal(d, 0), tf.onesLike(d), d)));
  return { value, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.div(dy, tf.add(saved[0], 1)) };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;

export interface TfOpsOptions {
  /** Dropout is applied only when training. */
  training?: boolean;
}

/** tfjs ops for one pass (its dropout follows `training`). */
export function tfOps(opts: TfOpsOptions = {}): Ops<tf.Tensor> {
  const training = !!opts.training;
  return {
    engine: 'tfjs',
    shape: (x) => x.shape,
    constant: (_like, data, shape) => tf.tensor(Float32Array.from(data), shape, 'float32'),
    scalar: (_like, v) => tf.scalar(v),
    intConstant: (_like, data, shape) => tf.tensor(Int32Array.from(data), shape, 'int32'),
    add: (a, b) => tf.add(a, b),
    sub: (a, b) => tf.sub(a, b),
    mul: (a, b) => tf.mul(a, b),
    div: (a, b) => tf.div(a, b),
    neg: (x) => tf.neg(x),
    scale: (x, c) => tf.mul(x, c),
    exp: (x) => tf.exp(x),
    log: (x) => tf.log(x),
    log1p: (x) => log1p(x),
    sqrt: (x) => tf.sqrt(x),
    abs: (x) => tf.abs(x),
    relu: (x) => tf.relu(x),
    tanh: (x) => tf.tanh(x),
    sigmoid: (x) => tf.sigmoid(x),
    geluErf: (x) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, SQRT1_2)), 1)),
    geluTanh: (x) =>
      tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), SQRT_2_OVER_PI)), 1)),
    maximumConst: (x, c) => tf.maximum(x, c),
    minimumConst: (x, c) => tf.minimum(x, c),
    matmul: (a, b) => {
      if (a.rank === 2 && b.rank === 2) return tf.matMul(a, b);
      // leading axes broadcast (numpy): both broadcast to the common batch shape (tfjs's BatchMatMul gradient does not reduce them)
      const r = Math.max(a.rank, b.rank);
      const lead = (x: tf.Tensor) => [...new Array<number>(r - x.rank).fill(1), ...x.shape.slice(0, -2)];
      const lb = lead(b);
      const batch = lead(a).map((d, i) => Math.max(d, lb[i]));
      const to = (x: tf.Tensor) =>
        lead(x).every((d, i) => d === batch[i]) && x.rank === r
          ? x
          : tf.broadcastTo(x, [...batch, ...x.shape.slice(-2)]);
      return tf.matMul(to(a), to(b));
    },
    matmulT: (a, b) => tf.matMul(a, b, false, true),
    linear: (x, w, b) => {
      // no transpose flags: they are slow on tfjs-wasm
      const inDim = x.shape[x.rank - 1];
      const outDim = w.shape[1] as number;
      const x2 = (x.rank === 2 ? x : tf.reshape(x, [-1, inDim])) as tf.Tensor2D;
      const y = tf.fused.matMul({ a: x2, b: w as tf.Tensor2D, bias: b });
      return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
    },
    layerNorm: (x, gamma, beta, eps) => {
      const { mean, variance } = tf.moments(x, x.rank - 1, true);
      return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
    },
    softmax: (x) => tf.softmax(x),
    reshape: (x, shape) => tf.reshape(x, shape),
    transpose: (x, perm) => tf.transpose(x, perm),
    concat: (xs, axis) => tf.concat(xs, axis),
    sliceAxis: (x, axis, start, end) => {
      const a = axis < 0 ? axis + x.rank : axis;
      const begin = x.shape.map((_, i) => (i === a ? start : 0));
      const size = x.shape.map((d, i) => (i === a ? end - start : d));
      return tf.slice(x, begin, size);
    },
    expand: (x, shape) => tf.broadcastTo(x, shape),
    reduceSum: (x, axes, keepdims = false) => tf.sum(x, axes, keepdims),
    reduceMean: (x, axes, keepdims = false) => tf.mean(x, axes, keepdims),
    reduceMax: (x, axes, keepdims = false) => tf.max(x, axes, keepdims),
    stopGradient: (x) => stop(x),
    gather: (table, ids) => embeddingLookup(table, ids),
    take: (x, idx) => takeDistinct(x, idx),
    conv2dSame: (x, w, b, stride, group = 1) => {
      const nhwc = tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
      return tf.transpose(
        group === 1 ? conv2dSameNhwc(nhwc, w, b, stride) : groupedConv2dSameNhwc(nhwc, w, b, stride, group),
        [0, 3, 1, 2],
      );
    },
    dropout: (x, rate) => (training && rate > 0 ? tf.dropout(x, rate) : x),
    // customGrad records one tape node: the max inside is not differentiated (tfjs would otherwise build its Equal mask)
    reduceMaxConst: (x, axes, keepdims = false) =>
      tf.customGrad(((v: tf.Tensor) => ({
        value: tf.max(v, axes, keepdims),
        gradFunc: () => tf.zerosLike(v),
      })) as unknown as Parameters<typeof tf.customGrad>[0])(x) as tf.Tensor,
  };
}
