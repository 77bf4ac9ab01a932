import * as tf from '@tensorflow/tfjs';

/**
 * tfjs-backend-wasm's BatchMatMul and _FusedMatMul are 10-40x slower with transposeA/transposeB,
 * and _FusedMatMul returns wrong values when a bias is combined with a transpose flag. This wraps
 * both kernels: every flagged input is transposed first (wasm Transpose kernel) and the original
 * kernel is called with both flags false. Idempotent.
 */
const PATCHED = Symbol.for('distill.wasmMatmulFix');

type KernelInfo = { inputs: Record<string, tf.TensorInfo>; backend: unknown; attrs?: Record<string, unknown> };

export function installWasmMatmulFix(backendName = 'wasm'): boolean {
  const g = globalThis as Record<symbol, Set<string> | undefined>;
  const done = (g[PATCHED] ??= new Set());
  if (done.has(backendName)) return false;
  const transpose = tf.getKernel('Transpose', backendName);
  if (!transpose) throw new Error(`Backend '${backendName}' has no Transpose kernel; is it registered?`);
  for (const kernelName of ['BatchMatMul', '_FusedMatMul']) {
    const orig = tf.getKernel(kernelName, backendName);
    if (!orig) continue;
    const origFunc = orig.kernelFunc as unknown as (args: KernelInfo) => tf.TensorInfo;
    const transposeFunc = transpose.kernelFunc as unknown as (args: KernelInfo) => tf.TensorInfo;
    tf.unregisterKernel(kernelName, backendName);
    tf.registerKernel({
      ...orig,
      kernelFunc: ((args: KernelInfo) => {
        const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
        if (!attrs.transposeA && !attrs.transposeB) return origFunc(args);
        const backend = args.backend as { disposeData(id: object): void };
        const temps: tf.TensorInfo[] = [];
        const flip = (x: tf.TensorInfo): tf.TensorInfo => {
          const r = x.shape.length;
          const perm = [...Array(r).keys()];
          [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
          const t = transposeFunc({ inputs: { x }, backend: args.backend, attrs: { perm } });
          temps.push(t);
          return t;
        };
        const inputs = { ...args.inputs };
        if (attrs.transposeA) inputs.a = flip(inputs.a);
        if (attrs.transposeB) inputs.b = flip(inputs.b);
        try {
          return origFunc({ ...args, inputs, attrs: { ...args.attrs, transposeA: false, transposeB: false } });
        } finally {
          for (const t of temps) backend.disposeData(t.dataId);
        }
      }) as unknown as tf.KernelFunc,
    });
  }
  done.add(backendName);
  return true;
}
