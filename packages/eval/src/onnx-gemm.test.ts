import { describe, expect, it } from 'vitest';
import { createOnnxGemm } from './onnx-gemm.js';

describe('createOnnxGemm', () => {
  it('computes A · Bᵀ for any n, m, d with one session (symbolic sizes)', async () => {
    const gemm = await createOnnxGemm(1);
    // onnxruntime-node is installed with the workspace (npm ci): a gemm that cannot be made is a failure, never a pass
    expect(gemm, 'onnxruntime-node cannot be imported: run npm ci (the workspace installs it)').toBeDefined();
    if (!gemm) return;
    try {
      for (const [n, m, d] of [
        [2, 3, 4],
        [5, 1, 7],
      ]) {
        const a = Float32Array.from({ length: n * d }, (_, i) => ((i * 7) % 11) - 5);
        const b = Float32Array.from({ length: m * d }, (_, i) => ((i * 5) % 13) - 6);
        const y = await gemm.run(a, n, b, m, d);
        const want: number[] = [];
        for (let i = 0; i < n; i++)
          for (let j = 0; j < m; j++) {
            let s = 0;
            for (let k = 0; k < d; k++) s += a[i * d + k] * b[j * d + k];
            want.push(s);
          }
        expect(Array.from(y)).toEqual(want);
      }
    } finally {
      await gemm.release();
    }
  });
});
