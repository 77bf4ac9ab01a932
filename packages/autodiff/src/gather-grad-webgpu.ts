/**
 * The gather (embedding) gradient in a form that runs wholly on onnxruntime's WebGPU provider, and
 * the switch that selects it while a graph is built for that device.
 *
 * The CPU form (`gatherGrad` in gradients.ts) sorts the ids (TopK, Unique) and sums rows in float64
 * (CumSum): no WebGPU kernels, so on WebGPU that chain ran on the CPU provider, a host round trip of
 * the [tokens, width] gradient and the [vocab, width] table gradient per step. Here
 *   dtable = onehot(ids)^T g        (one Gemm, transA)
 * with onehot[n, v] = [ids[n] = v] built on the device: the ids become floats by gathering from the
 * constant 0..V-1 (Gather, exact below 2^24), are compared with 0..V-1 (Equal) and cast to 0/1. Each
 * table row is a float32 sum over the positions in a fixed order (no atomics): deterministic, and
 * exact for ids that occur once; repeated ids round like any float32 sum (the CPU form rounds once,
 * from float64). Cost: the one-hot matrix, tokens x vocab floats (a BERT-base vocabulary at batch 64
 * and 32 tokens: 2,048 x 30,522 = 250 MB of device memory), and 2 x tokens x vocab x width FLOP.
 */
import type { Sym } from './graph.js';

/** The device a graph is being built for ('cpu' unless inside `buildingFor`). */
export type GraphDevice = 'cpu' | 'webgpu';

let current: GraphDevice = 'cpu';

/**
 * Builds (and differentiates) graphs inside `build` for `device`: ops whose best form depends on the
 * device (the gather gradient) pick theirs. Synchronous on purpose: the choice cannot leak into
 * another graph built across an await.
 */
export function buildingFor<T>(device: GraphDevice, build: () => T): T {
  const prev = current;
  current = device;
  try {
    return build();
  } finally {
    current = prev;
  }
}

/** The device graphs are being built for now. */
export function graphDevice(): GraphDevice {
  return current;
}

/** dtable for y = table[ids] with dL/dy = g, as onehot(ids)^T g (see the file comment). */
export function gatherGradOneHot(table: Sym, ids: Sym, g: Sym): Sym {
  const gr = table.graph;
  const n = ids.size;
  const V = table.shape[0];
  const w = table.size / V;
  if (V >= 2 ** 24)
    throw new Error(`gather gradient (webgpu): a table of ${V} rows has ids beyond float32's exact integers`);
  const f32 = { dtype: 'float32' as const };
  const arange = gr.constant(
    Float32Array.from({ length: V }, (_, i) => i),
    [V],
  );
  const idsF = gr.emit('Gather', [arange, ids], [[...ids.shape]], { attrs: { axis: 0 }, ...f32 })[0]; // float(ids), on the device
  const col = gr.emit('Reshape', [idsF, gr.ints([n, 1])], [[n, 1]], f32)[0];
  const row = gr.constant(
    Float32Array.from({ length: V }, (_, i) => i),
    [1, V],
  );
  const hit = gr.emit('Equal', [col, row], [[n, V]], f32)[0]; // bool [n, V]
  const onehot = gr.emit('Cast', [hit], [[n, V]], { attrs: { to: 1 }, ...f32 })[0];
  const rows = gr.emit('Reshape', [g, gr.ints([n, w])], [[n, w]], f32)[0];
  const dtable = gr.emit('Gemm', [onehot, rows], [[V, w]], { attrs: { transA: 1 }, ...f32 })[0];
  return gr.emit('Reshape', [dtable, gr.ints([...table.shape])], [[...table.shape]], f32)[0];
}
