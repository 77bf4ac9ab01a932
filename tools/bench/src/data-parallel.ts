import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Data-parallel training over worker_threads (tfjs-wasm in Node is single-threaded, so this is how
 * a step uses both cores). Each worker has its own tfjs runtime and an identical replica of the
 * model; it computes the loss and gradients of its shard of the batch, writes `weight * grads`
 * into its slot of one SharedArrayBuffer, and after all workers have written, each worker sums the
 * slots and applies the same optimizer update, so the replicas stay identical.
 *
 * The model lives in a task module (any ESM module) whose `taskExport` (default `createTask`) is a
 * `DataParallelTaskFactory`. Opt-in: nothing else in distill changes when this is not used.
 */
export interface DataParallelTask {
  /** Element count of each trainable tensor, in a fixed order. */
  sizes(): number[];
  /** Loss and gradients of this worker's shard; `weight` is the shard's share of the full batch (sum 1). */
  lossAndGrads():
    | { loss: number; weight: number; grads: Float32Array[] }
    | Promise<{ loss: number; weight: number; grads: Float32Array[] }>;
  /** Apply the summed (full-batch) gradients: optimizer update. */
  applyGrads(grads: Float32Array[]): void | Promise<void>;
  /** Current parameter values (for checks and checkpoints). */
  params(): Float32Array[] | Promise<Float32Array[]>;
}
export type DataParallelTaskFactory = (
  init: unknown,
  shard: { index: number; count: number },
) => DataParallelTask | Promise<DataParallelTask>;

export interface DataParallelOptions {
  workers: number;
  /** URL or absolute path of the task module. */
  taskModule: string | URL;
  taskExport?: string;
  /** Structured-cloneable configuration passed to the factory. */
  init: unknown;
  backend?: 'wasm' | 'cpu';
  /** Install installWasmFastKernels() in each worker (wasm only). */
  fastKernels?: boolean;
}

export interface DataParallel {
  readonly workers: number;
  /** One synchronous data-parallel step; returns the full-batch loss (before the update). */
  step(): Promise<number>;
  /** Per-worker phase times (ms) of the last step: grads, exchange (write to shared memory), sum, apply. */
  lastTimings(): Record<string, number>[];
  /** Parameters of replica `worker` (default 0). */
  params(worker?: number): Promise<Float32Array[]>;
  close(): Promise<void>;
}

export type WorkerMessage =
  | { type: 'ready'; sizes: number[] }
  | { type: 'loss'; loss: number; ms?: Record<string, number> }
  | { type: 'applied'; ms?: Record<string, number> }
  | { type: 'params'; params: Float32Array[] }
  | { type: 'error'; message: string };

/** Boot code for a worker running from TypeScript sources: register tsx in the worker, then import the entry. */
const TS_BOOT = `const { workerData } = require('node:worker_threads');
import(workerData.tsxApi).then((m) => { m.register(); return import(workerData.entry); })
  .catch((e) => require('node:worker_threads').parentPort.postMessage({ type: 'error', message: String(e && e.stack || e) }));`;

function workerEntry(): { code: string | URL; eval: boolean; extra: Record<string, string>; execArgv: string[] } {
  const js = new URL('./dp-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(js))) return { code: js, eval: false, extra: {}, execArgv: [] };
  // Running from TypeScript sources (tsx, vitest): the worker registers tsx itself (Node 20 does
  // not apply `--import tsx` hooks to a worker's entry module).
  const require = createRequire(import.meta.url);
  const tsxApi = pathToFileURL(
    require.resolve('tsx/package.json').replace(/package\.json$/, 'dist/esm/api/index.mjs'),
  ).href;
  const entry = new URL('./dp-worker.ts', import.meta.url).href;
  return { code: TS_BOOT, eval: true, extra: { tsxApi, entry }, execArgv: ['--conditions=@distill/source'] };
}

class Replica {
  private waiting: { resolve: (m: WorkerMessage) => void; reject: (e: Error) => void } | undefined;
  private queue: WorkerMessage[] = [];
  private failed: Error | undefined;
  constructor(readonly worker: Worker) {
    worker.on('message', (m: WorkerMessage) => {
      if (m.type === 'error') this.fail(new Error(`data-parallel worker: ${m.message}`));
      else if (this.waiting) {
        const w = this.waiting;
        this.waiting = undefined;
        w.resolve(m);
      } else this.queue.push(m);
    });
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => {
      if (code !== 0) this.fail(new Error(`data-parallel worker exited with code ${code}`));
    });
  }
  private fail(e: Error) {
    this.failed ??= e;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w.reject(e);
    }
  }
  next<T extends WorkerMessage['type']>(type: T): Promise<Extract<WorkerMessage, { type: T }>> {
    const check = (m: WorkerMessage) => {
      if (m.type !== type) throw new Error(`data-parallel worker: expected '${type}', got '${m.type}'`);
      return m as Extract<WorkerMessage, { type: T }>;
    };
    if (this.failed) return Promise.reject(this.failed);
    const q = this.queue.shift();
    if (q) return Promise.resolve(check(q));
    return new Promise((resolve, reject) => {
      this.waiting = {
        resolve: (m) => {
          try {
            resolve(check(m));
          } catch (e) {
            reject(e as Error);
          }
        },
        reject,
      };
    });
  }
}

export async function startDataParallel(opts: DataParallelOptions): Promise<DataParallel> {
  const count = opts.workers;
  if (!Number.isInteger(count) || count < 1) throw new Error(`workers must be a positive integer, got ${count}`);
  const entry = workerEntry();
  const taskModule =
    opts.taskModule instanceof URL
      ? opts.taskModule.href
      : opts.taskModule.startsWith('file:')
        ? opts.taskModule
        : pathToFileURL(opts.taskModule).href;
  const replicas = Array.from(
    { length: count },
    (_, index) =>
      new Replica(
        new Worker(entry.code, {
          eval: entry.eval,
          execArgv: entry.execArgv,
          workerData: {
            ...entry.extra,
            taskModule,
            taskExport: opts.taskExport ?? 'createTask',
            init: opts.init,
            shard: { index, count },
            backend: opts.backend ?? 'wasm',
            fastKernels: !!opts.fastKernels,
          },
        }),
      ),
  );
  const closeAll = () => Promise.all(replicas.map((r) => r.worker.terminate())).then(() => undefined);
  let sizes: number[];
  try {
    const ready = await Promise.all(replicas.map((r) => r.next('ready')));
    sizes = ready[0].sizes;
    if (ready.some((m) => m.sizes.join() !== sizes.join()))
      throw new Error('data-parallel replicas disagree on parameter sizes');
  } catch (e) {
    await closeAll();
    throw e;
  }
  const total = sizes.reduce((a, b) => a + b, 0);
  const sab = new SharedArrayBuffer(count * total * 4);
  for (const r of replicas) r.worker.postMessage({ type: 'buffer', sab, total });
  let timings: Record<string, number>[] = [];
  return {
    workers: count,
    async step() {
      for (const r of replicas) r.worker.postMessage({ type: 'grads' });
      const losses = await Promise.all(replicas.map((r) => r.next('loss')));
      for (const r of replicas) r.worker.postMessage({ type: 'apply' });
      const applied = await Promise.all(replicas.map((r) => r.next('applied')));
      timings = losses.map((m, i) => ({ ...m.ms, ...applied[i].ms }));
      return losses.reduce((a, m) => a + m.loss, 0);
    },
    lastTimings: () => timings,
    async params(worker = 0) {
      replicas[worker].worker.postMessage({ type: 'params' });
      return (await replicas[worker].next('params')).params;
    },
    close: closeAll,
  };
}
