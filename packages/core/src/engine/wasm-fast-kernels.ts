import * as tf from '@tensorflow/tfjs';
import { type DenseArray, collapseTranspose, transposeInto } from './js-transpose.js';

/**
 * Opt-in faster kernels for tfjs-backend-wasm (install after initRuntime('wasm')):
 * - Transpose of rank >= 5 (after dropping size-1 dims and merging adjacent dims), e.g. the
 *   attention head split [B, L, 3, H, dh] -> [3, B, H, L, dh]: wasm's generic path takes ~330 ms
 *   for 1.6M floats, a plain JS loop ~10 ms. Lower ranks stay on wasm (XNNPACK is faster there).
 * - BatchMatMul with a batch dimension > 1 (attention): wasm's batched path never reaches XNNPACK
 *   (~1 GFLOP/s). Here every batch item is a zero-copy view of the input/output buffers and goes
 *   through the wasm BatchMatMul with batch 1, which uses XNNPACK: 4-14x faster on the
 *   reference attention shapes. Sums run in another order: results differ by float rounding
 *   (~1e-6 relative). Transpose flags are materialised first (as installWasmMatmulFix does).
 * Transposes are bit-identical (they only move values). Returns an uninstall function.
 */
type KernelArgs = { inputs: { x: tf.TensorInfo }; backend: unknown; attrs?: Record<string, unknown> };
type MatMulArgs = { inputs: { a: tf.TensorInfo; b: tf.TensorInfo }; backend: unknown; attrs?: Record<string, unknown> };
interface WasmBackendInternals {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): DenseArray;
  disposeData(dataId: object): void;
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  dataIdNextNumber: number;
  wasm: {
    cwrap(name: string, ret: null, args: string[]): (...a: unknown[]) => void;
    tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
  };
}

const shapeBytes = (s: number[]) => new Uint8Array(new Int32Array(s).buffer);

/** a [..., M, K] x b [..., K, N] with equal batch dims > 1, one XNNPACK call per batch item on views. */
function perItemBatchMatMul(
  backend: WasmBackendInternals,
  raw: (...a: unknown[]) => void,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
): tf.TensorInfo {
  const r = a.shape.length;
  const [M, K] = [a.shape[r - 2], a.shape[r - 1]];
  const N = b.shape[b.shape.length - 1];
  const batch = a.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  const out = backend.makeOutput([...a.shape.slice(0, -2), M, N], 'float32');
  const aOff = backend.dataIdMap.get(a.dataId).memoryOffset;
  const bOff = backend.dataIdMap.get(b.dataId).memoryOffset;
  const oOff = backend.dataIdMap.get(out.dataId).memoryOffset;
  const as = shapeBytes([1, M, K]);
  const bs = shapeBytes([1, K, N]);
  const { tfjs } = backend.wasm;
  for (let i = 0; i < batch; i++) {
    // Fresh ids for every view: XNNPACK operators are cached per weight tensor id (dropped on dispose).
    const ia = backend.dataIdNextNumber++;
    const ib = backend.dataIdNextNumber++;
    const io = backend.dataIdNextNumber++;
    tfjs.registerTensor(ia, M * K, aOff + 4 * i * M * K);
    tfjs.registerTensor(ib, K * N, bOff + 4 * i * K * N);
    tfjs.registerTensor(io, M * N, oOff + 4 * i * M * N);
    try {
      raw(ia, as, 3, ib, bs, 3, false, false, io);
    } finally {
      // Unregister the views only: their memory belongs to a, b and out.
      tfjs.disposeData(ia);
      tfjs.disposeData(ib);
      tfjs.disposeData(io);
    }
  }
  return out;
}

const INSTALLED = Symbol.for('distill.wasmFastKernels');

export interface FastKernelStats {
  jsTransposes: number;
  perItemBatchMatMuls: number;
}

export function installWasmFastKernels(
  backendName = 'wasm',
  opts: { minRank?: number } = {},
): { uninstall(): void; stats: FastKernelStats } {
  const g = globalThis as Record<symbol, { uninstall(): void; stats: FastKernelStats } | undefined>;
  const existing = g[INSTALLED];
  if (existing) return existing;
  const minRank = opts.minRank ?? 5;
  const orig = tf.getKernel('Transpose', backendName);
  if (!orig) throw new Error(`Backend '${backendName}' has no Transpose kernel; call initRuntime('wasm') first.`);
  const origFunc = orig.kernelFunc as unknown as (a: KernelArgs) => tf.TensorInfo;
  const stats: FastKernelStats = { jsTransposes: 0, perItemBatchMatMuls: 0 };
  const origMatMul = tf.getKernel('BatchMatMul', backendName)!;
  const origMatMulFunc = origMatMul.kernelFunc as unknown as (a: MatMulArgs) => tf.TensorInfo;
  let raw: ((...a: unknown[]) => void) | undefined;
  tf.unregisterKernel('BatchMatMul', backendName);
  tf.registerKernel({
    ...origMatMul,
    kernelFunc: ((args: MatMulArgs) => {
      let { a, b } = args.inputs;
      const attrs = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
      const batchOf = (t: tf.TensorInfo) => t.shape.slice(0, -2).reduce((x, y) => x * y, 1);
      const batch = batchOf(a);
      if (
        a.dtype !== 'float32' ||
        b.dtype !== 'float32' ||
        a.shape.length < 3 ||
        batch < 2 ||
        a.shape.slice(0, -2).join() !== b.shape.slice(0, -2).join()
      ) {
        return origMatMulFunc(args);
      }
      const backend = args.backend as WasmBackendInternals;
      raw ??= backend.wasm.cwrap('BatchMatMul', null, [
        'number',
        'array',
        'number',
        'number',
        'array',
        'number',
        'number',
        'number',
        'number',
      ]);
      const transpose = tf.getKernel('Transpose', backendName)!.kernelFunc as unknown as (
        a: KernelArgs,
      ) => tf.TensorInfo;
      const temps: tf.TensorInfo[] = [];
      const flip = (x: tf.TensorInfo) => {
        const r = x.shape.length;
        const perm = [...Array(r).keys()];
        [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
        const t = transpose({ inputs: { x }, backend, attrs: { perm } });
        temps.push(t);
        return t;
      };
      if (attrs.transposeA) a = flip(a);
      if (attrs.transposeB) b = flip(b);
      try {
        stats.perItemBatchMatMuls++;
        return perItemBatchMatMul(backend, raw, a, b);
      } finally {
        for (const t of temps) backend.disposeData(t.dataId);
      }
    }) as unknown as tf.KernelFunc,
  });
  tf.unregisterKernel('Transpose', backendName);
  tf.registerKernel({
    ...orig,
    kernelFunc: ((args: KernelArgs) => {
      const { x } = args.inputs;
      const perm = (args.attrs as { perm: number[] }).perm;
      if (x.dtype === 'complex64' || x.dtype === 'string' || collapseTranspose(x.shape, perm).shape.length < minRank)
        return origFunc(args);
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
      tf.unregisterKernel('BatchMatMul', backendName);
      tf.registerKernel(origMatMul);
      g[INSTALLED] = undefined;
    },
  };
  g[INSTALLED] = handle;
  return handle;
}
