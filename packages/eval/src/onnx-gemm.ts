import { encodeModel, OPSET } from '@distill/autodiff';

/**
 * An optional fast path for the similarity products: onnxruntime-node's MLAS GEMM (multi-threaded),
 * used when the package can be imported (it is an optional, undeclared peer here: @distill/teacher-adapters
 * installs it). The one-node model `C = A · Bᵀ` (ONNX Gemm, transB = 1) is written by @distill/autodiff's
 * encodeModel, with symbolic sizes so that one session serves every n, m and d.
 */

/** ModelProto bytes for Y = A · Bᵀ with A [n, d], B [m, d] (float32). */
export function gemmTransBModel(): Uint8Array {
  return encodeModel({
    name: 'distill_similarity',
    nodes: [{ op: 'Gemm', name: 'gemm', inputs: ['A', 'B'], outputs: ['Y'], attrs: { transB: 1 } }],
    initializers: [],
    inputs: [
      { name: 'A', dtype: 'float32', shape: ['n', 'd'] },
      { name: 'B', dtype: 'float32', shape: ['m', 'd'] },
    ],
    outputs: [{ name: 'Y', dtype: 'float32', shape: ['n', 'm'] }],
    opset: OPSET,
  });
}

interface OrtTensor {
  data: Float32Array;
  dispose?(): void;
}
interface OrtModule {
  InferenceSession: { create(model: Uint8Array, opts?: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => OrtTensor;
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release?(): Promise<void>;
}

/** A reusable `A · Bᵀ` on onnxruntime, or undefined when onnxruntime-node cannot be imported. */
export interface SimilarityGemm {
  /** rows of a [n, d] times rows of b [m, d] -> [n, m] row-major. */
  run(a: Float32Array, n: number, b: Float32Array, m: number, d: number): Promise<Float32Array>;
  release(): Promise<void>;
}

export async function createOnnxGemm(threads = 0): Promise<SimilarityGemm | undefined> {
  let ort: OrtModule;
  try {
    const spec = 'onnxruntime-node';
    const mod = (await import(spec)) as OrtModule & { default?: OrtModule };
    ort = mod.InferenceSession ? mod : mod.default!;
  } catch {
    return undefined;
  }
  const session = await ort.InferenceSession.create(gemmTransBModel(), {
    intraOpNumThreads: threads,
    graphOptimizationLevel: 'all',
  });
  return {
    async run(a, n, b, m, d) {
      const out = await session.run({
        A: new ort.Tensor('float32', a, [n, d]),
        B: new ort.Tensor('float32', b, [m, d]),
      });
      return out.Y.data;
    },
    async release() {
      await session.release?.();
    },
  };
}
