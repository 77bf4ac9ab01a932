import { parentPort, workerData } from 'node:worker_threads';
import { initRuntime, installWasmFastKernels } from '@distill/core';
import type { DataParallelTask, DataParallelTaskFactory } from './data-parallel.js';

/** Worker side of startDataParallel (see data-parallel.ts for the protocol). */
interface Data {
  taskModule: string;
  taskExport: string;
  init: unknown;
  shard: { index: number; count: number };
  backend: 'wasm' | 'cpu';
  fastKernels: boolean;
}
const data = workerData as Data;
const port = parentPort!;

async function main(): Promise<void> {
  await initRuntime(data.backend, { quiet: true });
  if (data.fastKernels && data.backend === 'wasm') installWasmFastKernels();
  const mod = (await import(data.taskModule)) as Record<string, unknown>;
  const factory = mod[data.taskExport] as DataParallelTaskFactory | undefined;
  if (typeof factory !== 'function') throw new Error(`${data.taskModule} has no export '${data.taskExport}'`);
  const task: DataParallelTask = await factory(data.init, data.shard);
  const sizes = task.sizes();
  const offsets: number[] = [];
  sizes.reduce((o, n) => (offsets.push(o), o + n), 0);
  let slots: Float32Array[] = [];
  let total = 0;
  const { index, count } = data.shard;

  port.on('message', (m: { type: string; sab?: SharedArrayBuffer; total?: number }) => {
    void (async () => {
      try {
        if (m.type === 'buffer') {
          total = m.total!;
          slots = Array.from({ length: count }, (_, w) => new Float32Array(m.sab!, w * total * 4, total));
        } else if (m.type === 'grads') {
          const t0 = performance.now();
          const { loss, weight, grads } = await task.lossAndGrads();
          const t1 = performance.now();
          const mine = slots[index];
          grads.forEach((g, j) => {
            const o = offsets[j];
            for (let i = 0; i < g.length; i++) mine[o + i] = weight * g[i];
          });
          port.postMessage({
            type: 'loss',
            loss: weight * loss,
            ms: { grads: t1 - t0, exchange: performance.now() - t1 },
          });
        } else if (m.type === 'apply') {
          const t0 = performance.now();
          // Every replica sums the slots in the same order, so all get bit-identical gradients.
          const summed = sizes.map((n, j) => {
            const out = new Float32Array(n);
            const o = offsets[j];
            for (let w = 0; w < count; w++) {
              const s = slots[w];
              for (let i = 0; i < n; i++) out[i] += s[o + i];
            }
            return out;
          });
          const t1 = performance.now();
          await task.applyGrads(summed);
          port.postMessage({ type: 'applied', ms: { sum: t1 - t0, apply: performance.now() - t1 } });
        } else if (m.type === 'params') {
          port.postMessage({ type: 'params', params: await task.params() });
        }
      } catch (e) {
        port.postMessage({ type: 'error', message: String((e as Error).stack ?? e) });
      }
    })();
  });
  port.postMessage({ type: 'ready', sizes });
}

main().catch((e) => port.postMessage({ type: 'error', message: String((e as Error).stack ?? e) }));
