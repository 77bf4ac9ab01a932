/**
 * Dynamic int8 quantization of an exported tower (as onnxruntime's quantize_dynamic does for MatMul/Gemm):
 * every Gemm whose weight is an initializer gets int8 weights with one scale per output column
 * (symmetric, zero point 0), and its input is quantized to uint8 at run time:
 *   y = (DynamicQuantizeLinear(x) -> MatMulInteger with W_q) * (x_scale * w_scale[col]) + bias
 * Everything else (embedding tables, attention products, norms) stays float32.
 */
import type { NodeSpec, TensorSpec } from '@distill/autodiff';

export interface QuantizeReport {
  /** Gemm nodes quantized. */
  gemms: number;
  /** Weight values now stored as int8. */
  weights: number;
}

/** Rewrites `nodes` / `initializers` (from the float export) in place of their float Gemm weights. */
export function quantizeGemmsInt8(
  nodes: NodeSpec[],
  initializers: TensorSpec[],
): { nodes: NodeSpec[]; initializers: TensorSpec[]; report: QuantizeReport } {
  const inits = new Map(initializers.map((t) => [t.name, t]));
  const out: NodeSpec[] = [];
  const extra: TensorSpec[] = [];
  const replaced = new Set<string>();
  let gemms = 0;
  let weights = 0;
  let zp: string | undefined;
  for (const node of nodes) {
    const w = node.op === 'Gemm' ? inits.get(node.inputs[1]) : undefined;
    const plain =
      !node.attrs ||
      (!node.attrs.transA && !node.attrs.transB && node.attrs.alpha === undefined && node.attrs.beta === undefined);
    if (!w || w.dtype !== 'float32' || w.dims.length !== 2 || !plain) {
      out.push(node);
      continue;
    }
    const [K, N] = w.dims;
    const data = w.data as Float32Array;
    const scale = new Float32Array(N);
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) scale[n] = Math.max(scale[n], Math.abs(data[k * N + n]));
    for (let n = 0; n < N; n++) scale[n] = scale[n] > 0 ? scale[n] / 127 : 1;
    const q = new Int8Array(K * N);
    for (let k = 0; k < K; k++)
      for (let n = 0; n < N; n++) q[k * N + n] = Math.max(-127, Math.min(127, Math.round(data[k * N + n] / scale[n])));
    const id = `q${gemms++}`;
    weights += K * N;
    if (!zp) {
      zp = 'q_w_zero_point';
      extra.push({ name: zp, dtype: 'int8', dims: [], data: new Int8Array(1) });
    }
    extra.push({ name: `${w.name}.int8`, dtype: 'int8', dims: [K, N], data: q });
    extra.push({ name: `${w.name}.scale`, dtype: 'float32', dims: [N], data: scale });
    replaced.add(w.name);
    const [x, , bias] = node.inputs;
    const y = node.outputs[0];
    out.push(
      { op: 'DynamicQuantizeLinear', name: `${id}_dql`, inputs: [x], outputs: [`${id}_xq`, `${id}_xs`, `${id}_xzp`] },
      {
        op: 'MatMulInteger',
        name: `${id}_mmi`,
        inputs: [`${id}_xq`, `${w.name}.int8`, `${id}_xzp`, zp],
        outputs: [`${id}_yi`],
      },
      { op: 'Cast', name: `${id}_cast`, inputs: [`${id}_yi`], outputs: [`${id}_yf`], attrs: { to: 1 } },
      { op: 'Mul', name: `${id}_sc`, inputs: [`${id}_xs`, `${w.name}.scale`], outputs: [`${id}_s`] },
      { op: 'Mul', name: `${id}_mul`, inputs: [`${id}_yf`, `${id}_s`], outputs: bias ? [`${id}_y`] : [y] },
      ...(bias ? [{ op: 'Add', name: `${id}_bias`, inputs: [`${id}_y`, bias], outputs: [y] }] : []),
    );
  }
  const stillUsed = new Set(out.flatMap((n) => n.inputs));
  const kept = initializers.filter((t) => !replaced.has(t.name) || stillUsed.has(t.name));
  return { nodes: out, initializers: [...kept, ...extra], report: { gemms, weights } };
}
