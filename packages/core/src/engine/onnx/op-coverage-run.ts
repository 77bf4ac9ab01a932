/**
 * Child process of webgpu.test.ts: runs every op-coverage model on the CPU provider and on the
 * given provider (verbose log on, so onnxruntime prints each session's node placements, in session
 * order, on this process's stderr) and writes the outputs as JSON to the file named by argv[2].
 * The backward models read the CPU forward run's saved activations on both providers, so a
 * difference points at the backward ops themselves.
 *
 *   node --conditions=@distill/source --import tsx packages/core/src/engine/onnx/op-coverage-run.ts <out.json> [webgpu]
 */
import { writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { coverageModels, type CoverageModel } from './op-coverage.js';

export interface CoverageRun {
  ep: string;
  /** One entry per model, in session order: outputs per provider, or the error of the provider that failed. */
  models: {
    label: string;
    ops: string[];
    cpu: Record<string, number[]>;
    device?: Record<string, number[]>;
    error?: string;
  }[];
}

type Feeds = Record<string, ort.Tensor>;
const tensors = (f: CoverageModel['feeds']): Feeds =>
  Object.fromEntries(
    Object.entries(f).map(([k, v]) => [
      k,
      v.dtype === 'int64'
        ? new ort.Tensor('int64', BigInt64Array.from(v.data.map(BigInt)), v.dims)
        : new ort.Tensor('float32', Float32Array.from(v.data), v.dims),
    ]),
  );
const plain = (r: Record<string, ort.Tensor>, names: string[]) =>
  Object.fromEntries(names.map((n) => [n, Array.from(r[n].data as ArrayLike<number | bigint>, Number)]));

async function run(
  model: Uint8Array,
  feeds: Feeds,
  outputs: string[],
  ep: string,
): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(model, {
    executionProviders: [ep],
    graphOptimizationLevel: 'all',
    logSeverityLevel: ep === 'cpu' ? 3 : 0,
    logVerbosityLevel: 0,
  });
  try {
    return (await s.run(feeds, outputs)) as Record<string, ort.Tensor>;
  } finally {
    await s.release();
  }
}

async function main(): Promise<void> {
  const [out, ep = 'webgpu'] = process.argv.slice(2);
  const result: CoverageRun = { ep, models: [] };
  for (const c of coverageModels(17, ep === 'webgpu' ? 'webgpu' : 'cpu')) {
    const fCpu = await run(c.forward.model, tensors(c.forward.feeds), c.forward.outputs, 'cpu');
    const bFeeds: Feeds = { ...tensors(c.backward.feeds) };
    for (const n of c.backward.fromForward) bFeeds[n] = fCpu[n];
    const bCpu = await run(c.backward.model, bFeeds, c.backward.outputs, 'cpu');
    for (const [m, feeds, cpu] of [
      [c.forward, tensors(c.forward.feeds), fCpu],
      [c.backward, bFeeds, bCpu],
    ] as const) {
      const entry: CoverageRun['models'][number] = { label: m.label, ops: m.ops, cpu: plain(cpu, m.outputs) };
      process.stdout.write(`@@start ${m.label}\n`);
      try {
        entry.device = plain(await run(m.model, feeds, m.outputs, ep), m.outputs);
      } catch (e) {
        entry.error = String((e as Error).message).split('\n')[0];
      }
      result.models.push(entry);
    }
  }
  writeFileSync(out, JSON.stringify(result));
}

void main();
