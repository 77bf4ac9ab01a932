/**
 * Child process of device-graphs.test.ts: starts a WebGPU session (verbose log: onnxruntime prints
 * its node placements on stderr) for each graph the resident step adds around the model — the
 * feature queues' enqueue, the dropout mask generator, the AdamW update — and runs it once.
 *   node --conditions=@distill/source --import tsx packages/training/src/device-graphs-run.test-util.ts
 */
import * as ort from 'onnxruntime-node';
import { buildDropoutMaskGraph, dropoutKey } from '@distill/student-architectures';
import { buildAdamWGraph } from './adamw-graph.js';
import { buildEnqueueGraph } from './queue-graph.js';

const f32 = (n: number, dims: number[]) =>
  new ort.Tensor(
    'float32',
    Float32Array.from({ length: n }, (_, i) => Math.sin(i)),
    dims,
  );
const sites = [
  { name: 'dropout_0', shape: [4, 8, 16], rate: 0.1 },
  { name: 'dropout_1', shape: [4, 2, 8, 8], rate: 0.25 },
];
const keys: Record<string, ort.Tensor> = {};
sites.forEach((_, s) => {
  const k = dropoutKey(1, 2, s);
  keys[`key_hi_${s}`] = new ort.Tensor('float32', Float32Array.of(k.hi), []);
  keys[`key_lo_${s}`] = new ort.Tensor('float32', Float32Array.of(k.lo), []);
});
const adamParams = [
  { shape: [8, 4], group: 'image' as const },
  { shape: [4], group: 'head' as const },
];
const adamFeeds: Record<string, ort.Tensor> = { bc2: f32(1, []) };
for (const g of ['image', 'head']) Object.assign(adamFeeds, { [`decay_${g}`]: f32(1, []), [`step_${g}`]: f32(1, []) });
adamParams.forEach((p, i) => {
  const n = p.shape.reduce((a, b) => a * b, 1);
  for (const k of ['p', 'g', 'm', 'v']) adamFeeds[`${k}${i}`] = f32(n, p.shape);
});
const models: [string, Uint8Array, Record<string, ort.Tensor>][] = [
  [
    'enqueue',
    buildEnqueueGraph(16, 8, 4),
    {
      image_queue: f32(128, [16, 8]),
      text_queue: f32(128, [16, 8]),
      image_rows: f32(32, [4, 8]),
      text_rows: f32(32, [4, 8]),
      indices: new ort.Tensor('int64', BigInt64Array.of(14n, 15n, 0n, 1n), [4, 1]),
    },
  ],
  ['dropout masks', buildDropoutMaskGraph(sites), keys],
  ['adamw', buildAdamWGraph(adamParams, { betas: [0.9, 0.999], eps: 1e-8 }).model, adamFeeds],
];
for (const [label, model, feeds] of models) {
  process.stdout.write(`@@start ${label}\n`);
  const s = await ort.InferenceSession.create(model, {
    executionProviders: ['webgpu'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 0,
    logVerbosityLevel: 0,
  });
  await s.run(feeds);
  await s.release();
}
