import { DistillError, tf, tfOps, type NamedVariable, type Ops, type ParamGroup } from '@distill/core';

/** AdamW's settings: the one options type of the three holders (tfjs `AdamW`, host `ArrayAdamW`, device `DeviceAdamW`). */
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
export function groupLearningRate(
  opts: Pick<AdamWOptions, 'lr' | 'groupLr'>,
  group: ParamGroup,
  lrScale: number,
): number {
  return (opts.groupLr?.[group] ?? opts.lr) * lrScale;
}

/** The step-dependent scalars of update `t` (1-based) at learning rate `lr`: decay = 1 - lr wd, step = lr / (1 - b1^t), bc2 = 1 - b2^t. */
export interface AdamWScalars<S = number> {
  decay: S;
  step: S;
  bc2: S;
}

/** The scalars of update `t` at learning rate `lr` (computed once here for every holder). */
export function adamwScalars(o: Pick<AdamWOptions, 'betas' | 'weightDecay'>, lr: number, t: number): AdamWScalars {
  return { decay: 1 - lr * o.weightDecay, step: lr / (1 - o.betas[0] ** t), bc2: 1 - o.betas[1] ** t };
}

/**
 * AdamW's update, written once over `Ops<T>` (torch.optim.AdamW: decoupled weight decay, bias
 * correction); the tfjs holder runs it on `tfOps`, the device holder records it as an ONNX graph:
 *   m' = b1 m + (1-b1) g;  v' = b2 v + (1-b2) g^2;  p' = p decay - step m' / (sqrt(v' / bc2) + eps)
 */
export function adamwUpdate<T>(
  o: Ops<T>,
  x: { p: T; g: T; m: T; v: T },
  s: AdamWScalars<T>,
  c: Pick<AdamWOptions, 'betas' | 'eps'>,
): { p: T; m: T; v: T } {
  const [b1, b2] = c.betas;
  const m = o.add(o.scale(x.m, b1), o.scale(x.g, 1 - b1));
  const v = o.add(o.scale(x.v, b2), o.scale(o.mul(x.g, x.g), 1 - b2));
  const p = o.sub(o.mul(x.p, s.decay), o.div(o.mul(s.step, m), o.add(o.sqrt(o.div(v, s.bc2)), o.scalar(x.p, c.eps))));
  return { p, m, v };
}

/**
 * The same update as the host kernel of `ArrayAdamW`: in place over Float32Arrays, each element in
 * float64 and rounded once (a loop: no tensor engine holds the host's arrays).
 */
export function adamwKernel(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  s: AdamWScalars,
  c: Pick<AdamWOptions, 'betas' | 'eps'>,
): void {
  const [b1, b2] = c.betas;
  const c1 = 1 - b1;
  const c2 = 1 - b2;
  const { decay, step, bc2 } = s;
  const eps = c.eps;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i];
    const mi = b1 * m[i] + c1 * gi;
    const vi = b2 * v[i] + c2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - (step * mi) / (Math.sqrt(vi / bc2) + eps);
  }
}

/**
 * What the three AdamW holders share: the step count, the schedule's `lrScale`, the groups' learning
 * rates and the scalars of the next update, and the checkpoint state's shape and checks (the same
 * errors for a checkpoint that does not match the student).
 */
export abstract class AdamWBase {
  protected stepCount = 0;
  lrScale = 1;

  /**
   * @param names the parameters' names (checkpoint keys), in the holder's order
   * @param sizes their element counts (what a loaded state's moments must match)
   */
  constructor(
    readonly opts: AdamWOptions,
    private readonly names: readonly string[],
    protected readonly sizes: readonly number[],
  ) {}

  get step(): number {
    return this.stepCount;
  }

  groupLr(group: ParamGroup): number {
    return groupLearningRate(this.opts, group, this.lrScale);
  }

  /** The scalars of update `t` for a group. */
  protected scalarsFor(group: ParamGroup, t: number): AdamWScalars {
    return adamwScalars(this.opts, this.groupLr(group), t);
  }

  /** A checkpoint state of these moments (by parameter name, in the holder's order). */
  protected stateOf(m: readonly Float32Array[], v: readonly Float32Array[]): AdamWState {
    const out: AdamWState = { step: this.stepCount, lrScale: this.lrScale, m: {}, v: {} };
    this.names.forEach((n, i) => {
      out.m[n] = m[i];
      out.v[n] = v[i];
    });
    return out;
  }

