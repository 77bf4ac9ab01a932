/**
 * Runs graphs built with `Graph` in onnxruntime-node (CPU execution provider, all cores) and keeps
 * float32 parameters as plain Float32Arrays between steps. AdamW runs in JS over those arrays.
 */
import type * as Ort from 'onnxruntime-node';
import { cpus } from 'node:os';
import type { TrainingGraphs } from './graph.js';
import { join } from 'node:path';

export type OrtModule = typeof Ort;
let ortPromise: Promise<OrtModule> | undefined;

/** onnxruntime-node, imported once (a clear error when it is not installed). */
export function loadOrt(): Promise<OrtModule> {
  ortPromise ??= import('onnxruntime-node').catch((e: unknown) => {
    ortPromise = undefined;
    throw new Error(`The onnx engine needs onnxruntime-node (npm ci installs it): ${(e as Error).message}`);
  });
  return ortPromise;
}

export interface OnnxSessionOptions {
  /** Intra-op threads (default: all cores). */
  threads?: number;
  /** Write onnxruntime's per-node profile (JSON) into this folder; written when the session is released. */
  profileDir?: string;
  /** onnxruntime execution providers, in order of preference (default ['cpu']; 'webgpu' needs a Vulkan driver). */
  executionProviders?: string[];
  /**
   * Keep onnxruntime's CPU memory arena (default true). Off, every run's buffers go back to the
   * system when it ends: for graphs whose peak is gigabytes (a base-size training step), so that two
   * sessions do not each keep their own peak between runs.
   */
  memArena?: boolean;
}

/** A compiled graph: named float32/int64 inputs in, named outputs out. */
export class OnnxRunner {
  private constructor(
    private readonly ort: OrtModule,
    readonly session: Ort.InferenceSession,
    private readonly profiling: boolean,
  ) {}

  static async create(model: Uint8Array, opts: OnnxSessionOptions = {}): Promise<OnnxRunner> {
    const ort = await loadOrt();
    const session = await ort.InferenceSession.create(model, {
      executionProviders: opts.executionProviders ?? ['cpu'],
      intraOpNumThreads: opts.threads ?? cpus().length,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      ...(opts.memArena === false ? { enableCpuMemArena: false, enableMemPattern: false } : {}),
      ...(opts.profileDir ? { enableProfiling: true, profileFilePrefix: join(opts.profileDir, 'ort') } : {}),
    });
    return new OnnxRunner(ort, session, !!opts.profileDir);
  }

  tensor(data: Float32Array | BigInt64Array, dims: readonly number[]): Ort.Tensor {
    return data instanceof Float32Array ? new this.ort.Tensor('float32', data, dims) : new this.ort.Tensor('int64', data, dims);
  }

  /** Runs the graph; returns each requested output's data. */
  async run(feeds: Record<string, { data: Float32Array | BigInt64Array; dims: readonly number[] }>, outputs: string[]): Promise<Float32Array[]> {
    const f: Record<string, Ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = this.tensor(v.data, v.dims);
    const res = await this.session.run(f, outputs);
    return outputs.map((o) => res[o].data as Float32Array);
  }

  /** Runs with tensors in and out (no copies: outputs can be fed to another runner). */
  async runTensors(feeds: Record<string, Ort.Tensor>, outputs: string[]): Promise<Record<string, Ort.Tensor>> {
    return (await this.session.run(feeds, outputs)) as Record<string, Ort.Tensor>;
  }

  async release(): Promise<void> {
    if (this.profiling) this.session.endProfiling();
    await this.session.release();
  }
}

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/**
 * torch.optim.AdamW on Float32Arrays, in place (t = step count after this update):
 * p <- p (1 - lr wd); m <- b1 m + (1-b1) g; v <- b2 v + (1-b2) g^2; p <- p - lr m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps).
 */
export function adamwInPlace(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, t: number, o: AdamWOptions): void {
  const decay = 1 - o.lr * o.weightDecay;
  const b1 = o.beta1;
  const b2 = o.beta2;
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  const bc2 = 1 - b2 ** t;
  const step = o.lr / (1 - b1 ** t);
  const eps = o.eps;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i];
    const mi = b1 * m[i] + c1 * gi;
    const vi = b2 * v[i] + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - (step * mi) / (Math.sqrt(vi / bc2) + eps);
  }
}

type Feed = { data: Float32Array | BigInt64Array; dims: readonly number[] };

/**
 * Forward and backward runs of a `Graph.compileTraining()` pair: `forward` keeps the activations
 * the backward run needs; `backward` takes dLoss/dOutput per output and returns the gradients.
 */
export class OnnxTrainingRunner {
  private lastFeeds?: Record<string, Ort.Tensor>;
  private saved?: Record<string, Ort.Tensor>;

  private constructor(
    private readonly graphs: TrainingGraphs,
    private readonly fwd: OnnxRunner,
    private readonly bwd: OnnxRunner,
  ) {}

  static async create(graphs: TrainingGraphs, opts: OnnxSessionOptions = {}): Promise<OnnxTrainingRunner> {
    const [f, b] = await Promise.all([OnnxRunner.create(graphs.forward.model, opts), OnnxRunner.create(graphs.backward.model, opts)]);
    return new OnnxTrainingRunner(graphs, f, b);
  }

  /** Runs the forward graph (feeds: every forward input by name); returns the outputs in order. */
  async forward(feeds: Record<string, Feed>): Promise<Float32Array[]> {
    const t: Record<string, Ort.Tensor> = {};
    for (const name of this.graphs.forward.inputs) {
      const f = feeds[name];
      if (!f) throw new Error(`onnx forward: no feed for input '${name}'`);
      t[name] = this.fwd.tensor(f.data, f.dims);
    }
    const res = await this.fwd.runTensors(t, this.graphs.forward.outputs);
    this.lastFeeds = t;
    this.saved = res;
    return this.graphs.outputNames.map((n) => res[n].data as Float32Array);
  }

  /** Gradients of sum_i <seed_i, output_i> w.r.t. the `wrt` inputs, at the last forward run. */
  async backward(seeds: Float32Array[]): Promise<Float32Array[]> {
    if (!this.saved || !this.lastFeeds) throw new Error('onnx backward: run forward first');
    const t: Record<string, Ort.Tensor> = {};
    const seedIdx = new Map(this.graphs.seedNames.map((n, i) => [n, i]));
    for (const name of this.graphs.backward.inputs) {
      const si = seedIdx.get(name);
      if (si !== undefined) {
        const dims = this.saved[this.graphs.outputNames[si]].dims;
        t[name] = this.bwd.tensor(seeds[si], dims);
      } else t[name] = this.saved[name] ?? this.lastFeeds[name];
      if (!t[name]) throw new Error(`onnx backward: no value for input '${name}'`);
    }
    const res = await this.bwd.runTensors(t, this.graphs.backward.outputs);
    return this.graphs.backward.outputs.map((n) => res[n].data as Float32Array);
  }

  async release(): Promise<void> {
    this.saved = undefined;
    this.lastFeeds = undefined;
    await Promise.all([this.fwd.release(), this.bwd.release()]);
  }
}
