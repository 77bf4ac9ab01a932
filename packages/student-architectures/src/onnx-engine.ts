/**
 * Trains a student's towers on the onnx engine: the image and text towers, projections and L2
 * normalisation run forward and backward as onnxruntime-node graphs (all cores). The loss either
 * stays in tfjs (`forward` hands out the embeddings, `backward` takes dLoss/dEmbedding) or is part
 * of the graph (a `LossHead`: `forwardLoss` returns its components, `backwardLoss` takes their
 * weights). Weights stay in the student's tf variables, so checkpoints, AdamW and evaluation are
 * unchanged.
 */
import { Graph, OnnxTrainingRunner, Rng, type Sym, onnxOps as op } from '@distill/core';
import { bertGraph, resnetGraph, textCnnGraph, vitGraph, type DropFn, type SymParams } from './onnx-graph.js';
import type { BertConfig } from './bert.js';
import type { ResNetConfig } from './resnet.js';
import type { TextCnnConfig } from './textcnn.js';
import type { DualEncoderStudent } from './student.js';
import type { VitConfig } from './vit.js';

/** Why a student cannot train on the onnx engine (undefined when it can: every registered pair can). */
export function onnxSupport(student: DualEncoderStudent): string | undefined {
  const { image, text } = student.config;
  if (!['vit', 'deit', 'resnet'].includes(image.type)) return `the '${image.type}' image tower is not written for the onnx engine`;
  if (!['bert', 'albert', 'textcnn'].includes(text.type)) return `the '${text.type}' text tower is not written for the onnx engine`;
  return undefined;
}

/** A dropout site of a student graph: its mask is a graph input (0 or 1/(1-rate), fed each step). */
export interface DropoutSite {
  name: string;
  shape: number[];
  rate: number;
}

/**
 * A loss written on the graph: given the batch's L2-normalised embeddings [B, D], it declares its
 * own inputs (teacher features, queues, targets: fed by name to `forwardLoss`) and returns named
 * scalar components. The trained loss is sum_c w_c L_c, the weights given to `backwardLoss`.
 */
export type LossHead = (g: Graph, embeddings: { image: Sym; text: Sym }) => Record<string, Sym>;

/**
 * The training graphs of a student for one batch shape: outputs [L2-normalised image, text
 * embeddings], or with a `head` its loss components (`components` names them); `dropout` lists the
 * mask inputs (dropout = x * mask, as tf.dropout's scaling).
 */
export function buildStudentGraphs(student: DualEncoderStudent, batch: number, textLength: number, head?: LossHead) {
  const g = new Graph();
  const dropout: DropoutSite[] = [];
  const drop: DropFn = (x, rate) => {
    if (!(rate > 0)) return x;
    const m = g.input(`dropout_${dropout.length}`, [...x.shape]);
    dropout.push({ name: m.name, shape: [...x.shape], rate });
    return op.mul(x, m); // dropout(x) = x * mask, mask_i = [u_i >= rate] / (1 - rate)
  };
  const vars = student.variables();
  const inputs = vars.map((v, i) => g.input(`p${i}`, [...v.variable.shape], { requiresGrad: true }));
  const tower = (prefix: string): SymParams =>
    Object.fromEntries(vars.flatMap((v, i) => (v.name.startsWith(prefix) ? [[v.name.slice(prefix.length), inputs[i]]] : [])));
  const top = tower('');
  const { crop } = student.preprocess;
  const pixels = g.input('pixels', [batch, 3, crop, crop]);
  const ids = g.input('ids', [batch, textLength], { dtype: 'int64' });
  const mask = g.input('mask', [batch, textLength]);
  const proj = (f: Sym, name: string) => op.l2Normalize(op.linear(f, top[`${name}.weight`], top[`${name}.bias`])); // s = fc(f) / ||fc(f)||
  const { image: ic, text: tc } = student.config;
  const imageF =
    ic.type === 'resnet' ? resnetGraph(tower('image.'), ic.config as ResNetConfig, pixels) : vitGraph(tower('image.'), ic.config as VitConfig, pixels, drop);
  const textF =
    tc.type === 'textcnn' ? textCnnGraph(tower('text.'), tc.config as TextCnnConfig, ids, mask, drop) : bertGraph(tower('text.'), tc.config as BertConfig, ids, mask, drop);
  const image = proj(imageF, 'image_proj');
  const text = proj(textF, 'text_proj');
  if (!head) return { ...g.compileTraining([image, text], inputs), dropout, components: [] as string[] };
  const comps = head(g, { image, text });
  const components = Object.keys(comps);
  for (const c of components) {
    if (comps[c].shape.length !== 0) throw new Error(`Loss head component '${c}' must be a scalar, got shape [${comps[c].shape.join(',')}].`);
  }
  return { ...g.compileTraining(components.map((c) => comps[c]), inputs), dropout, components };
}

type Feed = { data: Float32Array | BigInt64Array; dims: number[] };

