/**
 * Runs graphs built with `Graph` in onnxruntime-node (CPU execution provider, all cores) and keeps
 * float32 parameters as plain Float32Arrays between steps. AdamW runs in JS over those arrays.
 */
import type * as Ort from 'onnxruntime-node';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { encodeModel, type OnnxDType, type TrainingGraphs } from '@distill/autodiff';

export type OrtModule = typeof Ort;
/** An onnxruntime tensor: on the CPU, or ('gpu-buffer') on the WebGPU device. */
export type OrtTensor = Ort.Tensor;
/** Where a session puts an output: 'cpu', or 'gpu-buffer' (stays on the WebGPU device; never call getData() on it). */
export type OutputLocation = 'cpu' | 'gpu-buffer';
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
  /**
   * Where outputs go (default: the CPU): 'gpu-buffer' keeps them on the WebGPU device, to be fed to
   * the next run as inputs; a record sets it per output name (unnamed outputs: the CPU). On the CPU
   * provider every output is a CPU tensor whatever this says.
   */
  outputLocation?: OutputLocation | Record<string, OutputLocation>;
}

/** A feed: host data and its shape, or a tensor already made (a device-resident one fed back). */
export type Feed = { data: Float32Array | BigInt64Array; dims: readonly number[] };
export type FeedValue = Feed | OrtTensor;

const isTensor = (f: FeedValue): f is OrtTensor => 'location' in f && typeof (f as OrtTensor).dispose === 'function';

/** Frees a tensor's device memory (a no-op for CPU tensors, whose memory the JS heap owns). */
export function disposeDeviceTensor(t: OrtTensor | undefined): void {
  if (t && t.location === 'gpu-buffer') t.dispose();
}

