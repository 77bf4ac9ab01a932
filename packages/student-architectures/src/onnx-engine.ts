/**
 * Trains a student's towers on the onnx engine: the image and text towers, projections and L2
 * normalisation run forward and backward as onnxruntime-node graphs (all cores). The loss either
 * stays in tfjs (`forward` hands out the embeddings, `backward` takes dLoss/dEmbedding) or is part
 * of the graph (a `LossHead`: `forwardLoss` returns its components, `backwardLoss` takes their
 * weights). The weights are plain Float32Arrays owned by the engine (`params`, in the order of
 * `student.variables()`), copied once from the student: nothing is copied out of tfjs per step, so
 * a 200M-parameter student trains outside the 32-bit tfjs-wasm heap. `encodeImages`/`encodeTexts`
 * run inference-only graphs (no saved activations) for evaluation.
 */
import { OnnxRunner, OnnxTrainingRunner, Rng, graphOps, type GraphDropFn, type TensorParams } from '@distill/core';
import { Graph, type Sym, type TrainingGraphs, onnxOps as op, buildingFor } from '@distill/autodiff';
import { disposeDeviceTensor, loadOrt, readToHost, type FeedValue, type OrtTensor } from '@distill/core';
import { studentEmbedding, studentImageEmbeddingFromFeatures, type DualEncoderStudent } from './student.js';
import { buildDropoutMaskGraph, dropoutKey } from './dropout-graph.js';

/** Why a student cannot train on the onnx engine (undefined when it can: every registered pair can). */
export function onnxSupport(student: DualEncoderStudent): string | undefined {
  const { image, text } = student.config;
  if (!['vit', 'deit', 'resnet', 'mobilenet-v2', 'mobilenet-v2-frozen'].includes(image.type))
    return `the '${image.type}' image tower is not written for the onnx engine`;
  if (!['bert', 'albert', 'textcnn', 'glove'].includes(text.type))
    return `the '${text.type}' text tower is not written for the onnx engine`;
  return undefined;
}

/** A dropout site of a student graph: its mask is a graph input (0 or 1/(1-rate), fed each step). */
export interface DropoutSite {
  name: string;
  shape: number[];
  rate: number;
}

/**
 * A loss written on the graph: given the batch's L2-normalised embeddings [B, D] (unnormalised
 * projections when `student.normalizeInTraining` is false), it declares its own inputs (teacher
 * features, queues, targets: fed by name to `forwardLoss`) and returns named scalar components. The
 * trained loss is sum_c w_c L_c, the weights given to `backwardLoss`.
 */
export type LossHead = (g: Graph, embeddings: { image: Sym; text: Sym }) => Record<string, Sym>;

/**
 * How a step runs forward and backward. 'split': a forward run that hands every activation the
 * backward needs to a backward run (fastest; onnxruntime-node copies those activations out, so they
 * are held twice at the hand-over). 'fused': a forward-only run for the losses (or embeddings), then
 * one run of forward + backward seeded with the loss weights: the activations never leave
 * onnxruntime and are freed as the backward consumes them (about half the memory, one more forward).
 */
export type StepMode = 'split' | 'fused';

/** The fused form: a forward-only model and a forward + backward model (inputs + `seed_<i>` -> `loss_<i>` + `grad_<i>`). */
export interface FusedStepGraphs {
  forward: Uint8Array;
  step: Uint8Array;
  /** Forward outputs of the forward-only model (`out_<i>`) and their shapes. */
  outputNames: string[];
  outputShapes: number[][];
  seedNames: string[];
  gradNames: string[];
}

/**
 * The training graphs of a student for one batch shape: outputs [L2-normalised image, text
 * embeddings] (unnormalised when `student.normalizeInTraining` is false), or with a `head` its
 * loss components (`components` names them); `dropout` lists the mask inputs (dropout = x * mask,
 * as tf.dropout's scaling). `mode` 'fused' adds `fused` (see StepMode).
 */