export interface OnnxStudentEngineOptions {
  threads?: number;
  /** Text batches are padded to a multiple of this (fewer graph shapes to compile; padding is masked). */
  lengthBucket?: number;
  /** Seed of the dropout masks (a step's masks depend only on the seed and the step). */
  seed?: number;
  /** The loss as part of the graph (enables `forwardLoss` / `backwardLoss`). */
  head?: LossHead;
}

type StudentRunner = { runner: OnnxTrainingRunner; dropout: DropoutSite[]; components: string[] };

/** Compiles graphs per (batch, padded text length) on first use and keeps them. */
export class OnnxStudentEngine {
  private readonly runners = new Map<string, Promise<StudentRunner>>();
  private current?: StudentRunner;
  private readonly bucket: number;

  constructor(
    readonly student: DualEncoderStudent,
    private readonly opts: OnnxStudentEngineOptions = {},
  ) {
    const why = onnxSupport(student);
    if (why) throw new Error(`Student '${student.name}' cannot use the onnx engine: ${why}.`);
    this.bucket = opts.lengthBucket ?? 8;
  }

  /** Number of compiled batch shapes. */
  get compiledShapes(): number {
    return this.runners.size;
  }

  private runner(batch: number, length: number, withHead: boolean): Promise<StudentRunner> {
    const key = `${batch}x${length}${withHead ? '+loss' : ''}`;
    let r = this.runners.get(key);
    if (!r) {
      const graphs = buildStudentGraphs(this.student, batch, length, withHead ? this.opts.head : undefined);
      r = OnnxTrainingRunner.create(graphs, { threads: this.opts.threads }).then((runner) => ({ runner, dropout: graphs.dropout, components: graphs.components }));
      this.runners.set(key, r);
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
  ): Promise<{ feeds: Record<string, Feed>; r: StudentRunner }> {
    const maxLen = this.student.config.maxLength;
    const Lp = Math.min(Math.max(maxLen, length), Math.ceil(length / this.bucket) * this.bucket);
    const ids64 = new BigInt64Array(batch * Lp);
    const maskF = new Float32Array(batch * Lp);
    for (let b = 0; b < batch; b++) {
      for (let k = 0; k < length; k++) {
        ids64[b * Lp + k] = BigInt(ids[b * length + k]);
        maskF[b * Lp + k] = mask[b * length + k];
      }
    }
    const crop = this.student.preprocess.crop;
    const feeds: Record<string, Feed> = {
      pixels: { data: pixels, dims: [batch, 3, crop, crop] },
      ids: { data: ids64, dims: [batch, Lp] },
      mask: { data: maskF, dims: [batch, Lp] },
    };
    this.student.variables().forEach((v, i) => (feeds[`p${i}`] = { data: v.variable.dataSync() as Float32Array, dims: v.variable.shape }));
    const r = await this.runner(batch, Lp, withHead);
    const training = opts.training ?? true;
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
    const [image, text] = await r.runner.forward(feeds);
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
    inputs: Record<string, Feed>,
    opts: { step?: number; training?: boolean } = {},
  ): Promise<Record<string, number>> {
    if (!this.opts.head) throw new Error('OnnxStudentEngine.forwardLoss: the engine was made without a loss head');
    const { feeds, r } = await this.prepare(pixels, ids, mask, batch, length, opts, true);
    this.current = r;
    const out = await r.runner.forward({ ...inputs, ...feeds });
    return Object.fromEntries(r.components.map((c, i) => [c, out[i][0]]));
  }

  /** Gradients of sum_c weights[c] L_c (the components of the last `forwardLoss`, by name) w.r.t. every student variable. */
  async backwardLoss(weights: Record<string, number>): Promise<Map<string, Float32Array>> {
    const r = this.current;
    if (!r || !r.components.length) throw new Error('OnnxStudentEngine.backwardLoss: call forwardLoss first');
    const seeds = r.components.map((c) => {
      const w = weights[c];
      if (w === undefined) throw new Error(`OnnxStudentEngine.backwardLoss: no weight for the loss component '${c}'`);
      return Float32Array.of(w);
    });
    return this.named(await r.runner.backward(seeds));
  }

  private named(grads: Float32Array[]): Map<string, Float32Array> {
    return new Map(this.student.variables().map((v, i) => [v.name, grads[i]]));
  }

  /** Gradients of the loss w.r.t. every student variable (by NamedVariable name), given dLoss/dEmbedding of the last forward. */
  async backward(dImage: Float32Array, dText: Float32Array): Promise<Map<string, Float32Array>> {
    if (!this.current || this.current.components.length) throw new Error('OnnxStudentEngine.backward: call forward first');
    return this.named(await this.current.runner.backward([dImage, dText]));
  }

  async release(): Promise<void> {
    const all = await Promise.all(this.runners.values());
    this.runners.clear();
    this.current = undefined;
    await Promise.all(all.map((r) => r.runner.release()));
  }
}
