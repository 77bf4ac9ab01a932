/**
 * An optional fast path for the similarity products: onnxruntime-node's MLAS GEMM (multi-threaded),
 * used when the package can be imported (it is an optional, undeclared peer here: @distill/teacher-adapters
 * installs it). The one-node model `C = A · Bᵀ` (ONNX Gemm, transB = 1) is encoded by hand below.
 */

// ---- minimal protobuf encoding (varints, length-delimited fields)
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const key = (field: number, wire: number) => varint(field * 8 + wire);
const vfield = (field: number, v: number) => [...key(field, 0), ...varint(v)];
const bfield = (field: number, bytes: number[]) => [...key(field, 2), ...varint(bytes.length), ...bytes];
const sfield = (field: number, s: string) => bfield(field, [...new TextEncoder().encode(s)]);

function valueInfo(name: string, dims: string[]): number[] {
  const shape = dims.flatMap((d) => bfield(1, sfield(2, d))); // Dimension.dim_param
  const tensorType = [...vfield(1, 1 /* FLOAT */), ...bfield(2, shape)];
  return [...sfield(1, name), ...bfield(2, bfield(1, tensorType))];
}

/** ModelProto bytes for Y = A · Bᵀ with A [n, d], B [m, d] (float32). */
export function gemmTransBModel(): Uint8Array {
  const attr = [...sfield(1, 'transB'), ...vfield(3, 1), ...vfield(20, 2 /* INT */)];
  const node = [...sfield(1, 'A'), ...sfield(1, 'B'), ...sfield(2, 'Y'), ...sfield(3, 'gemm'), ...sfield(4, 'Gemm'), ...bfield(5, attr)];
  const graph = [
    ...bfield(1, node),
    ...sfield(2, 'distill_similarity'),
    ...bfield(11, valueInfo('A', ['n', 'd'])),
    ...bfield(11, valueInfo('B', ['m', 'd'])),
    ...bfield(12, valueInfo('Y', ['n', 'm'])),
  ];
  const model = [...vfield(1, 8 /* ir_version */), ...sfield(2, 'distill'), ...bfield(7, graph), ...bfield(8, [...sfield(1, ''), ...vfield(2, 13)])];
  return Uint8Array.from(model);
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
      const out = await session.run({ A: new ort.Tensor('float32', a, [n, d]), B: new ort.Tensor('float32', b, [m, d]) });
      return out.Y.data;
    },
    async release() {
      await session.release?.();
    },
  };
}