export function buildStudentGraphs(
  student: DualEncoderStudent,
  batch: number,
  textLength: number,
  head?: LossHead,
  mode: StepMode = 'split',
  imageInput: ImageInput = 'pixels',
) {
  const g = new Graph();
  const dropout: DropoutSite[] = [];
  const drop: GraphDropFn = (x, rate) => {
    if (!(rate > 0)) return x;
    const m = g.input(`dropout_${dropout.length}`, [...x.shape]);
    dropout.push({ name: m.name, shape: [...x.shape], rate });
    return op.mul(x, m); // dropout(x) = x * mask, mask_i = [u_i >= rate] / (1 - rate)
  };
  const vars = student.variables();
  const inputs = vars.map((v, i) => g.input(`p${i}`, [...v.variable.shape], { requiresGrad: true }));
  const params: TensorParams<Sym> = Object.fromEntries(vars.map((v, i) => [v.name, inputs[i]]));
  const { crop } = student.preprocess;
  const ids = g.input('ids', [batch, textLength], { dtype: 'int64' });
  const mask = g.input('mask', [batch, textLength]);
  const o = graphOps({ drop });
  const normalize = student.normalizeInTraining; // false: the losses see the unnormalised projections (Table 6)
  const image =
    imageInput === 'features'
      ? studentImageEmbeddingFromFeatures(o, student, params, g.input('image_features', [batch, frozenDim(student)]), {
          normalize,
        })
      : studentEmbedding(o, student, 'image', params, g.input('pixels', [batch, 3, crop, crop]), { normalize });
  const text = studentEmbedding(o, student, 'text', params, { ids, mask }, { normalize });
  const comps = head ? head(g, { image, text }) : {};
  const components = Object.keys(comps);
  for (const c of components) {
    if (comps[c].shape.length !== 0)
      throw new Error(`Loss head component '${c}' must be a scalar, got shape [${comps[c].shape.join(',')}].`);
  }
  // the largest forward value (an attention score tensor, an MLP activation) bounds a step's working set
  let largestFloats = 0;
  const paramSet = new Set(inputs);
  for (const v of g.values.values()) if (!paramSet.has(v)) largestFloats = Math.max(largestFloats, v.size);
  const outputs = head ? components.map((c) => comps[c]) : [image, text];
  const maskFloats = dropout.reduce((a, d) => a + d.shape.reduce((x, y) => x * y, 1), 0);
  if (mode === 'fused') {
    const outputNames = outputs.map((_, i) => `out_${i}`);
    const forward = g.encode(outputs, outputNames); // before the backward nodes exist: forward only
    const nForward = g.nodes.length;
    const seeds = outputs.map((o, i) => g.input(`seed_${i}`, [...o.shape]));
    const grads = g.gradients(outputs, seeds, inputs);
    const gradNames = grads.map((_, i) => `grad_${i}`);
    const step = g.encode([...outputs, ...grads], [...outputs.map((_, i) => `loss_${i}`), ...gradNames]);
    // the forward values the backward reads (they stay inside onnxruntime, freed as the backward goes)
    const producedFwd = new Set(g.nodes.slice(0, nForward).flatMap((n) => n.outputs));
    const read = new Set(
      g.nodes
        .slice(nForward)
        .flatMap((n) => n.inputs)
        .filter((n) => producedFwd.has(n)),
    );
    const savedFloats = [...read].reduce((a, n) => a + (g.values.get(n)?.size ?? 0), 0);
    const fused: FusedStepGraphs = {
      forward,
      step,
      outputNames,
      outputShapes: outputs.map((o) => [...o.shape]),
      seedNames: seeds.map((x) => x.name),
      gradNames,
    };
    return {
      fused,
      dropout,
      components,
      memory: { savedFloats, largestFloats, maskFloats, maskSites: dropout.length },
    };
  }
  const graphs = g.compileTraining(outputs, inputs);
  const savedFloats = graphs.saved.reduce((a, n) => a + (g.values.get(n)?.size ?? 0), 0);
  return {
    ...graphs,
    dropout,
    components,
    memory: { savedFloats, largestFloats, maskFloats, maskSites: dropout.length },
  };
}

/**
 * What the training graphs take for images: 'pixels' [B, 3, crop, crop], or 'features' [B, F]: the output of
 * the image tower's frozen trunk (`Encoder.frozen`), computed once per image by the caller
 * (`OnnxStudentEngine.trunkFeatures`), so a step runs only the trained part.
 */
export type ImageInput = 'pixels' | 'features';

function frozenDim(student: DualEncoderStudent): number {
  const f = student.imageEncoder.frozen;
  if (!f)
    throw new Error(
      `Student '${student.name}': imageFeatures needs an image tower with a frozen trunk (mobilenet-glove), not '${student.config.image.type}'.`,
    );
  return f.dim;
}

