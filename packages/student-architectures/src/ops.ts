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

const identityFilters = new Map<string, tf.Tensor4D>();
/** [kh, kw, C, T] one-hot depthwise filter (T = kh*kw): output channel c*T + (dy*kw + dx) copies tap (dy, dx) of channel c. */
function identityFilter(kh: number, kw: number, c: number): tf.Tensor4D {
  const key = `${kh}x${kw}x${c}@${tf.getBackend()}`;
  let f = identityFilters.get(key);
  if (!f || f.isDisposed) {
    const T = kh * kw;
    const v = new Float32Array(T * c * T);
    for (let t = 0; t < T; t++) for (let ch = 0; ch < c; ch++) v[(t * c + ch) * T + t] = 1;
    f = tf.keep(tf.tensor4d(v, [kh, kw, c, T]));
    identityFilters.set(key, f);
  }
  return f;
}

/** TensorFlow 'same' padding of one axis: [before, after]. */
function samePad(size: number, k: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + k - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** Insert a zero after every row and column of NHWC x (the input-gradient of a stride-2 conv). */
function dilate2(x: tf.Tensor4D): tf.Tensor4D {
  const [B, H, W, C] = x.shape;
  const z = tf.zerosLike(x);
  const w2 = tf.reshape(tf.stack([x, z], 3), [B, H, 2 * W, C]);
  return tf.reshape(tf.stack([w2, tf.zerosLike(w2)], 2), [B, 2 * H, 2 * W, C]) as tf.Tensor4D;
}

/** Input gradient of conv2dSame, as one forward Conv2D of (dilated) dy with the flipped, in/out-swapped filter. */
function conv2dSameBackpropInput(dy: tf.Tensor4D, w: tf.Tensor4D, xShape: [number, number, number, number], stride: 1 | 2): tf.Tensor4D {
  const [kh, kw, cin, cout] = w.shape;
  const [, H, W] = xShape;
  const wf = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D; // [kh, kw, cout, cin]
  const d = stride === 2 ? dilate2(dy) : dy;
  const [pt] = samePad(H, kh, stride);
  const [pl] = samePad(W, kw, stride);
  const top = kh - 1 - pt;
  const left = kw - 1 - pl;
  const bottom = H - 1 + pt - (d.shape[1] - 1);
  const right = W - 1 + pl - (d.shape[2] - 1);
  let dd = d;
  if (bottom < 0 || right < 0) dd = tf.slice(d, [0, 0, 0, 0], [-1, d.shape[1] + Math.min(bottom, 0), d.shape[2] + Math.min(right, 0), -1]);
  void cin; void cout;
  return tf.conv2d(dd, wf, 1, [[0, 0], [top, Math.max(bottom, 0)], [left, Math.max(right, 0)], [0, 0]]);
}

/**
 * Trainable 2-D convolution, NHWC, w [kh, kw, Cin, Cout], 'same' padding (TensorFlow convention), stride 1 or 2.
 * tfjs-wasm has no Conv2DBackpropFilter and a slow Conv2DBackpropInput, so the gradients are
 * forward kernels too: dx = Conv2D of (dilated) dy with the flipped filter; dW = patches(x)^T dy,
 * the patches extracted by a one-hot depthwise conv, then one matMul.
 */
export function conv2dSame(x: tf.Tensor4D, w: tf.Tensor, b: tf.Tensor | undefined, stride: 1 | 2): tf.Tensor4D {
  const [kh, kw, cin, cout] = w.shape as number[];
  const T = kh * kw;
  const f = tf.customGrad(((xx: tf.Tensor4D, ww: tf.Tensor4D, save: tf.GradSaveFunc) => {
    save([xx, ww]);
    return {
      value: tf.conv2d(xx, ww, stride, 'same'),
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as [tf.Tensor4D, tf.Tensor4D];
        const dx = conv2dSameBackpropInput(dy, sw, sx.shape, stride);
        // patches: [N, cin*T] ordered (channel, tap); dW[tap, c, o] = sum_n patches[n, c, tap] dy[n, o]
        const src = T === 1 && stride === 1 ? sx : tf.depthwiseConv2d(sx, identityFilter(kh, kw, cin), stride, 'same');
        const patches = tf.reshape(src, [-1, cin * T]);
        const g = tf.matMul(patches, tf.reshape(dy, [-1, cout]), true, false); // [cin*T, cout]
        const dw = T === 1 ? g : tf.transpose(tf.reshape(g, [cin, T, cout]), [1, 0, 2]);
        return [dx, tf.reshape(dw, [kh, kw, cin, cout])];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  const y = f(x, w) as tf.Tensor4D;
  return b ? (tf.add(y, b) as tf.Tensor4D) : y;
}

/** 1-D 'same' convolution over [B, L, E] with w [k, E, F] (as a 1 x k conv2d; TensorFlow 'same' padding). */
export function conv1dSame(x: tf.Tensor3D, w: tf.Tensor, b: tf.Tensor | undefined): tf.Tensor3D {
  const [k, e, f] = w.shape as number[];
  const [B, L] = x.shape;
  if (k === 1) return linear(x, tf.reshape(w, [e, f]), b) as tf.Tensor3D;
  const y = conv2dSame(tf.reshape(x, [B, 1, L, e]) as tf.Tensor4D, tf.reshape(w, [1, k, e, f]), undefined, 1);
  return tf.reshape(b ? tf.add(y, b) : y, [B, L, f]);
}