  /**
   * The moments of a checkpoint state in the holder's order, checked against the parameters' names
   * and sizes (a DistillError names what does not match); then the step count and `lrScale` are
   * restored by `restore` once the holder has taken them.
   */
  protected checkedMoments(s: AdamWState): { m: Float32Array[]; v: Float32Array[] } {
    const take = (which: 'm' | 'v') =>
      this.names.map((name, i) => {
        const data = s[which][name];
        if (!data)
          throw new DistillError(
            `Optimizer state has no '${which}' for parameter ${name}: the checkpoint does not match this student.`,
          );
        if (data.length !== this.sizes[i])
          throw new DistillError(
            `Optimizer state '${which}' of ${name} has ${data.length} values, the parameter ${this.sizes[i]}.`,
          );
        return data;
      });
    return { m: take('m'), v: take('v') };
  }

  protected restore(s: AdamWState): void {
    this.stepCount = s.step;
    this.lrScale = s.lrScale;
  }
}

/**
 * AdamW with decoupled weight decay, as torch.optim.AdamW:
 *   p <- p - lr*wd*p;  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
 *   p <- p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * Learning rates are per parameter group and scaled by `lrScale` (step decay / warm-up).
 */
export class AdamW extends AdamWBase {
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];

  constructor(
    private readonly params: NamedVariable[],
    opts: AdamWOptions,
  ) {
    super(
      opts,
      params.map((p) => p.name),
      params.map((p) => p.variable.size),
    );
    this.m = params.map((p) => tf.variable(tf.zerosLike(p.variable), false));
    this.v = params.map((p) => tf.variable(tf.zerosLike(p.variable), false));
  }

  /** Apply one update from gradients keyed by variable name (variables without a gradient are left alone). */
  apply(grads: Record<string, tf.Tensor>): void {
    const t = ++this.stepCount;
    const o = tfOps();
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        const g = grads[p.variable.name] ?? grads[p.name];
        if (!g) return;
        const s = this.scalarsFor(p.group, t);
        const next = adamwUpdate(
          o,
          { p: p.variable, g, m: this.m[i], v: this.v[i] },
          { decay: tf.scalar(s.decay), step: tf.scalar(s.step), bc2: tf.scalar(s.bc2) },
          this.opts,
        );
        this.m[i].assign(next.m);
        this.v[i].assign(next.v);
        p.variable.assign(next.p);
      });
    });
  }

  state(): AdamWState {
    const read = (xs: tf.Variable[]) => xs.map((x) => x.dataSync() as Float32Array);
    return this.stateOf(read(this.m), read(this.v));
  }

  load(s: AdamWState): void {
    const { m, v } = this.checkedMoments(s);
    this.params.forEach((p, i) => {
      this.m[i].assign(tf.tensor(m[i], p.variable.shape));
      this.v[i].assign(tf.tensor(v[i], p.variable.shape));
    });
    this.restore(s);
  }

  dispose(): void {
    for (const x of [...this.m, ...this.v]) x.dispose();
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
 * Float32Arrays, updated in place by `adamwKernel`: nothing lives in the tfjs-wasm heap, so a
 * 200M-parameter student's weights, gradients and two moments (4 x 0.8 GB) fit in host memory.
 */
export class ArrayAdamW extends AdamWBase {
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];

  constructor(
    readonly params: ArrayParam[],
    opts: AdamWOptions,
  ) {
    super(
      opts,
      params.map((p) => p.name),
      params.map((p) => p.data.length),
    );
    this.m = params.map((p) => new Float32Array(p.data.length));
    this.v = params.map((p) => new Float32Array(p.data.length));
  }

  /** One update; `grads[i]` is the gradient of `params[i]` (undefined: that parameter is left alone). */
  apply(grads: readonly (Float32Array | undefined)[]): void {
    if (grads.length !== this.params.length)
      throw new Error(`ArrayAdamW.apply: ${grads.length} gradients for ${this.params.length} parameters`);
    const t = ++this.stepCount;
    this.params.forEach((p, i) => {
      const g = grads[i];
      if (!g) return;
      if (g.length !== p.data.length)
        throw new Error(
          `ArrayAdamW.apply: gradient of ${p.name} has ${g.length} values, the parameter ${p.data.length}`,
        );
      adamwKernel(p.data, g, this.m[i], this.v[i], this.scalarsFor(p.group, t), this.opts);
    });
  }

  /** The moments by parameter name (views of the live arrays: copy before mutating). */
  state(): AdamWState {
    return this.stateOf(this.m, this.v);
  }

  load(s: AdamWState): void {
    const { m, v } = this.checkedMoments(s);
    this.params.forEach((_, i) => {
      this.m[i].set(m[i]);
      this.v[i].set(v[i]);
    });
    this.restore(s);
  }
}