/** What one training step holds besides the weights, in float32 values (from the compiled graphs). */
export interface StepMemoryPlan {
  /** Activations the forward run hands to the backward run. */
  savedFloats: number;
  /** The largest single forward value. */
  largestFloats: number;
  /** Dropout masks fed per step. */
  maskFloats: number;
  /** Dropout sites (masks) per step. */
  maskSites?: number;
}

/**
 * An inference graph of one tower for one batch shape: params p<i> (the student's variables, only
 * those the tower reads are inputs) and pixels [B, 3, crop, crop] or ids/mask [B, L] in, the
 * L2-normalised embeddings [B, embedDim] out. Dropout is off.
 */
export function buildEncoderGraph(
  student: DualEncoderStudent,
  tower: 'image' | 'text',
  batch: number,
  textLength: number,
): { model: Uint8Array; inputs: string[] } {
  const g = new Graph();
  const vars = student.variables();
  // only the tower's own weights and its projection are inputs (onnxruntime wants every input fed)
  const params: TensorParams<Sym> = Object.fromEntries(
    vars.flatMap((v, i) =>
      v.name.startsWith(`${tower}.`) || v.name.startsWith(`${tower}_proj.`)
        ? [[v.name, g.input(`p${i}`, [...v.variable.shape])]]
        : [],
    ),
  );
  const o = graphOps();
  let out: Sym;
  if (tower === 'image') {
    const { crop } = student.preprocess;
    out = studentEmbedding(o, student, 'image', params, g.input('pixels', [batch, 3, crop, crop]));
  } else {
    out = studentEmbedding(o, student, 'text', params, {
      ids: g.input('ids', [batch, textLength], { dtype: 'int64' }),
      mask: g.input('mask', [batch, textLength]),
    });
  }
  const model = g.encode([out], ['embedding']);
  return { model, inputs: g.inputs.map((s) => s.name) };
}

/** Bytes of the feeds given as host arrays (device-resident tensors cross nothing). */
function hostBytes(feeds: Record<string, FeedValue>): number {
  let n = 0;
  for (const f of Object.values(feeds))
    if (!('location' in f) || f.location === 'cpu') n += (f.data as ArrayBufferView).byteLength;
  return n;
}

export interface OnnxStudentEngineOptions {
  threads?: number;
  /**
   * onnxruntime execution providers of every session (default ['cpu']). ['webgpu'] runs the graphs on
   * WebGPU, built for it (the gather gradient's device form), with the weights resident (below).
   */
  executionProviders?: string[];
  /**
   * Weights as onnxruntime tensors between steps (default: on with 'webgpu', where they stay on the
   * device): the step's saved activations and gradients stay there too (`backwardOnDevice`), the
   * optimizer updates the tensors (`setDeviceParams`), and `params` is brought up to date by
   * `syncToHost()` only (checkpoints). Off: every run uploads `params` and returns gradients to JS.
   */
  resident?: boolean;
  /** Text batches are padded to a multiple of this (fewer graph shapes to compile; padding is masked). */
  lengthBucket?: number;
  /** Seed of the dropout masks (a step's masks depend only on the seed and the step). */
  seed?: number;
  /**
   * Draw the dropout masks on the device with the counter-based generator of `dropout-graph.ts` (a
   * graph run before the forward, its masks left where it ran: only two scalars per site go up)
   * instead of in JS (`Rng`, uploaded). Default: on when the first provider is 'webgpu'. The two
   * generators draw different masks: cpu and webgpu runs with dropout > 0 differ by their masks.
   */
  deviceDropout?: boolean;
  /** The loss as part of the graph (enables `forwardLoss` / `backwardLoss`). */
  head?: LossHead;
  /** The starting weights in `student.variables()` order (default: copied once from the student's variables). */
  params?: Float32Array[];
  /** How steps run forward and backward (default 'split'; 'fused' holds about half the activations). */
  mode?: StepMode;
  /**
   * Train on the frozen trunk's outputs (default 'pixels'): `forward`/`forwardLoss` then take [B, F] trunk
   * features where they take pixels (`trunkFeatures` computes them); inference (`encodeImages`) still takes pixels.
   */
  imageInput?: ImageInput;
}

type StudentRunner = {
  dropout: DropoutSite[];
  components: string[];
} & (
  | { runner: OnnxTrainingRunner; fused?: undefined }
  | { runner?: undefined; fused: { graphs: FusedStepGraphs; forward: OnnxRunner; step: OnnxRunner } }
);

