import * as tf from '@tensorflow/tfjs';
import { type DenseArray, collapseTranspose, transposeInto } from './js-transpose.js';

/**
 * Opt-in faster kernels for tfjs-backend-wasm (install after initRuntime('wasm')):
 * - Transpose of rank >= 5 (after dropping size-1 dims and merging adjacent dims), e.g. the
 *   attention head split [B, L, 3, H, dh] -> [3, B, H, L, dh]: wasm's generic path takes ~330 ms
 *   for 1.6M floats, a plain JS loop ~10 ms. Lower ranks stay on wasm (XNNPACK is faster there).
 * Results are bit-identical (a transpose only moves values). Returns an uninstall function.
 */
type KernelArgs = { inputs: { x: tf.TensorInfo }; backend: unknown; attrs?: Record<string, unknown> };
interface WasmBackendInternals {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): DenseArray;
}

const INSTALLED = Symbol.for('distill.wasmFastKernels');

export interface FastKernelStats {
  jsTransposes: number;
}

export function installWasmFastKernels(backendName = 'wasm', opts: { minRank?: number } = {}): { uninstall(): void; stats: FastKernelStats } {
  const g = globalThis as Record<symbol, { uninstall(): void; stats: FastKernelStats } | undefined>;
  const existing = g[INSTALLED];
  if (existing) return existing;
  const minRank = opts.minRank ?? 5;
  const orig = tf.getKernel('Transpose', backendName);
  if (!orig) throw new Error(`Backend '${backendName}' has no Transpose kernel; call initRuntime('wasm') first.`);
  const origFunc = orig.kernelFunc as unknown as (a: KernelArgs) => tf.TensorInfo;
  const stats: FastKernelStats = { jsTransposes: 0 };
  tf.unregisterKernel('Transpose', backendName);
  tf.registerKernel({
    ...orig,
    kernelFunc: ((args: KernelArgs) => {
      const { x } = args.inputs;
      const perm = (args.attrs as { perm: number[] }).perm;
      if (x.dtype === 'complex64' || x.dtype === 'string' || collapseTranspose(x.shape, perm).shape.length < minRank) return origFunc(args);
      const backend = args.backend as WasmBackendInternals;
      const out = backend.makeOutput(
        perm.map((d) => x.shape[d]),
        x.dtype,
      );
      // Views after makeOutput: allocating may grow (and move) the wasm heap.
      transposeInto(backend.typedArrayFromHeap(x), x.shape, perm, backend.typedArrayFromHeap(out));
      stats.jsTransposes++;
      return out;
    }) as unknown as tf.KernelFunc,
  });
  const handle = {
    stats,
    uninstall() {
      tf.unregisterKernel('Transpose', backendName);
      tf.registerKernel(orig);
      g[INSTALLED] = undefined;
    },
  };
  g[INSTALLED] = handle;
  return handle;
}
