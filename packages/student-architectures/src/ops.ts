import { tf } from '@distill/core';

/** Activations named as in Hugging Face configs' `hidden_act`. */
export type HiddenAct = 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh' | 'quick_gelu' | 'relu' | 'tanh';
export const HIDDEN_ACTS: HiddenAct[] = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'quick_gelu', 'relu', 'tanh'];

const SQRT1_2 = Math.SQRT1_2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export function activation(x: tf.Tensor, act: HiddenAct): tf.Tensor {
  switch (act) {
    // gelu(x) = 0.5 x (1 + erf(x / sqrt 2))  (exact)
    case 'gelu':
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, SQRT1_2)), 1));
    // gelu_new(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), SQRT_2_OVER_PI)), 1));
    // quick_gelu(x) = x sigmoid(1.702 x)
    case 'quick_gelu':
      return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
    case 'relu':
      return tf.relu(x);
    case 'tanh':
      return tf.tanh(x);
    default:
      throw new Error(`Unknown hidden_act '${act as string}'. Supported: ${HIDDEN_ACTS.join(', ')}.`);
  }
}

/** LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * gamma + beta. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const axis = x.rank - 1;
  const { mean, variance } = tf.moments(x, axis, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta);
}

/** y = x W + b for x [..., in], W [in, out] (no transpose flags: they are slow on tfjs-wasm). */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor, act?: 'relu'): tf.Tensor {
  const inDim = x.shape[x.rank - 1];
  const outDim = w.shape[1] as number;
  const x2 = x.rank === 2 ? (x as tf.Tensor2D) : tf.reshape(x, [-1, inDim]) as tf.Tensor2D;
  const y = tf.fused.matMul({ a: x2, b: w as tf.Tensor2D, bias: b, activation: act ?? 'linear' });
  return x.rank === 2 ? y : tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
}

export function dropout(x: tf.Tensor, rate: number, training: boolean): tf.Tensor {
  return training && rate > 0 ? tf.dropout(x, rate) : x;
}

/**
 * Multi-head self-attention core. q, k, v: [B, L, D]; maskAdd: [B, 1, 1, L] additive (0 or a large
 * negative on padded keys) or undefined. Returns the context [B, L, D] before the output dense.
 */
export function attention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number, maskAdd: tf.Tensor | undefined, probDropout: number, training: boolean): tf.Tensor {
  const [B, L, D] = q.shape;
  const dh = D / heads;
  const qh = tf.transpose(tf.reshape(q, [B, L, heads, dh]), [0, 2, 1, 3]); // [B,H,L,dh]
  const kt = tf.transpose(tf.reshape(k, [B, L, heads, dh]), [0, 2, 3, 1]); // [B,H,dh,L]
  const vh = tf.transpose(tf.reshape(v, [B, L, heads, dh]), [0, 2, 1, 3]); // [B,H,L,dh]
  let scores = tf.matMul(tf.mul(qh, 1 / Math.sqrt(dh)), kt); // softmax(q k^T / sqrt(dh) + mask)
  if (maskAdd) scores = tf.add(scores, maskAdd);
  const probs = dropout(tf.softmax(scores), probDropout, training);
  const ctx = tf.matMul(probs, vh); // [B,H,L,dh]
  return tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [B, L, D]);
}

/** [B, L] 1/0 mask -> [B, 1, 1, L] additive mask (0 for real tokens, -1e9 for padding). */
export function additiveMask(mask: tf.Tensor2D): tf.Tensor4D {
  const [B, L] = mask.shape;
  return tf.reshape(tf.mul(tf.sub(1, tf.cast(mask, 'float32')), -1e9), [B, 1, 1, L]);
}

/** L2-normalise rows: x / max(||x||, 1e-12). */
export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12));
}

/**
 * Embedding lookup rows = table[ids] with a ScatterNd gradient (dTable = scatter-add of dy at ids):
 * tfjs-wasm has no UnsortedSegmentSum kernel, which Gather's built-in gradient needs.
 */
export function embeddingLookup(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  const flatIds = tf.cast(tf.reshape(ids, [-1]), 'int32');
  const f = tf.customGrad(((t: tf.Tensor, save: tf.GradSaveFunc) => {
    save([flatIds]);
    return {
      value: tf.gather(t, flatIds),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.scatterND(tf.reshape(saved[0], [-1, 1]), dy, t.shape),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const rows = f(table) as tf.Tensor;
  return tf.reshape(rows, [...ids.shape, table.shape[1] as number]);
}

/** Keep every other row and column of NHWC x (H, W even): the sampling of a stride-2 conv. */
function subsample2(x: tf.Tensor4D): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  if (H % 2 || W % 2) throw new Error(`stride-2 conv needs even height and width, got ${H}x${W}`);
  const r = tf.reshape(x, [B, H / 2, 2, W / 2, 2, C]);
  return tf.reshape(tf.slice(r, [0, 0, 0, 0, 0, 0], [B, H / 2, 1, W / 2, 1, C]), [B, H / 2, W / 2, C]);
}

/**
 * 2-D convolution as im2col + one matMul (tfjs-wasm has no Conv2DBackpropFilter kernel, and a
 * matMul is XNNPACK's fast path). x: NHWC; w: [k, k, Cin, Cout]; padding (k-1)/2 each side (odd k),
 * stride 1 or 2 (= PyTorch Conv2d(k, stride, padding=(k-1)/2)).
 */
export function conv2dSame(x: tf.Tensor4D, w: tf.Tensor, b: tf.Tensor | undefined, stride: 1 | 2): tf.Tensor4D {
  const [k, , cin, cout] = w.shape as number[];
  const [B, H, W] = x.shape;
  if (k === 1) {
    const xs = stride === 2 ? subsample2(x) : x;
    return linear(xs, tf.reshape(w, [cin, cout]), b) as tf.Tensor4D;
  }
  if (k % 2 === 0) throw new Error('conv2dSame needs an odd kernel size');
  const p = (k - 1) / 2;
  const xp = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]]);
  const cols: tf.Tensor4D[] = [];
  for (let dy = 0; dy < k; dy++) {
    for (let dx = 0; dx < k; dx++) {
      const s = tf.slice(xp, [0, dy, dx, 0], [B, H, W, cin]) as tf.Tensor4D;
      cols.push(stride === 2 ? subsample2(s) : s);
    }
  }
  return linear(tf.concat(cols, 3), tf.reshape(w, [k * k * cin, cout]), b) as tf.Tensor4D;
}

/** 1-D 'same' convolution over [B, L, E] as im2col + matMul; w: [k, E, F]. Left pad floor((k-1)/2). */
export function conv1dSame(x: tf.Tensor3D, w: tf.Tensor, b: tf.Tensor | undefined): tf.Tensor3D {
  const [k, e, f] = w.shape as number[];
  const [B, L] = x.shape;
  const left = Math.floor((k - 1) / 2);
  const xp = tf.pad(x, [[0, 0], [left, k - 1 - left], [0, 0]]);
  const cols: tf.Tensor[] = [];
  for (let d = 0; d < k; d++) cols.push(tf.slice(xp, [0, d, 0], [B, L, e]));
  return linear(k === 1 ? cols[0] : tf.concat(cols, 2), tf.reshape(w, [k * e, f]), b) as tf.Tensor3D;
}