/** Compiles graphs per (batch, padded text length) on first use and keeps them. */
export class OnnxStudentEngine {
  private readonly runners = new Map<string, Promise<StudentRunner>>();
  private readonly built = new Map<string, ReturnType<typeof buildStudentGraphs>>();
  private readonly encoders = new Map<string, Promise<{ runner: OnnxRunner; inputs: string[] }>>();
  private current?: StudentRunner;
  /** The mask graphs per dropout site list, and the last step's device masks (freed at the next step). */
  private readonly maskRunners = new Map<string, Promise<OnnxRunner>>();
  private masks?: OrtTensor[];
  /** Bytes of the mask graph's feeds in the current step (two float scalars per site; 0 with host masks). */
  private maskKeyBytes = 0;
  /**
   * Bytes of the last forward's feeds given as host arrays (batch, dropout masks, head inputs fed
   * from the host; not the resident weights or other device tensors): what that run uploads.
   */
  lastHostFeedBytes = 0;
  /** The feeds of the last fused-mode forward (its step run recomputes the forward from them). */
  private lastFeeds?: Record<string, FeedValue>;
  private readonly bucket: number;
  /** How steps run (see StepMode); set before the first step. */
  mode: StepMode;
  /**
   * The weights, in `student.variables()` order: updated in place by the optimizer; when `resident`,
   * the host copy, current after `syncToHost()` (write it, then call `paramsWritten()`).
   */
  readonly params: Float32Array[];
  /** Weights live in onnxruntime tensors between steps (see OnnxStudentEngineOptions.resident). */
  readonly resident: boolean;
  /** The resident weights (CPU tensors over `params` until the first update, then the optimizer's outputs). */
  private device?: OrtTensor[];
  private fresh = true;

  /** `params` is as new as the weights the sessions use (always, unless resident and updated since `syncToHost`). */
  get hostCurrent(): boolean {
    return this.fresh;
  }

  constructor(
    readonly student: DualEncoderStudent,
    private readonly opts: OnnxStudentEngineOptions = {},
  ) {
    const why = onnxSupport(student);
    if (why) throw new Error(`Student '${student.name}' cannot use the onnx engine: ${why}.`);
    this.bucket = opts.lengthBucket ?? 8;
    this.mode = opts.mode ?? 'split';
    const vars = student.variables();
    if (opts.params && opts.params.length !== vars.length)
      throw new Error(`OnnxStudentEngine: ${opts.params.length} parameter arrays for ${vars.length} variables`);
    this.params = opts.params ?? vars.map((v) => Float32Array.from(v.variable.dataSync() as Float32Array));
    this.resident = opts.resident ?? this.executionProviders[0] === 'webgpu';
  }

  /** What the training graphs take for images (OnnxStudentEngineOptions.imageInput). */
  get imageInput(): ImageInput {
    return this.opts.imageInput ?? 'pixels';
  }

  /**
   * The frozen trunk's outputs [n, F] for images given by index (pixels from `load`, `batch` at a time): what
   * `imageInput` 'features' trains on. Runs an inference graph of the trunk alone (constants, no weights fed).
   */
  async trunkFeatures(
    n: number,
    load: (indices: number[]) => Promise<Float32Array>,
    o: { batch?: number; onBatch?: (done: number) => void } = {},
  ): Promise<Float32Array> {
    const F = frozenDim(this.student);
    const frozen = this.student.imageEncoder.frozen!;
    const B = Math.max(1, Math.min(o.batch ?? 64, n));
    const { crop } = this.student.preprocess;
    const g = new Graph();
    const px = g.input('pixels', [B, 3, crop, crop]);
    const runner = await OnnxRunner.create(g.encode([frozen.trunk(graphOps(), px)], ['features']), {
      threads: this.opts.threads,
      executionProviders: this.opts.executionProviders,
    });
    const out = new Float32Array(n * F);
    try {
      for (let s = 0; s < n; s += B) {
        const k = Math.min(B, n - s);
        const pix = await load(Array.from({ length: k }, (_, i) => s + i));
        const full = k === B ? pix : new Float32Array(B * 3 * crop * crop);
        if (full !== pix) full.set(pix);
        const [f] = await runner.run({ pixels: { data: full, dims: [B, 3, crop, crop] } }, ['features']);
        out.set(f.subarray(0, k * F), s * F);
        o.onBatch?.(k);
      }
    } finally {
      await runner.release();
    }
    return out;
  }

