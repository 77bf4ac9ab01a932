import { DistillError, tf, type NamedVariable, type ParamGroup } from '@distill/core';

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
    return (this.opts.groupLr?.[group] ?? this.opts.lr) * this.lrScale;
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
