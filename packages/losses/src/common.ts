/**
 * Small pieces every loss is built from, written over `Ops<T>` (one definition for the tfjs engine
 * and the onnx graph engine), and the shape checks that turn a wrong input into one clear line.
 */
import { DistillError, L2_EPS, l2NormalizeOps, tf, tfOps, type Ops } from '@distill/core';

let tfo: Ops<tf.Tensor> | undefined;
/** The tfjs engine's ops (no dropout: losses have none), made once. */
export function tfLossOps(): Ops<tf.Tensor> {
  return (tfo ??= tfOps());
}

/** Anything with a static shape (a tfjs tensor, a graph symbol). */
export interface Shaped {
  readonly shape: readonly number[];
}

export function checkPair(a: Shaped, b: Shaped, what: string): void {
  if (a.shape.length !== 2 || b.shape.length !== 2)
    throw new DistillError(
      `${what}: expected two [B, D] matrices, got ${JSON.stringify(a.shape)} and ${JSON.stringify(b.shape)}.`,
    );
  if (a.shape[1] !== b.shape[1]) {
    throw new DistillError(
      `${what}: student dim ${a.shape[1]} != teacher dim ${b.shape[1]}. The student's projection must map to the teacher's dimension (embedDim).`,
    );
  }
  if (a.shape[0] !== b.shape[0])
    throw new DistillError(`${what}: student batch ${a.shape[0]} != teacher batch ${b.shape[0]}.`);
}

/** The shape of x on engine o, as a plain object `checkPair` reads. */
export const shaped = <T>(o: Ops<T>, x: T): Shaped => ({ shape: o.shape(x) });

// a_i . b_i per row: [B, D] x [B, D] -> [B]
export const rowDot = <T>(o: Ops<T>, a: T, b: T): T => o.reduceSum(o.mul(a, b), [1]);

// x^2
export const square = <T>(o: Ops<T>, x: T): T => o.mul(x, x);

/** x as a constant's max over `axes` (kept): the shift of a log-sum-exp, which cancels out of the gradient. */
export const maxConst = <T>(o: Ops<T>, x: T, axes: number[]): T => o.reduceMaxConst(x, axes, true);

// log softmax over the last axis of [B, C]: x - m - log sum_j exp(x_j - m), m = row max (a constant)
export function logSoftmaxRows<T>(o: Ops<T>, x: T): T {
  const shifted = o.sub(x, maxConst(o, x, [1]));
  return o.sub(shifted, o.log(o.reduceSum(o.exp(shifted), [1], true)));
}

// expm1(z) = tanh(z/2) (exp(z) + 1): exact identity, no cancellation near 0 (ONNX has no Expm1)
export const expm1 = <T>(o: Ops<T>, z: T): T => o.mul(o.tanh(o.scale(z, 0.5)), o.add(o.exp(z), o.scalar(z, 1)));

/** The [n, n] identity (diagonal 1) or its complement (off-diagonal 1), a constant of x's engine. */
export function eyeConst<T>(o: Ops<T>, like: T, n: number, offDiagonal = false): T {
  const v = new Float32Array(n * n).fill(offDiagonal ? 1 : 0);
  for (let i = 0; i < n; i++) v[i * n + i] = offDiagonal ? 0 : 1;
  return o.constant(like, v, [n, n]);
}

// l2n(x) = x / max(||x||_2, eps) per row (torch F.normalize): core's one definition
export function l2nOps<T>(o: Ops<T>, x: T, eps = L2_EPS): T {
  return l2NormalizeOps(o, x, eps);
}

/** Row-wise L2 normalisation of a tfjs matrix (l2nOps on the tfjs engine). */
export function l2n(x: tf.Tensor2D, eps = L2_EPS): tf.Tensor2D {
  return tf.tidy(() => l2nOps(tfLossOps(), x, eps) as tf.Tensor2D);
}