  /** The device graphs are built for (the first execution provider). */
  private get graphDevice(): 'cpu' | 'webgpu' {
    return this.executionProviders[0] === 'webgpu' ? 'webgpu' : 'cpu';
  }

  /** The resident weights as session inputs (made from `params` on first use). */
  async deviceParams(): Promise<OrtTensor[]> {
    if (!this.resident) throw new Error('OnnxStudentEngine.deviceParams: the engine is not resident');
    if (!this.device) {
      const ort = await loadOrt();
      const vars = this.student.variables();
      this.device = this.params.map((p, i) => new ort.Tensor('float32', p, vars[i].variable.shape));
    }
    return this.device;
  }

  /** The optimizer's new weights (tensors in `params` order); the previous ones are freed. */
  setDeviceParams(next: OrtTensor[]): void {
    if (!this.resident) throw new Error('OnnxStudentEngine.setDeviceParams: the engine is not resident');
    if (next.length !== this.params.length)
      throw new Error(`OnnxStudentEngine.setDeviceParams: ${next.length} tensors for ${this.params.length} weights`);
    for (const t of this.device ?? []) if (!next.includes(t)) disposeDeviceTensor(t);
    this.device = next;
    this.fresh = false;
  }

  /** Copies the resident weights into `params` (checkpoints, saving the student); a no-op when they are current. */
  async syncToHost(): Promise<void> {
    if (this.fresh || !this.device) return;
    const host = await readToHost(this.device, [...this.executionProviders]);
    host.forEach((h, i) => this.params[i].set(h));
    this.fresh = true;
  }

  /** `params` was written (a checkpoint loaded): the resident weights are dropped and made from it again. */
  paramsWritten(): void {
    for (const t of this.device ?? []) disposeDeviceTensor(t);
    this.device = undefined;
    this.fresh = true;
  }

  /** The execution providers every session of this engine uses (['cpu'] unless given). */
  get executionProviders(): readonly string[] {
    return this.opts.executionProviders ?? ['cpu'];
  }

  /** ids/mask [B, length] (1/0) as the graphs' int64 ids and float mask, padded (masked) to the length bucket. */
  private padText(
    ids: Int32Array,
    mask: Int32Array,
    batch: number,
    length: number,
  ): { Lp: number; ids64: BigInt64Array; maskF: Float32Array } {
    const Lp = this.paddedLength(length);
    const ids64 = new BigInt64Array(batch * Lp);
    const maskF = new Float32Array(batch * Lp);
    for (let b = 0; b < batch; b++) {
      for (let k = 0; k < length; k++) {
        ids64[b * Lp + k] = BigInt(ids[b * length + k]);
        maskF[b * Lp + k] = mask[b * length + k];
      }
    }
    return { Lp, ids64, maskF };
  }

  /** The padded text length a batch of captions of `length` tokens runs at. */
  paddedLength(length: number): number {
    return Math.min(Math.max(this.student.config.maxLength, length), Math.ceil(length / this.bucket) * this.bucket);
  }

  private graphsFor(batch: number, length: number, withHead: boolean, mode: StepMode = this.mode) {
    const key = `${batch}x${length}${withHead ? '+loss' : ''}:${mode}`;
    let b = this.built.get(key);
    if (!b) {
      b = buildingFor(this.graphDevice, () =>
        buildStudentGraphs(this.student, batch, length, withHead ? this.opts.head : undefined, mode, this.imageInput),
      );
      this.built.set(key, b);
    }
    return b;
  }

  /**
   * The memory a training step of this shape holds besides the weights (builds the graphs, which are
   * kept for the step; compiles nothing). `length` is the caption length before padding.
   */
  plan(batch: number, length: number, withHead = !!this.opts.head, mode: StepMode = this.mode): StepMemoryPlan {
    return this.graphsFor(batch, this.paddedLength(length), withHead, mode).memory;
  }

  /** Forgets graphs built by `plan` and not used (e.g. the other mode's). */
  dropPlans(): void {
    this.built.clear();
  }

  /** Number of compiled batch shapes. */
  get compiledShapes(): number {
    return this.runners.size;
  }

