/**
 * tfjs kernels with hand-written gradients, for what tfjs-wasm lacks: an embedding lookup whose
 * gradient is a ScatterNd (no UnsortedSegmentSum on wasm), a 'same' convolution whose gradients are
 * forward kernels (no Conv2DBackpropFilter, slow Conv2DBackpropInput), and a distinct-index gather.
 */
import { tf } from '../runtime.js';

/** rows = table[ids]; dTable = scatter-add of dy at ids. */
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
  return tf.reshape(rows, [...ids.shape, ...table.shape.slice(1)]);
}

/**
 * flat[idx] for distinct indices, with a gradient built from Gather alone: d flat = [dy, 0][inverse],
 * inverse[p] = position of p in idx (or the appended zero). For distinct indices this equals tf.gather's
 * own UnsortedSegmentSum gradient, which tfjs-wasm does not have.
 */
export function takeDistinct(flat: tf.Tensor, idx: tf.Tensor): tf.Tensor {
  const n = flat.shape[0];
  const ids = Array.from(idx.dataSync());
  const inverse = new Int32Array(n).fill(ids.length);
  ids.forEach((p, k) => {
    if (!Number.isInteger(p) || p < 0 || p >= n) throw new Error(`take: index ${p} out of range [0, ${n}).`);
    if (inverse[p] !== ids.length) throw new Error(`take: index ${p} given twice (take needs distinct indices).`);
    inverse[p] = k;
  });
  const f = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
    save([]);
    return {
      value: tf.gather(x, tf.cast(idx, 'int32')),
      gradFunc: (dy: tf.Tensor) =>
        tf.gather(tf.concat([tf.reshape(dy, [-1]), tf.zeros([1])]), tf.tensor1d(inverse, 'int32')),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(flat) as tf.Tensor;
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

/** TensorFlow 'same' padding of one axis for kernel k and stride s: [before, after]. */
export function samePad(size: number, k: number, stride: number): [number, number] {
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

/** Input gradient of conv2dSameNhwc, as one forward Conv2D of (dilated) dy with the flipped, in/out-swapped filter. */
/**
 * dy of a 'same' convolution laid out for the input gradient as a stride-1 'valid' convolution with the
 * flipped filter: dilated (stride 2), cropped where it overhangs, and the explicit pads to put around it.
 */
function dyForInputGrad(
  dy: tf.Tensor4D,
  kh: number,
  kw: number,
  H: number,
  W: number,
  stride: 1 | 2,
): { dd: tf.Tensor4D; pads: [[0, 0], [number, number], [number, number], [0, 0]] } {
  const d = stride === 2 ? dilate2(dy) : dy;
  const [pt] = samePad(H, kh, stride);
  const [pl] = samePad(W, kw, stride);
  const top = kh - 1 - pt;
  const left = kw - 1 - pl;
  const bottom = H - 1 + pt - (d.shape[1] - 1);
  const right = W - 1 + pl - (d.shape[2] - 1);
  let dd = d;
  if (bottom < 0 || right < 0)
    dd = tf.slice(d, [0, 0, 0, 0], [-1, d.shape[1] + Math.min(bottom, 0), d.shape[2] + Math.min(right, 0), -1]);
  return {
    dd,
    pads: [
      [0, 0],
      [top, Math.max(bottom, 0)],
      [left, Math.max(right, 0)],
      [0, 0],
    ],
  };
}

function backpropInput(
  dy: tf.Tensor4D,
  w: tf.Tensor4D,
  xShape: [number, number, number, number],
  stride: 1 | 2,
): tf.Tensor4D {
  const [kh, kw] = w.shape;
  const [, H, W] = xShape;
  const wf = tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D; // [kh, kw, cout, cin]
  const { dd, pads } = dyForInputGrad(dy, kh, kw, H, W, stride);
  return tf.conv2d(dd, wf, 1, pads);
}

/**
 * 2-D convolution, NHWC, w [kh, kw, Cin, Cout], 'same' padding, stride 1 or 2, gradients as forward
 * kernels: dx = Conv2D of (dilated) dy with the flipped filter; dW = patches(x)^T dy, the patches
 * extracted by a one-hot depthwise conv, then one matMul.
 */
export function conv2dSameNhwc(x: tf.Tensor4D, w: tf.Tensor, b: tf.Tensor | undefined, stride: number): tf.Tensor4D {
  if (stride !== 1 && stride !== 2) throw new Error(`conv2dSame: stride ${stride} is not supported on tfjs (1 or 2).`);
  const s = stride as 1 | 2;
  const [kh, kw, cin, cout] = w.shape as number[];
  const T = kh * kw;
  const f = tf.customGrad(((xx: tf.Tensor4D, ww: tf.Tensor4D, save: tf.GradSaveFunc) => {
    save([xx, ww]);
    return {
      value: tf.conv2d(xx, ww, s, 'same'),
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as [tf.Tensor4D, tf.Tensor4D];
        const dx = backpropInput(dy, sw, sx.shape, s);
        // patches: [N, cin*T] ordered (channel, tap); dW[tap, c, o] = sum_n patches[n, c, tap] dy[n, o]
        const src = T === 1 && s === 1 ? sx : tf.depthwiseConv2d(sx, identityFilter(kh, kw, cin), s, 'same');
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

/**
 * Depthwise 2-D convolution (channel multiplier 1), NHWC, w [kh, kw, C, 1], 'same' padding, stride 1 or 2,
 * gradients as forward kernels (tfjs-wasm has no DepthwiseConv2dNativeBackprop* kernels):
 * dx = depthwiseConv2d of (dilated, padded) dy with the flipped filter;
 * dw[tap, c] = sum over batch and space of patches(x)[.., c, tap] dy[.., c], the patches extracted by a one-hot depthwise conv.
 */
export function depthwiseConv2dSameNhwc(x: tf.Tensor4D, w: tf.Tensor4D, stride: number): tf.Tensor4D {
  if (stride !== 1 && stride !== 2) throw new Error(`conv2dSame: stride ${stride} is not supported on tfjs (1 or 2).`);
  const s = stride as 1 | 2;
  const [kh, kw, C] = w.shape as number[];
  const T = kh * kw;
  const f = tf.customGrad(((xx: tf.Tensor4D, ww: tf.Tensor4D, save: tf.GradSaveFunc) => {
    save([xx, ww]);
    return {
      value: tf.depthwiseConv2d(xx, ww, s, 'same'),
      gradFunc: (dy: tf.Tensor4D, saved: tf.Tensor[]) => {
        const [sx, sw] = saved as [tf.Tensor4D, tf.Tensor4D];
        const [, H, W] = sx.shape;
        // dx: like backpropInput, one channel at a time
        const { dd, pads } = dyForInputGrad(dy, kh, kw, H, W, s);
        const dx = tf.depthwiseConv2d(tf.pad(dd, pads), tf.reverse(sw, [0, 1]) as tf.Tensor4D, 1, 'valid');
        // dw: patches [M, C, T] (channel-major, as identityFilter orders them) times dy [M, C, 1], summed over M
        const patches = tf.reshape(tf.depthwiseConv2d(sx, identityFilter(kh, kw, C), s, 'same'), [-1, C, T]);
        const g = tf.sum(tf.mul(patches, tf.reshape(dy, [-1, C, 1])), 0); // [C, T]
        return [dx, tf.reshape(tf.transpose(g, [1, 0]), [kh, kw, C, 1])];
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x, w) as tf.Tensor4D;
}

/**
 * Grouped 2-D convolution, NHWC, w [kh, kw, Cin / group, Cout], 'same' padding: depthwise (group = Cin =
 * Cout) as tfjs's depthwiseConv2d, other groups as one convolution per group, concatenated.
 */
export function groupedConv2dSameNhwc(
  x: tf.Tensor4D,
  w: tf.Tensor,
  b: tf.Tensor | undefined,
  stride: number,
  group: number,
): tf.Tensor4D {
  const [kh, kw, cg, cout] = w.shape as number[];
  const cin = x.shape[3];
  if (cin !== cg * group || cout % group !== 0)
    throw new Error(`conv2dSame: input channels ${cin} and weight [${w.shape}] do not match in ${group} groups`);
  let y: tf.Tensor4D;
  if (cg === 1 && cout === cin) {
    y = depthwiseConv2dSameNhwc(x, tf.reshape(w, [kh, kw, cin, 1]) as tf.Tensor4D, stride);
  } else {
    const og = cout / group;
    const parts: tf.Tensor4D[] = [];
    for (let g = 0; g < group; g++) {
      const xs = tf.slice(x, [0, 0, 0, g * cg], [-1, -1, -1, cg]) as tf.Tensor4D;
      parts.push(conv2dSameNhwc(xs, tf.slice(w, [0, 0, 0, g * og], [-1, -1, -1, og]), undefined, stride));
    }
    y = tf.concat(parts, 3) as tf.Tensor4D;
  }
  return b ? (tf.add(y, b) as tf.Tensor4D) : y;
}
