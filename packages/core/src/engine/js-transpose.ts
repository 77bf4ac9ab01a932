/**
 * Transpose of a dense row-major array, in plain JS: `out[...] = x[...]` with `out.shape = shape[perm]`.
 * Dimensions of size 1 are dropped and runs of dimensions that stay adjacent and in order are
 * merged first, so e.g. [B, L, 3, H, dh] with perm [2, 0, 3, 1, 4] becomes a rank-5 copy with a
 * contiguous inner run of dh, and a 2-D transpose is done in cache-sized blocks.
 */
export type DenseArray = Float32Array | Int32Array | Uint8Array;

/** Drops size-1 dims and merges consecutive in-order dims. Returns the reduced input shape and perm. */
export function collapseTranspose(
  shape: readonly number[],
  perm: readonly number[],
): { shape: number[]; perm: number[] } {
  const keep = shape.map((s) => s !== 1);
  // perm restricted to kept dims, renumbered
  const kept = [...shape.keys()].filter((i) => keep[i]);
  const renum = new Map(kept.map((d, i) => [d, i]));
  let s = kept.map((d) => shape[d]);
  let p = perm.filter((d) => keep[d]).map((d) => renum.get(d)!);
  // merge: output positions j, j+1 with p[j+1] === p[j] + 1 are one input dim
  for (;;) {
    const j = p.findIndex((d, i) => i + 1 < p.length && p[i + 1] === d + 1);
    if (j < 0) break;
    const a = p[j];
    s = [...s.slice(0, a), s[a] * s[a + 1], ...s.slice(a + 2)];
    p = p.filter((_, i) => i !== j + 1).map((d) => (d > a ? d - 1 : d));
  }
  if (s.length === 0) return { shape: [1], perm: [0] };
  return { shape: s, perm: p };
}

const BLOCK = 32;

export function transposeInto(x: DenseArray, shape: readonly number[], perm: readonly number[], out: DenseArray): void {
  const { shape: s, perm: p } = collapseTranspose(shape, perm);
  const r = s.length;
  if (r === 1) {
    out.set(x.subarray(0, s[0]));
    return;
  }
  if (r === 2) {
    // out[j, i] = x[i, j] with x [R, C]
    const [R, C] = s;
    for (let i0 = 0; i0 < R; i0 += BLOCK) {
      const i1 = Math.min(R, i0 + BLOCK);
      for (let j0 = 0; j0 < C; j0 += BLOCK) {
        const j1 = Math.min(C, j0 + BLOCK);
        for (let i = i0; i < i1; i++) {
          const xi = i * C;
          for (let j = j0; j < j1; j++) out[j * R + i] = x[xi + j];
        }
      }
    }
    return;
  }
  // General case: walk the output in order; the innermost output dim reads x with stride inStride[p[r-1]].
  const inStride = new Array<number>(r);
  inStride[r - 1] = 1;
  for (let d = r - 2; d >= 0; d--) inStride[d] = inStride[d + 1] * s[d + 1];
  const outShape = p.map((d) => s[d]);
  const strideOf = p.map((d) => inStride[d]); // input stride of each output dim
  const inner = outShape[r - 1];
  const innerStride = strideOf[r - 1];
  const outer = outShape.slice(0, r - 1);
  const idx = new Array<number>(r - 1).fill(0);
  let base = 0;
  let o = 0;
  const total = outer.reduce((a, b) => a * b, 1);
  for (let n = 0; n < total; n++) {
    if (innerStride === 1) {
      for (let k = 0; k < inner; k++) out[o + k] = x[base + k];
    } else {
      for (let k = 0, b = base; k < inner; k++, b += innerStride) out[o + k] = x[b];
    }
    o += inner;
    // odometer over the outer output dims
    for (let d = r - 2; d >= 0; d--) {
      idx[d]++;
      base += strideOf[d];
      if (idx[d] < outer[d]) break;
      base -= strideOf[d] * outer[d];
      idx[d] = 0;
    }
  }
}
