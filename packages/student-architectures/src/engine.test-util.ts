/** What the onnx engine tests share (not part of the package: tsconfig.lib.json leaves *.test-util.ts out of dist). */

/** A batch of B = 4 texts of L = 11 tokens (not a multiple of the length bucket 8: the engine pads to 16, masked), lengths 4, 6, 8, 10. */
export const B = 4;
export const L = 11;
export const ids = Int32Array.from({ length: B * L }, (_, i) => (i * 37 + 5) % 300);
export const mask = Int32Array.from({ length: B * L }, (_, i) => (i % L < 4 + ((i / L) | 0) * 2 ? 1 : 0));

/** Largest |a - b| over the largest |b| (at least 1e-4: the key bias's gradient is zero up to rounding). */
export function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let s = 1e-4;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / s;
}