  private runner(batch: number, length: number, withHead: boolean): Promise<StudentRunner> {
    const key = `${batch}x${length}${withHead ? '+loss' : ''}:${this.mode}`;
    let r = this.runners.get(key);
    if (!r) {
      const graphs = this.graphsFor(batch, length, withHead);
      const { dropout, components } = graphs;
      const { threads, executionProviders } = this.opts;
      if ('fused' in graphs && graphs.fused) {
        const fg = graphs.fused;
        // no arenas: the step run's activations (gigabytes at base size) go back to the system after each run
        const stepOpts = {
          threads,
          executionProviders,
          memArena: false,
          ...(this.resident ? { outputLocation: 'gpu-buffer' as const } : {}),
        };
        r = Promise.all([
          OnnxRunner.create(fg.forward, { threads, executionProviders, memArena: false }),
          OnnxRunner.create(fg.step, stepOpts),
        ]).then(([forward, step]) => ({
          dropout,
          components,
          fused: { graphs: fg, forward, step },
        }));
      } else {
        const tg = graphs as unknown as TrainingGraphs;
        r = OnnxTrainingRunner.create(tg, { threads, executionProviders, resident: this.resident }).then((runner) => ({
          runner,
          dropout,
          components,
        }));
      }
      this.runners.set(key, r);
      this.built.delete(key); // the sessions hold the models now
    }
    return r;
  }

  /** The feeds of a step (inputs padded to the length bucket, weights, dropout masks) and its runner. */
  private async prepare(
    pixels: Float32Array,
    ids: Int32Array,
    mask: Int32Array,
    batch: number,
    length: number,
    opts: { step?: number; training?: boolean },
    withHead: boolean,
  ): Promise<{ feeds: Record<string, FeedValue>; r: StudentRunner }> {
    const { Lp, ids64, maskF } = this.padText(ids, mask, batch, length);
    const crop = this.student.preprocess.crop;
    const feeds: Record<string, FeedValue> = {
      ...(this.imageInput === 'features'
        ? { image_features: { data: pixels, dims: [batch, frozenDim(this.student)] } }
        : { pixels: { data: pixels, dims: [batch, 3, crop, crop] } }),
      ids: { data: ids64, dims: [batch, Lp] },
      mask: { data: maskF, dims: [batch, Lp] },
    };
    const weights = this.resident ? await this.deviceParams() : undefined;
    this.student
      .variables()
      .forEach((v, i) => (feeds[`p${i}`] = weights ? weights[i] : { data: this.params[i], dims: v.variable.shape }));
    const r = await this.runner(batch, Lp, withHead);
    const training = opts.training ?? true;
    this.maskKeyBytes = 0;
    if (training && r.dropout.length && (this.opts.deviceDropout ?? this.graphDevice === 'webgpu')) {
      const masks = await this.deviceMasks(r.dropout, opts.step ?? 0);
      r.dropout.forEach((d, i) => (feeds[d.name] = masks[i]));
      return { feeds, r };
    }
    const rng = new Rng(this.opts.seed ?? 0).fork(`dropout/${opts.step ?? 0}`);
    for (const d of r.dropout) {
      const n = d.shape.reduce((a, b) => a * b, 1);
      const m = new Float32Array(n);
      if (training) {
        const keep = 1 / (1 - d.rate);
        const u = rng.fork(d.name).uniformArray(n);
        for (let i = 0; i < n; i++) m[i] = u[i] >= d.rate ? keep : 0;
      } else m.fill(1);
      feeds[d.name] = { data: m, dims: d.shape };
    }
    return { feeds, r };
  }

  /** A step's dropout masks drawn by the mask graph (on the device with 'webgpu'); the previous step's are freed. */
  private async deviceMasks(sites: DropoutSite[], step: number): Promise<OrtTensor[]> {
    const key = sites.map((d) => `${d.name}:${d.shape.join('x')}:${d.rate}`).join(';');
    let m = this.maskRunners.get(key);
    if (!m) {
      m = OnnxRunner.create(buildDropoutMaskGraph(sites), {
        executionProviders: this.opts.executionProviders,
        threads: this.opts.threads,
        outputLocation: 'gpu-buffer',
      });
      this.maskRunners.set(key, m);
    }
    const runner = await m;
    const feeds: Record<string, OrtTensor> = {};
    sites.forEach((_, s) => {
      const k = dropoutKey(this.opts.seed ?? 0, step, s);
      feeds[`key_hi_${s}`] = runner.tensor(Float32Array.of(k.hi), []);
      feeds[`key_lo_${s}`] = runner.tensor(Float32Array.of(k.lo), []);
    });
    this.dropMasks();
    const out = await runner.runTensors(
      feeds,
      sites.map((d) => d.name),
    );
    this.masks = sites.map((d) => out[d.name]);
    this.maskKeyBytes = 8 * sites.length;
    return this.masks;
  }

