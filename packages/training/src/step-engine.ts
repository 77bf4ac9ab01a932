import { existsSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';
import {
  createProgress,
  DistillError,
  readCheckpoint,
  tf,
  writeCheckpoint,
  type Logger,
  type NamedVariable,
  type ParamGroup,
  type SplitData,
  readSafetensors,
} from '@distill/core';
import type { ImageLoader } from '@distill/data';
import {
  createStudentFromConfig,
  getStudentWeights,
  setStudentWeights,
  type DualEncoderStudent,
  type OnnxStudentEngine,
  type StepMemoryPlan,
  type StepMode,
  type WeightRecord,
} from '@distill/student-architectures';
import { AdamW, ArrayAdamW, type AdamWOptions, type AdamWState } from './adamw.js';
import { DeviceAdamW } from './adamw-graph.js';
import { encodeSplit, type SplitEmbeddings } from './encode.js';
import type { GraphFeed, MethodState } from './methods.js';
import type { DeviceQueues } from './queue-graph.js';

/** One training batch, as the trainer prepares it. */
export interface StepBatch {
  /** [B, 3, crop, crop] */
  pixels: Float32Array;
  /** [B, length] token ids and 1/0 mask, cut to the batch's longest caption. */
  ids: Int32Array;
  mask: Int32Array;
  batch: number;
  length: number;
  /** The step's index (dropout masks are drawn from (seed, step)). */
  step: number;
}

/** What a step needs from the trainer: the balancer (with the NaN check) and the losses in the engine's form (tfjs, or the onnx graph's feeds). */
export interface StepHooks {
  /** Balancer weights for the step's loss components (throws on a non-finite component). */
  balance(components: Record<string, number>): number[];
  /** The balanced loss sum_c w_c L_c on tfjs, from the batch's embeddings (calls `balance`). */
  tfjsLoss(studentImage: tf.Tensor2D, studentText: tf.Tensor2D): tf.Scalar;
  /** The loss head's feeds (teacher rows, queues, targets) for the onnx graph. */
  graphFeeds(): Record<string, GraphFeed>;
}

/** Weights and optimizer state of an engine, keyed as checkpoints store them (student/<name>, adamw.m/<name>, adamw.v/<name>). */
export interface EngineState {
  weights: WeightRecord;
  optimizer: AdamWState;
}

/**
 * Where a training step runs: forward, losses, backward and the AdamW update of one batch; the
 * state to checkpoint; evaluation with the current (or given) weights.
 */
export interface StepEngine {
  /** 'onnx' (towers and losses), 'onnx-webgpu' (--device webgpu) or 'tfjs-<backend>'. */
  readonly name: string;
  /** The learning-rate multiplier of the schedule (step decay, warm-up), applied to every group. */
  lrScale: number;
  groupLr(group: ParamGroup): number;
  /** One optimisation step; returns the trained (balanced) loss. */
  step(batch: StepBatch, hooks: StepHooks): Promise<number>;
  /**
   * Brings what the device holds (weights, AdamW moments) to the host: call before `state()` and
   * `syncStudent()` (a checkpoint, saving the best student). A no-op where the host holds them.
   */
  flush(): Promise<void>;
  state(): EngineState;
  load(s: EngineState): void;
  /** Embeddings of a split with the current weights, or with `weights` (a saved best student). */
  encodeSplit(
    split: SplitData,
    loader: ImageLoader,
    splitName: string,
    weights?: WeightRecord,
  ): Promise<SplitEmbeddings>;
  /** Copies the engine's weights into the tfjs student (before saving it). */
  syncStudent(): void;
  /**
   * Takes the method's per-run state before the first step: a resident step keeps the feature queues
   * on the device (`MethodState.placeQueues`; `flush()` brings them
   * back for checkpoints). Elsewhere they stay on the host.
   */
  useMethodState?(state: Pick<MethodState, 'placeQueues'>): void;
  /**
   * What `step` takes for a split's images, by index: the loader's pixels, or (an onnx step over an image
   * tower with a frozen trunk) the trunk's outputs, computed here once per image and kept in memory.
   */
  trainImages?(
    split: SplitData,
    loader: ImageLoader,
    splitName: string,
    o?: TrainImagesOptions,
  ): Promise<Pick<ImageLoader, 'load'>>;
  release(): Promise<void>;
}

export interface TrainImagesOptions {
  log?: Logger;
  /** Where the trunk's outputs are kept between runs, and the key they were made under (content hashes: frozenTrunkCache). */
  cache?: { file: string; key: string };
}

/** Checks a weight record against the student's variables (names and shapes), as setStudentWeights does. */
function checkWeights(vars: NamedVariable[], weights: WeightRecord, what: string): void {
  const bad: string[] = [];
  for (const v of vars) {
    const w = weights[v.name];
    if (!w) bad.push(`missing ${v.name}`);
    else if (w.data.length !== v.variable.size || w.shape.join() !== v.variable.shape.join())
      bad.push(`${v.name} is [${w.shape}], expected [${v.variable.shape}]`);
  }
  const names = new Set(vars.map((v) => v.name));
  for (const k of Object.keys(weights)) if (!names.has(k)) bad.push(`unexpected ${k}`);
  if (bad.length)
    throw new DistillError(
      `${what} does not match the student: ${bad.slice(0, 3).join('; ')}${bad.length > 3 ? ` (+${bad.length - 3} more)` : ''}. Was it saved from the same pair, size and overrides?`,
      2,
    );
}

/** What both engines' optimizers (tfjs `AdamW`, `ArrayAdamW`) share: the schedule's multiplier and the groups' learning rates. */
interface ScheduledOptimizer {
  lrScale: number;
  groupLr(group: ParamGroup): number;
}

/** The schedule side of a StepEngine, delegated to its optimizer. */
abstract class OptimizerEngine {
  protected abstract readonly optimizer: ScheduledOptimizer;

  get lrScale(): number {
    return this.optimizer.lrScale;
  }
  set lrScale(s: number) {
    this.optimizer.lrScale = s;
  }
  groupLr(group: ParamGroup): number {
    return this.optimizer.groupLr(group);
  }
}

/** The pure tfjs step (--backend wasm/cpu/tensorflow): tf variables and the tfjs AdamW. */
export class TfjsStepEngine extends OptimizerEngine implements StepEngine {
  readonly name: string;
  private readonly vars: NamedVariable[];
  protected readonly optimizer: AdamW;

  constructor(
    private readonly student: DualEncoderStudent,
    opts: AdamWOptions,
    backend: string,
  ) {
    super();
    this.name = `tfjs-${backend}`;
    this.vars = student.variables();
    this.optimizer = new AdamW(this.vars, opts);
  }

  async step(b: StepBatch, hooks: StepHooks): Promise<number> {
    const { crop } = this.student.preprocess;
    const { value, grads } = tf.tidy(() => {
      const pixels = tf.tensor4d(b.pixels, [b.batch, 3, crop, crop]);
      const tok = {
        ids: tf.tensor2d(b.ids, [b.batch, b.length], 'int32'),
        mask: tf.tensor2d(b.mask, [b.batch, b.length], 'int32'),
      };
      return tf.variableGrads(
        () => hooks.tfjsLoss(this.student.encodeImage(pixels, true), this.student.encodeText(tok, true)),
        this.vars.map((v) => v.variable),
      );
    });
    const loss = value.dataSync()[0];
    value.dispose();
    this.optimizer.apply(grads);
    tf.dispose(grads);
    return loss;
  }

  async flush(): Promise<void> {}

  state(): EngineState {
    return { weights: getStudentWeights(this.student), optimizer: this.optimizer.state() };
  }

  load(s: EngineState): void {
    setStudentWeights(this.student, s.weights);
    this.optimizer.load(s.optimizer);
  }

  async encodeSplit(
    split: SplitData,
    loader: ImageLoader,
    splitName: string,
    weights?: WeightRecord,
  ): Promise<SplitEmbeddings> {
    if (!weights) return encodeSplit(this.student, split, loader, splitName);
    const other = createStudentFromConfig(this.student.config, { tokenizer: this.student.tokenizer });
    try {
      setStudentWeights(other, weights);
      return await encodeSplit(other, split, loader, splitName);
    } finally {
      other.dispose();
    }
  }

  syncStudent(): void {}

  async release(): Promise<void> {
    this.optimizer.dispose();
  }
}

/** Where the onnx step's weights and AdamW moments live: host Float32Arrays, or device tensors (resident). */
interface OnnxHolder {
  readonly optimizer: ArrayAdamW | DeviceAdamW;
  /** Backward seeded with the balancer's weights (one per loss component), then the AdamW update; returns the bytes the update sent up. */
  update(seeds: Record<string, number>): Promise<number>;
}

/** Host state: the gradients come back as Float32Arrays and `ArrayAdamW` updates the engine's `params` in place. */
function hostHolder(onnx: OnnxStudentEngine, vars: NamedVariable[], opts: AdamWOptions): OnnxHolder {
  const optimizer = new ArrayAdamW(
    vars.map((v, i) => ({ name: v.name, group: v.group, shape: v.variable.shape, data: onnx.params[i] })),
    opts,
  );
  return {
    optimizer,
    async update(seeds) {
      const grads = await onnx.backwardLoss(seeds);
      optimizer.apply(vars.map((v) => grads.get(v.name)));
      return 0;
    },
  };
}

/** Resident state: gradients, weights and moments stay in device tensors; `DeviceAdamW` (AdamW as a graph) updates them there. */
function residentHolder(onnx: OnnxStudentEngine, vars: NamedVariable[], opts: AdamWOptions): OnnxHolder {
  const optimizer = new DeviceAdamW(
    vars.map((v) => ({ name: v.name, group: v.group, shape: v.variable.shape })),
    opts,
    [...onnx.executionProviders],
  );
  return {
    optimizer,
    async update(seeds) {
      const grads = await onnx.backwardOnDevice(seeds);
      onnx.setDeviceParams(await optimizer.apply(await onnx.deviceParams(), grads));
      return optimizer.lastUploadBytes;
    },
  };
}

/**
 * The onnx step: towers and the method's losses run as one graph on onnxruntime-node, the balancer's
 * weights seed the backward, AdamW updates the weights. One step for both places the state can live:
 * host Float32Arrays (the onnx engine's `params`, updated in place by `ArrayAdamW`), or, with a
 * resident engine (WebGPU), device tensors: weights, gradients, AdamW moments (`DeviceAdamW`, AdamW as
 * a graph), the saved activations, the dropout masks (drawn by a graph on the device) and, once
 * `useMethodState` has placed them, the feature queues (`DeviceQueues`); per step the batch, the
 * teacher rows and a few scalars go up and the loss values come down. `flush()` reads weights, moments
 * and queues back for checkpoints; evaluation runs inference graphs with the same weights.
 */
export class OnnxStepEngine extends OptimizerEngine implements StepEngine {
  readonly name: string;
  private readonly vars: NamedVariable[];
  private readonly holder: OnnxHolder;
  protected readonly optimizer: ArrayAdamW | DeviceAdamW;
  /** The method's feature queues on the device (resident step). */
  private queues?: DeviceQueues;
  /** Bytes the last step sent from the host to the device (the feeds given as host arrays, seeds, AdamW scalars, queue rows). */
  lastStepUploadBytes = 0;

  constructor(
    private readonly student: DualEncoderStudent,
    private readonly onnx: OnnxStudentEngine,
    opts: AdamWOptions,
  ) {
    super();
    this.name = onnx.executionProviders[0] === 'webgpu' ? 'onnx-webgpu' : 'onnx';
    this.vars = student.variables();
    this.holder = (onnx.resident ? residentHolder : hostHolder)(onnx, this.vars, opts);
    this.optimizer = this.holder.optimizer;
  }

  useMethodState(state: Pick<MethodState, 'placeQueues'>): void {
    if (this.onnx.resident) this.queues = state.placeQueues([...this.onnx.executionProviders]);
  }

  async trainImages(
    split: SplitData,
    loader: ImageLoader,
    splitName: string,
    o: TrainImagesOptions = {},
  ): Promise<Pick<ImageLoader, 'load'>> {
    if (this.onnx.imageInput !== 'features') return loader;
    const n = split.images.length;
    const F = this.student.imageEncoder.frozen!.dim;
    const t0 = Date.now();
    let feats: Float32Array | undefined;
    if (o.cache && existsSync(o.cache.file)) {
      try {
        const ck = readCheckpoint<{ key: string }>(o.cache.file);
        const t = ck.tensors.features;
        if (ck.state.key === o.cache.key && t && t.shape[0] === n && t.shape[1] === F) feats = t.data;
        else
          o.log?.warn(
            `frozen image trunk: ${o.cache.file} was made for other images or another trunk: computing again`,
          );
      } catch (e) {
        o.log?.warn(`frozen image trunk: ${(e as Error).message}: computing again`);
      }
    }
    if (feats) {
      o.log?.info(`frozen image trunk: ${n} ${splitName} images' ${F}-d features from ${o.cache!.file}`);
    } else {
      const progress = createProgress({ label: 'frozen image trunk', total: n });
      feats = await this.onnx.trunkFeatures(n, (idx) => loader.load(idx, splitName), {
        onBatch: (k) => progress.tick(k),
      });
      progress.done();
      if (o.cache)
        writeCheckpoint(o.cache.file, {
          tensors: { features: { shape: [n, F], data: feats } },
          state: { key: o.cache.key },
        });
      o.log?.info(
        `frozen image trunk: ${n} ${splitName} images -> ${F}-d features in ${((Date.now() - t0) / 1000).toFixed(1)} s (the steps train the heads on them)`,
      );
    }
    const all = feats;
    return {
      load: async (indices: number[]) => {
        const out = new Float32Array(indices.length * F);
        indices.forEach((i, r) => out.set(all.subarray(i * F, (i + 1) * F), r * F));
        return out;
      },
    };
  }

  /** towers + losses forward -> balancer weights -> backward seeded with them -> AdamW. */
  async step(b: StepBatch, hooks: StepHooks): Promise<number> {
    const q0 = this.queues?.uploadedBytes ?? 0;
    // resident queues: their device tensors replace the host rows (the previous step's enqueue runs first)
    const feeds = this.queues ? { ...hooks.graphFeeds(), ...(await this.queues.feeds()) } : hooks.graphFeeds();
    const comps = await this.onnx.forwardLoss(b.pixels, b.ids, b.mask, b.batch, b.length, feeds, { step: b.step });
    const w = hooks.balance(comps);
    const names = Object.keys(comps);
    const loss = names.reduce((a, n, i) => a + Math.fround(w[i] * comps[n]), 0);
    const adamwBytes = await this.holder.update(Object.fromEntries(names.map((n, i) => [n, w[i]])));
    // up: the forward's host feeds, the backward's seeds (one float per loss component), the AdamW scalars, the queue rows and indices
    this.lastStepUploadBytes =
      this.onnx.lastHostFeedBytes + 4 * names.length + adamwBytes + (this.queues?.uploadedBytes ?? 0) - q0;
    return loss;
  }

  async flush(): Promise<void> {
    if (!(this.optimizer instanceof DeviceAdamW)) return;
    await Promise.all([this.onnx.syncToHost(), this.optimizer.flush(), this.queues?.flush()]);
  }

  state(): EngineState {
    if (!this.onnx.hostCurrent)
      throw new Error('OnnxStepEngine.state(): the device holds newer weights; await flush() first');
    const weights: WeightRecord = {};
    this.vars.forEach((v, i) => (weights[v.name] = { shape: [...v.variable.shape], data: this.onnx.params[i] }));
    return { weights, optimizer: this.optimizer.state() };
  }

  load(s: EngineState): void {
    checkWeights(this.vars, s.weights, 'The checkpoint');
    this.vars.forEach((v, i) => this.onnx.params[i].set(s.weights[v.name].data));
    if (this.onnx.resident) this.onnx.paramsWritten();
    this.optimizer.load(s.optimizer);
  }

  async encodeSplit(
    split: SplitData,
    loader: ImageLoader,
    splitName: string,
    weights?: WeightRecord,
    batchSize = 64,
  ): Promise<SplitEmbeddings> {
    let params: Float32Array[] = this.onnx.params;
    if (weights) {
      checkWeights(this.vars, weights, 'The saved student');
      params = this.vars.map((v) => weights[v.name].data);
    }
    const dim = this.student.embedDim;
    const { crop } = this.student.preprocess;
    const px1 = 3 * crop * crop;
    // one batch shape per tower: the last batch is padded (its extra rows are dropped)
    const nI = split.images.length;
    const bI = Math.min(batchSize, nI);
    const images = new Float32Array(nI * dim);
    for (let s = 0; s < nI; s += bI) {
      const n = Math.min(bI, nI - s);
      const px = await loader.load(
        Array.from({ length: n }, (_, i) => s + i),
        splitName,
      );
      const full = n === bI ? px : new Float32Array(bI * px1);
      if (full !== px) full.set(px);
      const out = await this.onnx.encodeImages(full, bI, params);
      images.set(out.subarray(0, n * dim), s * dim);
    }
    const tok = this.student.tokenizer;
    if (!tok) throw new DistillError(`Student '${this.student.name}' has no tokenizer.`, 2);
    const nT = split.captions.length;
    const bT = Math.min(batchSize, nT);
    const texts = new Float32Array(nT * dim);
    const L = tok.maxLength;
    for (let s = 0; s < nT; s += bT) {
      const n = Math.min(bT, nT - s);
      const enc = tok.encodeArrays(split.captions.slice(s, s + n).map((c) => c.text));
      let Lb = 1;
      for (let r = 0; r < n; r++) for (let k = 0; k < L; k++) if (enc.mask[r * L + k]) Lb = Math.max(Lb, k + 1);
      const ids = new Int32Array(bT * Lb);
      const mask = new Int32Array(bT * Lb);
      for (let r = 0; r < n; r++) {
        ids.set(enc.ids.subarray(r * L, r * L + Lb), r * Lb);
        mask.set(enc.mask.subarray(r * L, r * L + Lb), r * Lb);
      }
      for (let r = n; r < bT; r++) mask[r * Lb] = 1; // padded rows: one masked-in token, results dropped
      const out = await this.onnx.encodeTexts(ids, mask, bT, Lb, params);
      texts.set(out.subarray(0, n * dim), s * dim);
    }
    return { images, texts, dim, textToImage: Int32Array.from(split.captions, (c) => c.image) };
  }

  syncStudent(): void {
    setStudentWeights(this.student, this.state().weights);
  }

  async release(): Promise<void> {
    if (this.optimizer instanceof DeviceAdamW) await this.optimizer.release();
    await this.queues?.release();
    await this.onnx.release();
  }
}

const GB = 1024 ** 3;
const fmt = (b: number) => `${(b / GB).toFixed(1)} GB`;

/** A step's memory, estimated from the compiled graphs before any work. */
export interface MemoryEstimate {
  bytes: number;
  detail: string;
}

/**
 * Bytes a training run holds at its peak: for the onnx engine, weights + gradients + two AdamW
 * moments as Float32Arrays, the gradients once more as onnxruntime hands them over, the tfjs copy
 * of the student, the activations the backward reads (in the 'split' form three times: the forward
 * run's outputs, their JS copies and the forward session's arena; in the 'fused' form once, inside
 * onnxruntime), the
 * dropout masks and a few of the largest forward values (the working set); for tfjs, the same four
 * copies of the weights inside the wasm heap.
 */
export function estimateStepMemory(o: {
  engine: 'onnx' | 'tfjs';
  params: number;
  plan?: StepMemoryPlan;
  mode?: StepMode;
}): MemoryEstimate {
  const P = o.params * 4;
  if (o.engine === 'tfjs')
    return { bytes: 4 * P, detail: `weights, gradients and AdamW moments ${fmt(4 * P)} in the tfjs-wasm heap` };
  const plan = o.plan!;
  const k = o.mode === 'fused' ? 1 : 3; // split: onnxruntime's output, its JS copy, and the forward session's arena keeping its peak
  const saved = plan.savedFloats * 4;
  const work = plan.largestFloats * 4 * 4 + plan.maskFloats * 4;
  const bytes = 6 * P + k * saved + work + 0.5 * GB;
  return {
    bytes,
    detail:
      `weights+gradients+AdamW moments ${fmt(4 * P)}, gradient hand-over ${fmt(P)}, tfjs copy of the student ${fmt(P)}, ` +
      `activations for the backward ${fmt(saved)}${k > 1 ? ` (x${k}: copied out of onnxruntime at the hand-over)` : ''}, working set ${fmt(work)}, runtime 0.5 GB`,
  };
}

/**
 * Picks the onnx step form before any work: 'split' (fastest) when its estimate fits in 80% of the
 * machine's memory and in what is free now, else 'fused' (about half the activations, one more
 * forward run); refuses (DistillError) when even 'fused' does not fit.
 */
export function planOnnxStep(
  onnx: OnnxStudentEngine,
  o: { params: number; batchSize: number; textLength: number; size: string },
) {
  const split = estimateStepMemory({
    engine: 'onnx',
    params: o.params,
    plan: onnx.plan(o.batchSize, o.textLength, true, 'split'),
    mode: 'split',
  });
  if (split.bytes <= 0.8 * totalmem() && split.bytes <= freemem()) {
    onnx.mode = 'split';
    return { mode: 'split' as StepMode, estimate: split, warning: undefined };
  }
  onnx.dropPlans();
  const fused = estimateStepMemory({
    engine: 'onnx',
    params: o.params,
    plan: onnx.plan(o.batchSize, o.textLength, true, 'fused'),
    mode: 'fused',
  });
  onnx.mode = 'fused';
  const warning = checkMemory(fused, { engine: 'onnx', batchSize: o.batchSize, size: o.size });
  return { mode: 'fused' as StepMode, estimate: fused, warning, splitBytes: split.bytes };
}

/** tfjs-wasm's heap is 32-bit: 4 GiB at most, and it aborts well before that. */
export const WASM_HEAP_BYTES = 2 * GB;

/**
 * Refuses, before any work, a configuration whose estimate does not fit: with the estimate and what
 * to change. Warns (returns a line) when it fits in total memory but not in what is free now.
 */
export function checkMemory(
  est: MemoryEstimate,
  o: { engine: 'onnx' | 'tfjs'; batchSize: number; size: string },
): string | undefined {
  if (o.engine === 'tfjs') {
    if (est.bytes > WASM_HEAP_BYTES) {
      throw new DistillError(
        `This student does not fit the tfjs engine: ${est.detail}, over the ~${fmt(WASM_HEAP_BYTES)} a 32-bit wasm heap can hold. Use --backend onnx (or auto), or a smaller size.`,
        2,
      );
    }
    return undefined;
  }
  const total = totalmem();
  if (est.bytes > 0.9 * total) {
    throw new DistillError(
      `A training step of the '${o.size}' student at batch ${o.batchSize} needs about ${fmt(est.bytes)} (${est.detail}); this machine has ${fmt(total)}. ` +
        `Lower --batch-size (the saved activations scale with it) or pick a smaller size.`,
      2,
    );
  }
  const free = freemem();
  if (est.bytes > free)
    return `a step needs about ${fmt(est.bytes)} (${est.detail}); only ${fmt(free)} is free now: the run may swap or be killed`;
  return undefined;
}

/** Peak resident memory of this process so far, in bytes. */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

/** A saved student's weights (model.safetensors) as a WeightRecord, without building a tfjs student. */
export function readSavedWeights(path: string): WeightRecord {
  const out: WeightRecord = {};
  for (const [k, t] of readSafetensors(path)) out[k] = { shape: t.shape, data: t.data };
  return out;
}