/** onnxruntime's preferredOutputLocation for the providers (only WebGPU has a device location). */
function outputLocation(opts: OnnxSessionOptions): {
  preferredOutputLocation?: OutputLocation | Record<string, OutputLocation>;
} {
  const onDevice = (opts.executionProviders ?? ['cpu'])[0] === 'webgpu';
  return onDevice && opts.outputLocation ? { preferredOutputLocation: opts.outputLocation } : {};
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
      ...outputLocation(opts),
    });
    return new OnnxRunner(ort, session, !!opts.profileDir);
  }

  tensor(data: Float32Array | BigInt64Array, dims: readonly number[]): Ort.Tensor {
    return data instanceof Float32Array
      ? new this.ort.Tensor('float32', data, dims)
      : new this.ort.Tensor('int64', data, dims);
  }

  /** A feed as a tensor (tensors pass through: a device-resident one is fed without a copy). */
  feed(f: FeedValue): Ort.Tensor {
    return isTensor(f) ? f : this.tensor(f.data, f.dims);
  }

  /** Runs the graph; returns each requested output's data (outputs must be located on the CPU). */
  async run(feeds: Record<string, FeedValue>, outputs: string[]): Promise<Float32Array[]> {
    const f: Record<string, Ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = this.feed(v);
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

/**
 * Forward and backward runs of a `Graph.compileTraining()` pair: `forward` keeps the activations
 * the backward run needs; `backward` takes dLoss/dOutput per output and returns the gradients.
 * `resident` (WebGPU): the saved activations stay on the device between the two runs (and are freed
 * after the backward), and `backwardTensors` leaves the gradients there; only the forward's named
 * outputs (loss components, embeddings) come to the CPU.
 */
export class OnnxTrainingRunner {
  private lastFeeds?: Record<string, Ort.Tensor>;
  private saved?: Record<string, Ort.Tensor>;

  private constructor(
    private readonly graphs: TrainingGraphs,
    private readonly fwd: OnnxRunner,
    private readonly bwd: OnnxRunner,
    private readonly resident: boolean,
  ) {}

  static async create(
    graphs: TrainingGraphs,
    opts: OnnxSessionOptions & { resident?: boolean } = {},
  ): Promise<OnnxTrainingRunner> {
    const { resident, ...o } = opts;
    const fo: OnnxSessionOptions = resident
      ? { ...o, outputLocation: Object.fromEntries(graphs.saved.map((n) => [n, 'gpu-buffer' as const])) }
      : o;
    const bo: OnnxSessionOptions = resident ? { ...o, outputLocation: 'gpu-buffer' } : o;
    const [f, b] = await Promise.all([
      OnnxRunner.create(graphs.forward.model, fo),
      OnnxRunner.create(graphs.backward.model, bo),
    ]);
    return new OnnxTrainingRunner(graphs, f, b, !!resident);
  }

  /** Frees the saved activations of the last forward (device memory; CPU ones are left to the GC). */
  private dropSaved(): void {
    if (this.saved) for (const n of this.graphs.saved) disposeDeviceTensor(this.saved[n]);
    this.saved = undefined;
    this.lastFeeds = undefined;
  }

  /** Runs the forward graph (feeds: every forward input by name); returns the outputs in order. */
  async forward(feeds: Record<string, FeedValue>): Promise<Float32Array[]> {
    const t: Record<string, Ort.Tensor> = {};
    for (const name of this.graphs.forward.inputs) {
      const f = feeds[name];
      if (!f) throw new Error(`onnx forward: no feed for input '${name}'`);
      t[name] = this.fwd.feed(f);
    }
    this.dropSaved();
    const res = await this.fwd.runTensors(t, this.graphs.forward.outputs);
    this.lastFeeds = t;
    this.saved = res;
    return this.graphs.outputNames.map((n) => res[n].data as Float32Array);
  }

  /** Gradients of sum_i <seed_i, output_i> w.r.t. the `wrt` inputs, at the last forward run. */
  async backward(seeds: Float32Array[]): Promise<Float32Array[]> {
    const res = await this.backwardTensors(seeds);
    return res.map((t) => t.data as Float32Array);
  }

  /**
   * The gradients as tensors, where the backward session located them (on the device when resident:
   * the caller disposes them). When resident, frees the forward's saved activations: one backward per forward.
   */
  async backwardTensors(seeds: Float32Array[]): Promise<Ort.Tensor[]> {
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
    try {
      const res = await this.bwd.runTensors(t, this.graphs.backward.outputs);
      return this.graphs.backward.outputs.map((n) => res[n]);
    } finally {
      if (this.resident) this.dropSaved();
    }
  }

  async release(): Promise<void> {
    this.dropSaved();
    await Promise.all([this.fwd.release(), this.bwd.release()]);
  }
}

const readers = new Map<string, Promise<OnnxRunner>>();

/**
 * Copies tensors to the host (new Float32Arrays): CPU tensors by value, device-resident ones through
 * an identity session on `executionProviders` whose outputs are located on the CPU (getData() on a
 * gpu-buffer tensor aborts the process). For checkpoints and evaluation, not for every step.
 */
export async function readToHost(
  tensors: readonly Ort.Tensor[],
  executionProviders: string[],
): Promise<Float32Array[]> {
  const out: Float32Array[] = new Array(tensors.length);
  const onDevice: number[] = [];
  tensors.forEach((t, i) => {
    if (t.type !== 'float32') throw new Error(`readToHost: ${t.type} tensors are not read back (float32 only)`);
    if (t.location === 'cpu') out[i] = Float32Array.from(t.data as Float32Array);
    else onDevice.push(i);
  });
  if (!onDevice.length) return out;
  const dims = onDevice.map((i) => [...tensors[i].dims]);
  const key = `${executionProviders.join(',')}|${dims.map((d) => d.join('x')).join(';')}`;
  let r = readers.get(key);
  if (!r) {
    const spec = (name: string, shape: number[]) => ({ name, dtype: 'float32' as OnnxDType, shape });
    const model = encodeModel({
      nodes: dims.map((_, k) => ({ op: 'Identity', name: `copy_${k}`, inputs: [`x${k}`], outputs: [`y${k}`] })),
      initializers: [],
      inputs: dims.map((d, k) => spec(`x${k}`, d)),
      outputs: dims.map((d, k) => spec(`y${k}`, d)),
      opset: 20,
    });
    r = OnnxRunner.create(model, { executionProviders, threads: 1 });
    readers.set(key, r);
    r.catch(() => readers.delete(key));
  }
  const runner = await r;
  const res = await runner.runTensors(
    Object.fromEntries(onDevice.map((i, k) => [`x${k}`, tensors[i]])),
    dims.map((_, k) => `y${k}`),
  );
  onDevice.forEach((i, k) => (out[i] = res[`y${k}`].data as Float32Array));
  return out;
}