  private dropMasks(): void {
    for (const t of this.masks ?? []) disposeDeviceTensor(t);
    this.masks = undefined;
  }

  /**
   * Forward pass with the student's current weights: pixels [B, 3, crop, crop], ids/mask [B, L]
   * (1/0). Returns the L2-normalised embeddings [B, embedDim] of both towers. Dropout (where the
   * config has it) uses masks drawn from (seed, `step`); `training: false` turns it off.
   */
  async forward(
    pixels: Float32Array,
    ids: Int32Array,
    mask: Int32Array,
    batch: number,
    length: number,
    opts: { step?: number; training?: boolean } = {},
  ): Promise<{ image: Float32Array; text: Float32Array }> {
    const { feeds, r } = await this.prepare(pixels, ids, mask, batch, length, opts, false);
    this.current = r;
    const [image, text] = await this.runForward(r, feeds);
    return { image, text };
  }

  /**
   * Forward pass through the towers and the loss head: `inputs` feeds the head's own inputs by name
   * (teacher features, queues...). Returns each loss component's value.
   */
  async forwardLoss(
    pixels: Float32Array,
    ids: Int32Array,
    mask: Int32Array,
    batch: number,
    length: number,
    inputs: Record<string, FeedValue>,
    opts: { step?: number; training?: boolean } = {},
  ): Promise<Record<string, number>> {
    if (!this.opts.head) throw new Error('OnnxStudentEngine.forwardLoss: the engine was made without a loss head');
    const { feeds, r } = await this.prepare(pixels, ids, mask, batch, length, opts, true);
    this.current = r;
    const out = await this.runForward(r, { ...inputs, ...feeds });
    return Object.fromEntries(r.components.map((c, i) => [c, out[i][0]]));
  }

  private async runForward(r: StudentRunner, feeds: Record<string, FeedValue>): Promise<Float32Array[]> {
    this.lastHostFeedBytes = hostBytes(feeds) + this.maskKeyBytes;
    if (r.runner) return r.runner.forward(feeds);
    this.lastFeeds = feeds;
    return r.fused.forward.run(feeds, r.fused.graphs.outputNames);
  }

  private async runBackward(r: StudentRunner, seeds: Float32Array[]): Promise<Float32Array[]> {
    if (this.resident)
      throw new Error('OnnxStudentEngine: the engine is resident, its gradients stay on the device (backwardOnDevice)');
    return (await this.runBackwardTensors(r, seeds)).map((t) => t.data as Float32Array);
  }

  /** The gradients as the backward session located them (on the device when resident). */
  private async runBackwardTensors(r: StudentRunner, seeds: Float32Array[]): Promise<OrtTensor[]> {
    if (r.runner) return r.runner.backwardTensors(seeds);
    const feeds = this.lastFeeds;
    if (!feeds) throw new Error('OnnxStudentEngine: backward before forward');
    const fg = r.fused.graphs;
    const all: Record<string, FeedValue> = { ...feeds };
    fg.seedNames.forEach((n, i) => (all[n] = { data: seeds[i], dims: fg.outputShapes[i] }));
    this.lastFeeds = undefined; // the step run is the last use of this step's feeds
    const t: Record<string, OrtTensor> = {};
    for (const [k, v] of Object.entries(all)) t[k] = r.fused.step.feed(v);
    const res = await r.fused.step.runTensors(t, fg.gradNames);
    return fg.gradNames.map((n) => res[n]);
  }

  /**
   * Resident engines: the gradients of sum_c weights[c] L_c (as `backwardLoss`) as tensors in `params`
   * order, left where the backward ran (the device): the caller frees them (DeviceAdamW.apply does).
   */
  async backwardOnDevice(weights: Record<string, number>): Promise<OrtTensor[]> {
    const r = this.current;
    if (!r) throw new Error('OnnxStudentEngine.backwardOnDevice: call forwardLoss first');
    return this.runBackwardTensors(r, this.seeds(r, weights));
  }

  private seeds(r: StudentRunner, weights: Record<string, number>): Float32Array[] {
    if (!r.components.length) throw new Error('OnnxStudentEngine.backwardLoss: call forwardLoss first');
    return r.components.map((c) => {
      const w = weights[c];
      if (w === undefined) throw new Error(`OnnxStudentEngine.backwardLoss: no weight for the loss component '${c}'`);
      return Float32Array.of(w);
    });
  }

