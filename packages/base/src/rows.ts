/**
 * L2 normalisation, defined once: `l2NormalizeRows` for host rows (a row-major Float32Array) and
 * `l2NormalizeOps` over `Ops<T>` (tfjs and the onnx graph builder). Both compute torch's
 * F.normalize: x / max(||x||_2, eps) per row (the last axis), eps 1e-12 by default.
 */
import type { Ops } from './ops.js';

/** The norm floor of every L2 normalisation in distill (torch F.normalize's default eps). */
export const L2_EPS = 1e-12;

/** Row-wise L2 normalisation of `x` ([rows, dim] row-major) into a new array. */
export function l2NormalizeRows(x: Float32Array, dim: number, eps = L2_EPS): Float32Array<ArrayBuffer> {
  if (!Number.isInteger(dim) || dim <= 0 || x.length % dim !== 0)
    throw new Error(`l2NormalizeRows: ${x.length} values are not rows of ${dim}`);
  const out = new Float32Array(x.length);
  for (let o = 0; o < x.length; o += dim) {
    let n = 0;
    for (let d = 0; d < dim; d++) n += x[o + d] * x[o + d];
    const den = Math.max(Math.sqrt(n), eps);
    for (let d = 0; d < dim; d++) out[o + d] = x[o + d] / den;
  }
  return out;
}

/** L2-normalise the last axis over Ops<T>: x / max(||x||, eps), the same floor on both engines. */
export function l2NormalizeOps<T>(o: Ops<T>, x: T, eps = L2_EPS): T {
  return o.div(x, o.maximumConst(o.sqrt(o.reduceSum(o.mul(x, x), [-1], true)), eps));
}
