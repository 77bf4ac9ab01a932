/**
 * The reference transformer (reference-model.ts) as one ONNX forward + backward graph, trained by
 * the onnx engine: onnxruntime-node runs loss and gradients, AdamW runs in JS. Same math, same
 * parameter order, so results can be compared with the tfjs step.
 */
import { Graph, type Sym, onnxOps as op } from '@distill/autodiff';
import { OnnxRunner, type OnnxSessionOptions } from '@distill/core';
import { adamwKernel, adamwScalars } from '@distill/training';
import { ADAMW_DEFAULTS, type AdamWConfig, type ReferenceConfig } from './reference-model.js';

/** Parameter shapes in the order of ReferenceModel.params. */
export function referenceParamShapes(c: ReferenceConfig): number[][] {
  const d = c.dim;
  const layer = [[d], [d], [d, 3 * d], [3 * d], [d, d], [d], [d], [d], [d, c.mlp], [c.mlp], [c.mlp, d], [d]];
  return [...Array.from({ length: c.layers }, () => layer).flat(), [d], [d]];
}

/** Builds loss and gradients of the reference model; outputs: 'loss', then 'grad_<i>' per parameter. */
export function buildReferenceGraph(c: ReferenceConfig): { model: Uint8Array; outputs: string[] } {
  const g = new Graph();
  const { params, loss } = referenceLoss(g, c);
  const grads = g.gradients([loss], [g.scalar(1)], params);
  const outputs = ['loss', ...params.map((_, j) => `grad_${j}`)];
  return { model: g.encode([loss, ...grads], outputs), outputs };
}

/** The reference model's loss in `g`: inputs `p<i>` (parameters), `x` [batch, seq, dim], `target` [batch, dim]. */
export function referenceLoss(g: Graph, c: ReferenceConfig): { params: Sym[]; loss: Sym } {
  const { batch: B, seq: L, dim: D, heads: H } = c;
  const dh = D / H;
  const params = referenceParamShapes(c).map((s, i) => g.input(`p${i}`, s, { requiresGrad: true }));
  const x = g.input('x', [B, L, D]);
  const target = g.input('target', [B, D]);
  let h = op.reshape(x, [B * L, D]);
  let i = 0;
  const next = () => params[i++];
  for (let l = 0; l < c.layers; l++) {
    const [ln1g, ln1b, wqkv, bqkv, wo, bo, ln2g, ln2b, w1, b1, w2, b2] = Array.from({ length: 12 }, next);
    const a = op.layerNorm(h, ln1g, ln1b);
    const qkv = op.gemm(a, wqkv, bqkv); // [B*L, 3D]
    const heads = op.transpose(op.reshape(qkv, [B, L, 3, H, dh]), [2, 0, 3, 1, 4]); // [3, B, H, L, dh]
    const [q, k, v] = op.split(heads, 0, [1, 1, 1]).map((s) => op.reshape(s, [B, H, L, dh]));
    const scores = op.scale(op.matmul(q, op.transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(dh));
    const ctx = op.matmul(op.softmax(scores), v); // [B, H, L, dh]
    const merged = op.reshape(op.transpose(ctx, [0, 2, 1, 3]), [B * L, D]);
    h = op.add(h, op.gemm(merged, wo, bo));
    const cn = op.layerNorm(h, ln2g, ln2b);
    const f = op.geluTanh(op.gemm(cn, w1, b1));
    h = op.add(h, op.gemm(f, w2, b2));
  }
  const out = op.layerNorm(h, next(), next());
  const pooled = op.reduceMean(op.reshape(out, [B, L, D]), [1]);
  const diff = op.sub(pooled, target);
  const loss = op.reduceMean(op.mul(diff, diff), [0, 1]);
  return { params, loss };
}

/** The reference model trained by the onnx engine. */
export class OnnxReferenceTrainer {
  step = 0;
  readonly m: Float32Array[];
  readonly v: Float32Array[];

  private constructor(
    readonly config: ReferenceConfig,
    private readonly runner: OnnxRunner,
    private readonly outputs: string[],
    readonly params: Float32Array[],
    private readonly x: Float32Array,
    private readonly target: Float32Array,
  ) {
    this.m = params.map((p) => new Float32Array(p.length));
    this.v = params.map((p) => new Float32Array(p.length));
  }

  /** Compiles the graph; parameters and data are copied from the given arrays (e.g. a tfjs ReferenceModel's). */
  static async create(
    config: ReferenceConfig,
    init: { params: Float32Array[]; x: Float32Array; target: Float32Array },
    opts: OnnxSessionOptions = {},
  ): Promise<OnnxReferenceTrainer> {
    const { model, outputs } = buildReferenceGraph(config);
    const runner = await OnnxRunner.create(model, opts);
    return new OnnxReferenceTrainer(
      config,
      runner,
      outputs,
      init.params.map((p) => Float32Array.from(p)),
      init.x,
      init.target,
    );
  }

  /** Loss and gradients at the current parameters (no update). */
  async grads(): Promise<{ loss: number; grads: Float32Array[] }> {
    const c = this.config;
    const shapes = referenceParamShapes(c);
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = {
      x: { data: this.x, dims: [c.batch, c.seq, c.dim] },
      target: { data: this.target, dims: [c.batch, c.dim] },
    };
    this.params.forEach((p, i) => (feeds[`p${i}`] = { data: p, dims: shapes[i] }));
    const [loss, ...grads] = await this.runner.run(feeds, this.outputs);
    return { loss: loss[0], grads };
  }

  /** One training step (forward + backward in onnxruntime, AdamW in JS); returns the loss before the update. */
  async trainStep(opt: AdamWConfig = ADAMW_DEFAULTS): Promise<number> {
    const { loss, grads } = await this.grads();
    this.step += 1;
    const c = { betas: [opt.beta1, opt.beta2] as [number, number], eps: opt.eps, weightDecay: opt.weightDecay };
    const s = adamwScalars(c, opt.lr, this.step);
    this.params.forEach((p, i) => adamwKernel(p, grads[i], this.m[i], this.v[i], s, c));
    return loss;
  }

  release(): Promise<void> {
    return this.runner.release();
  }
}
