import { adamwInPlace, DistillError, tf, type NamedVariable, type ParamGroup } from '@distill/core';

export interface AdamWOptions {
  lr: number;
  weightDecay: number;
  betas: [number, number];
  eps: number;
  /** Per-group learning rates (the paper keeps the two encoders and the heads apart). */
  groupLr?: Partial<Record<ParamGroup, number>>;
}

export interface AdamWState {
  step: number;
  lrScale: number;
  m: Record<string, Float32Array>;
  v: Record<string, Float32Array>;
}

/** A group's learning rate: its own (lrImage / lrText / lrHead) or the base lr, times the schedule's multiplier. */
export function groupLearningRate(opts: Pick<AdamWOptions, 'lr' | 'groupLr'>, group: ParamGroup, lrScale: number): number {
  return (opts.groupLr?.[group] ?? opts.lr) * lrScale;
}

/**
 * AdamW with decoupled weight decay, as torch.optim.AdamW:
 *   p <- p - lr*wd*p;  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
 *   p <- p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * Learning rates are per parameter group and scaled by `lrScale` (step decay / warm-up).
 */
export class AdamW {
  private stepCount = 0;
  lrScale = 1;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(
    private readonly params: NamedVariable[],
    readonly opts: AdamWOptions,
  ) {
    for (const p of params) {
      this.m.set(p.name, tf.variable(tf.zerosLike(p.variable), false));
      this.v.set(p.name, tf.variable(tf.zerosLike(p.variable), false));
    }
  }

  get step(): number {
    return this.stepCount;
  }

  groupLr(group: ParamGroup): number {
    return groupLearningRate(this.opts, group, this.lrScale);
  }

  /** Apply one update from gradients keyed by variable name (variables without a gradient are left alone). */
  apply(grads: Record<string, tf.Tensor>): void {
    this.stepCount++;
    const t = this.stepCount;
    const [b1, b2] = this.opts.betas;
    const bc1 = 1 - b1 ** t;
    const bc2 = 1 - b2 ** t;
    tf.tidy(() => {
      for (const p of this.params) {
        const g = grads[p.variable.name] ?? grads[p.name];
        if (!g) continue;
        const lr = this.groupLr(p.group);
        const m = this.m.get(p.name)!;
        const v = this.v.get(p.name)!;
        const mNew = m.mul(b1).add(g.mul(1 - b1));
        const vNew = v.mul(b2).add(g.square().mul(1 - b2));
        m.assign(mNew);
        v.assign(vNew);
        const update = mNew.div(bc1).div(vNew.div(bc2).sqrt().add(this.opts.eps)).mul(lr);
        const decayed = this.opts.weightDecay > 0 ? p.variable.mul(1 - lr * this.opts.weightDecay) : p.variable;
        p.variable.assign(decayed.sub(update));
      }
    });
  }

  state(): AdamWState {
    const m: Record<string, Float32Array> = {};
    const v: Record<string, Float32Array> = {};
    for (const p of this.params) {
      m[p.name] = this.m.get(p.name)!.dataSync() as Float32Array;
      v[p.name] = this.v.get(p.name)!.dataSync() as Float32Array;
    }
    return { step: this.stepCount, lrScale: this.lrScale, m, v };
  }

  load(s: AdamWState): void {
    for (const p of this.params) {
      for (const [which, store] of [['m', this.m], ['v', this.v]] as const) {
        const data = s[which][p.name];
        if (!data) throw new DistillError(`Optimizer state has no '${which}' for parameter ${p.name}: the checkpoint does not match this student.`);
        const variable = store.get(p.name)!;
        if (data.length !== variable.size) throw new DistillError(`Optimizer state '${which}' of ${p.name} has ${data.length} values, the parameter ${variable.size}.`);
        variable.assign(tf.tensor(data, variable.shape));
      }
    }
    this.stepCount = s.step;
    this.lrScale = s.lrScale;
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
  }
}

/** A parameter held as a plain Float32Array (the onnx engine's weights live outside tfjs). */
export interface ArrayParam {
  name: string;
  group: ParamGroup;
  shape: readonly number[];
  data: Float32Array;
}

/**
 * The same AdamW (same formulas, per-group learning rates, `lrScale`, checkpoint state) over plain
 * Float32Arrays, updated in place by `adamwInPlace`: nothing lives in the tfjs-wasm heap, so a
 * 200M-parameter student's weights, gradients and two moments (4 x 0.8 GB) fit in host memory.
 */
export class ArrayAdamW {
  private stepCount = 0;
  lrScale = 1;
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];

  constructor(
    readonly params: ArrayParam[],
    readonly opts: AdamWOptions,
  ) {
    this.m = params.map((p) => new Float32Array(p.data.length));
    this.v = params.map((p) => new Float32Array(p.data.length));
  }

  get step(): number {
    return this.stepCount;
  }

  groupLr(group: ParamGroup): number {
    return groupLearningRate(this.opts, group, this.lrScale);
  }

  /** One update; `grads[i]` is the gradient of `params[i]` (undefined: that parameter is left alone). */
  apply(grads: readonly (Float32Array | undefined)[]): void {
    if (grads.length !== this.params.length) throw new Error(`ArrayAdamW.apply: ${grads.length} gradients for ${this.params.length} parameters`);
    this.stepCount++;
    const [beta1, beta2] = this.opts.betas;
    this.params.forEach((p, i) => {
      const g = grads[i];
      if (!g) return;
      if (g.length !== p.data.length) throw new Error(`ArrayAdamW.apply: gradient of ${p.name} has ${g.length} values, the parameter ${p.data.length}`);
      adamwInPlace(p.data, g, this.m[i], this.v[i], this.stepCount, { lr: this.groupLr(p.group), beta1, beta2, eps: this.opts.eps, weightDecay: this.opts.weightDecay });
    });
  }

  /** The moments by parameter name (views of the live arrays: copy before mutating). */
  state(): AdamWState {
    const m: Record<string, Float32Array> = {};
    const v: Record<string, Float32Array> = {};
    this.params.forEach((p, i) => {
      m[p.name] = this.m[i];
      v[p.name] = this.v[i];
    });
    return { step: this.stepCount, lrScale: this.lrScale, m, v };
  }

  load(s: AdamWState): void {
    this.params.forEach((p, i) => {
      for (const [which, store] of [['m', this.m], ['v', this.v]] as const) {
        const data = s[which][p.name];
        if (!data) throw new DistillError(`Optimizer state has no '${which}' for parameter ${p.name}: the checkpoint does not match this student.`);
        if (data.length !== p.data.length) throw new DistillError(`Optimizer state '${which}' of ${p.name} has ${data.length} values, the parameter ${p.data.length}.`);
        store[i].set(data);
      }
    });
    this.stepCount = s.step;
    this.lrScale = s.lrScale;
  }
}
