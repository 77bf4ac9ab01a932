/**
 * The layers every student tower is built from, written once over `Ops<T>` (core's tensor-ops), so
 * one definition runs on the tfjs engine (`tfOps`) and on the onnx engine's graph builder (`graphOps`).
 * Parameters are addressed by their Hugging Face names; linear weights are [in, out].
 */
import { DistillError, l2NormalizeOps, type Ops, type TensorParams } from '@distill/core';

/** Activations named as in Hugging Face configs' `hidden_act`. */
export type HiddenAct = 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh' | 'quick_gelu' | 'relu' | 'tanh';
export const HIDDEN_ACTS: HiddenAct[] = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'quick_gelu', 'relu', 'tanh'];

export function activation<T>(o: Ops<T>, x: T, act: HiddenAct): T {
  switch (act) {
    case 'gelu':
      return o.geluErf(x); // 0.5 x (1 + erf(x / sqrt 2))  (exact)
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      return o.geluTanh(x); // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    case 'quick_gelu':
      return o.mul(x, o.sigmoid(o.scale(x, 1.702))); // x sigmoid(1.702 x)
    case 'relu':
      return o.relu(x);
    case 'tanh':
      return o.tanh(x);
    default:
      throw new DistillError(
        `Unknown hidden_act '${act as string}': use one of ${HIDDEN_ACTS.join(', ')} in the encoder's config.`,
        2,
      );
  }
}

/** x W + b with the weights `<name>.weight` [in, out] and `<name>.bias` (absent: no bias). */
export function dense<T>(o: Ops<T>, p: TensorParams<T>, name: string, x: T): T {
  return o.linear(x, p[`${name}.weight`], p[`${name}.bias`]);
}

/** LayerNorm over the last axis with `<name>.weight` and `<name>.bias`. */
export function norm<T>(o: Ops<T>, p: TensorParams<T>, name: string, x: T, eps: number): T {
  return o.layerNorm(x, p[`${name}.weight`], p[`${name}.bias`], eps);
}

/**
 * Multi-head self-attention core. q, k, v: [B, L, D]; maskAdd: [B, 1, 1, L] additive (0 or a large
 * negative on padded keys) or undefined. Returns the context [B, L, D] before the output dense.
 */
export function attention<T>(
  o: Ops<T>,
  q: T,
  k: T,
  v: T,
  heads: number,
  maskAdd: T | undefined,
  probDropout: number,
): T {
  const [B, L, D] = o.shape(q);
  const dh = D / heads;
  const qh = o.transpose(o.reshape(q, [B, L, heads, dh]), [0, 2, 1, 3]); // [B,H,L,dh]
  const kt = o.transpose(o.reshape(k, [B, L, heads, dh]), [0, 2, 3, 1]); // [B,H,dh,L]
  const vh = o.transpose(o.reshape(v, [B, L, heads, dh]), [0, 2, 1, 3]); // [B,H,L,dh]
  let scores = o.matmul(o.scale(qh, 1 / Math.sqrt(dh)), kt); // softmax(q k^T / sqrt(dh) + mask)
  if (maskAdd) scores = o.add(scores, maskAdd);
  const ctx = o.matmul(o.dropout(o.softmax(scores), probDropout), vh); // [B,H,L,dh]
  return o.reshape(o.transpose(ctx, [0, 2, 1, 3]), [B, L, D]);
}

/** [B, L] float 1/0 mask -> [B, 1, 1, L] additive mask: (mask - 1) * 1e9 (0 on tokens, -1e9 on padding). */
export function additiveMask<T>(o: Ops<T>, mask: T): T {
  const [B, L] = o.shape(mask);
  return o.reshape(o.scale(o.sub(mask, o.scalar(mask, 1)), 1e9), [B, 1, 1, L]);
}

/** Non-overlapping P x P patches of NCHW pixels -> [B * gh * gw, C * P * P], row-major patch order, (c, y, x) inside. */
export function patchify<T>(o: Ops<T>, pixels: T, P: number): { patches: T; gh: number; gw: number } {
  const [B, C, H, W] = o.shape(pixels);
  const gh = H / P;
  const gw = W / P;
  const t = o.transpose(o.reshape(pixels, [B * C, gh, P, gw, P]), [0, 1, 3, 2, 4]); // [B*C, gh, gw, P, P]
  const patches = o.reshape(o.transpose(o.reshape(t, [B, C, gh * gw, P * P]), [0, 2, 1, 3]), [B * gh * gw, C * P * P]);
  return { patches, gh, gw };
}

/** 'same' 1-D convolution (TensorFlow padding) of [B, L, E] with w [k, E, F] -> [B, F, L] (a 1 x k NCHW conv). */
export function conv1dSame<T>(o: Ops<T>, x: T, w: T, b: T | undefined): T {
  const [B, L, E] = o.shape(x);
  const [k, , F] = o.shape(w);
  const y = o.conv2dSame(o.reshape(o.transpose(x, [0, 2, 1]), [B, E, 1, L]), o.reshape(w, [1, k, E, F]), b, 1);
  return o.reshape(y, [B, F, L]);
}

/** L2-normalise the last axis: x / max(||x||, 1e-12) (both engines: the same floor; core's l2NormalizeOps). */
export function l2Normalize<T>(o: Ops<T>, x: T): T {
  return l2NormalizeOps(o, x);
}

/**
 * A student's embedding: s = fc(f) / max(||fc(f)||, 1e-12) with the projection `<name>` ('image_proj',
 * 'text_proj'); with `normalize` false, fc(f) itself (the unnormalised features of Table 6's ablation).
 */
export function projectEmbedding<T>(o: Ops<T>, p: TensorParams<T>, name: string, f: T, normalize = true): T {
  const s = dense(o, p, name, f);
  return normalize ? l2Normalize(o, s) : s;
}

/** A transformer's heads must split its hidden size evenly. */
export function checkHeads(c: { hiddenSize: number; numAttentionHeads: number }): void {
  if (c.hiddenSize % c.numAttentionHeads)
    throw new DistillError(
      `hiddenSize ${c.hiddenSize} is not a multiple of numAttentionHeads ${c.numAttentionHeads}: change one of them in the encoder's config.`,
      2,
    );
}