  /** Gradients of sum_c weights[c] L_c (the components of the last `forwardLoss`, by name) w.r.t. every student variable. */
  async backwardLoss(weights: Record<string, number>): Promise<Map<string, Float32Array>> {
    const r = this.current;
    if (!r) throw new Error('OnnxStudentEngine.backwardLoss: call forwardLoss first');
    return this.named(await this.runBackward(r, this.seeds(r, weights)));
  }

  private named(grads: Float32Array[]): Map<string, Float32Array> {
    return new Map(this.student.variables().map((v, i) => [v.name, grads[i]]));
  }

  /** Gradients of the loss w.r.t. every student variable (by NamedVariable name), given dLoss/dEmbedding of the last forward. */
  async backward(dImage: Float32Array, dText: Float32Array): Promise<Map<string, Float32Array>> {
    if (!this.current || this.current.components.length)
      throw new Error('OnnxStudentEngine.backward: call forward first');
    return this.named(await this.runBackward(this.current, [dImage, dText]));
  }

  private encoder(tower: 'image' | 'text', batch: number, length: number) {
    const key = `${tower}:${batch}x${length}`;
    let e = this.encoders.get(key);
    if (!e) {
      const { model, inputs } = buildingFor(this.graphDevice, () =>
        buildEncoderGraph(this.student, tower, batch, length),
      );
      e = OnnxRunner.create(model, {
        threads: this.opts.threads,
        executionProviders: this.opts.executionProviders,
      }).then((runner) => ({ runner, inputs }));
      this.encoders.set(key, e);
    }
    return e;
  }

  /** The weight feeds of an encoder: the engine's own (resident ones where they live) or the given arrays. */
  private async paramFeeds(inputs: string[], params: readonly Float32Array[]) {
    const vars = this.student.variables();
    const own = this.resident && params === this.params ? await this.deviceParams() : undefined;
    const feeds: Record<string, FeedValue> = {};
    for (const name of inputs) {
      if (!/^p\d+$/.test(name)) continue;
      const i = Number(name.slice(1));
      feeds[name] = own ? own[i] : { data: params[i], dims: [...vars[i].variable.shape] };
    }
    return feeds;
  }

  /**
   * Inference (no dropout) of the image tower: pixels [B, 3, crop, crop] -> L2-normalised
   * embeddings [B, embedDim]. `params` (default: the engine's own) lets a saved student be evaluated
   * without loading it into tfjs.
   */
  async encodeImages(
    pixels: Float32Array,
    batch: number,
    params: readonly Float32Array[] = this.params,
  ): Promise<Float32Array> {
    const { runner, inputs } = await this.encoder('image', batch, 0);
    const crop = this.student.preprocess.crop;
    const [out] = await runner.run(
      { ...(await this.paramFeeds(inputs, params)), pixels: { data: pixels, dims: [batch, 3, crop, crop] } },
      ['embedding'],
    );
    return out;
  }

  /** Inference of the text tower: ids/mask [B, L] (1/0; padded to the length bucket here) -> embeddings [B, embedDim]. */
  async encodeTexts(
    ids: Int32Array,
    mask: Int32Array,
    batch: number,
    length: number,
    params: readonly Float32Array[] = this.params,
  ): Promise<Float32Array> {
    const { Lp, ids64, maskF } = this.padText(ids, mask, batch, length);
    const { runner, inputs } = await this.encoder('text', batch, Lp);
    const feeds = {
      ...(await this.paramFeeds(inputs, params)),
      ids: { data: ids64, dims: [batch, Lp] },
      mask: { data: maskF, dims: [batch, Lp] },
    };
    const [out] = await runner.run(feeds, ['embedding']);
    return out;
  }

  async release(): Promise<void> {
    const all = await Promise.all(this.runners.values());
    const enc = await Promise.all(this.encoders.values());
    this.runners.clear();
    this.encoders.clear();
    this.built.clear();
    this.current = undefined;
    for (const t of this.device ?? []) disposeDeviceTensor(t);
    this.device = undefined;
    this.dropMasks();
    const maskRunners = await Promise.all(this.maskRunners.values());
    this.maskRunners.clear();
    await Promise.all([
      ...maskRunners.map((m) => m.release()),
      ...all.flatMap((r) => (r.runner ? [r.runner.release()] : [r.fused.forward.release(), r.fused.step.release()])),
      ...enc.map((e) => e.runner.release()),
    ]);
  }
}
