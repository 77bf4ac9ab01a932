/**
 * AdamW as an ONNX graph, for the WebGPU step: parameters and both moments stay on the device
 * between steps (`gpu-buffer` outputs fed back as inputs), so per step only the loss values cross
 * to JS. The same update as `ArrayAdamW` (torch.optim.AdamW, decoupled weight decay, bias
 * correction, per-group learning rates times `lrScale`), computed in float32 on the device:
 *   m' = b1 m + (1-b1) g;  v' = b2 v + (1-b2) g^2;
 *   p' = p (1 - lr wd) - (lr / (1-b1^t)) m' / (sqrt(v' / (1-b2^t)) + eps)
 * (`adamwInPlace` evaluates the same expression in float64 and rounds once: the two agree to float32
 * rounding, ~1e-7 relative per step.) The step-dependent scalars are inputs: one compiled session
 * serves every step.
 */
import { DistillError, disposeDeviceTensor, OnnxRunner, readToHost, type OrtTensor, type ParamGroup } from '@distill/core';
import { Graph, onnxOps as op } from '@distill/autodiff';
import { groupLearningRate, type AdamWOptions, type AdamWState, type ArrayParam } from './adamw.js';

const GROUPS: readonly ParamGroup[] = ['image', 'text', 'head'];

/** The update graph of parameters with these shapes and groups: inputs p<i>, g<i>, m<i>, v<i>, decay_<group>, step_<group>, bc2; outputs p<i>_out, m<i>_out, v<i>_out. */
export function buildAdamWGraph(params: readonly { shape: readonly number[]; group: ParamGroup }[], o: Pick<AdamWOptions, 'betas' | 'eps'>): { model: Uint8Array; inputs: string[]; outputs: string[] } {
  const g = new Graph();
  const [b1, b2] = o.betas;
  const used = GROUPS.filter((k) => params.some((p) => p.group === k));
  const decay = Object.fromEntries(used.map((k) => [k, g.input(`decay_${k}`, [])])); // 1 - lr wd
  const step = Object.fromEntries(used.map((k) => [k, g.input(`step_${k}`, [])])); // lr / (1 - b1^t)
  const bc2 = g.input('bc2', []); // 1 - b2^t
  const eps = g.scalar(o.eps);
  const outs = [];
  const names: string[] = [];
  for (let i = 0; i < params.length; i++) {
    const shape = [...params[i].shape];
    const [p, gr, m, v] = ['p', 'g', 'm', 'v'].map((k) => g.input(`${k}${i}`, shape));
    const m2 = op.add(op.scale(m, b1), op.scale(gr, 1 - b1));
    const v2 = op.add(op.scale(v, b2), op.scale(op.mul(gr, gr), 1 - b2));
    const k = params[i].group;
    const p2 = op.sub(op.mul(p, decay[k]), op.div(op.mul(step[k], m2), op.add(op.sqrt(op.div(v2, bc2)), eps)));
    outs.push(p2, m2, v2);
    names.push(`p${i}_out`, `m${i}_out`, `v${i}_out`);
  }
  return { model: g.encode(outs, names), inputs: g.inputs.map((s) => s.name), outputs: names };
}

/**
 * AdamW whose moments live in onnxruntime tensors (on the WebGPU device with ['webgpu']; plain CPU
 * tensors with ['cpu'], which runs the same graph, for tests). `apply` takes the parameters and
 * gradients as tensors and returns the new parameters (the old ones and the gradients are freed).
 * The host copy of the moments (`state()`, checkpoints) is brought up to date by `flush()` only;
 * `state()` refuses while the device holds newer moments than the host.
 */
export class DeviceAdamW {
  private stepCount = 0;
  lrScale = 1;
  private m?: OrtTensor[];
  private v?: OrtTensor[];
  /**
   * The host copy of the moments (zeros when undefined): kept from a flush or load until the next
   * update, which makes it stale and drops it (2 x 0.8 GB at base size, held only around checkpoints).
   */
  private hostM?: Float32Array[];
  private hostV?: Float32Array[];
  /** The host moments are as new as the device ones (no apply since the last flush or load). */
  private hostCurrent = true;
  private readonly sizes: number[];
  private runner?: Promise<OnnxRunner>;
  /** Bytes the last update sent up: its step-dependent scalars, and moments made on the host (the first update, or after a load). */
  lastUploadBytes = 0;

  constructor(
    readonly params: readonly Omit<ArrayParam, 'data'>[],
    readonly opts: AdamWOptions,
    private readonly executionProviders: string[],
  ) {
    this.sizes = params.map((p) => p.shape.reduce((a, b) => a * b, 1));
  }

  get step(): number {
    return this.stepCount;
  }

  groupLr(group: ParamGroup): number {
    return groupLearningRate(this.opts, group, this.lrScale);
  }

  private session(): Promise<OnnxRunner> {
    this.runner ??= OnnxRunner.create(buildAdamWGraph(this.params, this.opts).model, {
      executionProviders: this.executionProviders,
      threads: 1,
      outputLocation: 'gpu-buffer',
    });
    return this.runner;
  }

  /**
   * One update: `params[i]` and `grads[i]` (tensors in `params` order) -> the new parameters. The
   * gradients and the previous moments are freed once the update has run; the previous parameters
   * are the caller's (OnnxStudentEngine.setDeviceParams frees them).
   */
  async apply(params: readonly OrtTensor[], grads: readonly OrtTensor[]): Promise<OrtTensor[]> {
    const n = this.params.length;
    if (params.length !== n || grads.length !== n) throw new Error(`DeviceAdamW.apply: ${params.length} parameters and ${grads.length} gradients for ${n}`);
    const r = await this.session();
    const t = this.stepCount + 1;
    const [b1, b2] = this.opts.betas;
    const feeds: Record<string, OrtTensor> = {};
    let up = 0;
    const scalar = (x: number) => ((up += 4), r.tensor(Float32Array.of(x), []));
    const host = (a: Float32Array, shape: readonly number[]) => ((up += a.byteLength), r.tensor(a, shape));
    for (const k of GROUPS) {
      if (!this.params.some((p) => p.group === k)) continue;
      const lr = this.groupLr(k);
      feeds[`decay_${k}`] = scalar(1 - lr * this.opts.weightDecay);
      feeds[`step_${k}`] = scalar(lr / (1 - b1 ** t));
    }
    feeds.bc2 = scalar(1 - b2 ** t);
    this.params.forEach((p, i) => {
      feeds[`p${i}`] = params[i];
      feeds[`g${i}`] = grads[i];
      feeds[`m${i}`] = this.m?.[i] ?? host(this.hostM?.[i] ?? new Float32Array(this.sizes[i]), p.shape);
      feeds[`v${i}`] = this.v?.[i] ?? host(this.hostV?.[i] ?? new Float32Array(this.sizes[i]), p.shape);
    });
    const out = await r.runTensors(
      feeds,
      this.params.flatMap((_, i) => [`p${i}_out`, `m${i}_out`, `v${i}_out`]),
    );
    for (let i = 0; i < n; i++) {
      disposeDeviceTensor(grads[i]);
      disposeDeviceTensor(this.m?.[i]);
      disposeDeviceTensor(this.v?.[i]);
    }
    this.m = this.params.map((_, i) => out[`m${i}_out`]);
    this.v = this.params.map((_, i) => out[`v${i}_out`]);
    this.stepCount = t;
    this.lastUploadBytes = up;
    this.hostCurrent = false;
    this.hostM = this.hostV = undefined;
    return this.params.map((_, i) => out[`p${i}_out`]);
  }

  /** Copies the moments to the host (for `state()`): at checkpoint time, not every step. */
  async flush(): Promise<void> {
    if (this.hostCurrent || !this.m || !this.v) return;
    const [m, v] = await Promise.all([readToHost(this.m, this.executionProviders), readToHost(this.v, this.executionProviders)]);
    this.hostM = m;
    this.hostV = v;
    this.hostCurrent = true;
  }

  /** The moments by parameter name, as of the last `flush()` (refused while the device holds newer ones). */
  state(): AdamWState {
    if (!this.hostCurrent) throw new Error('DeviceAdamW.state(): the device holds newer moments; await flush() first');
    const m: AdamWState['m'] = {};
    const v: AdamWState['v'] = {};
    this.params.forEach((p, i) => {
      m[p.name] = this.hostM?.[i] ?? new Float32Array(this.sizes[i]);
      v[p.name] = this.hostV?.[i] ?? new Float32Array(this.sizes[i]);
    });
    return { step: this.stepCount, lrScale: this.lrScale, m, v };
  }

  /** Loads moments (a checkpoint): they go to the device with the next update. */
  load(s: AdamWState): void {
    const next = (which: 'm' | 'v') =>
      this.params.map((p, i) => {
        const data = s[which][p.name];
        if (!data) throw new DistillError(`Optimizer state has no '${which}' for parameter ${p.name}: the checkpoint does not match this student.`);
        if (data.length !== this.sizes[i]) throw new DistillError(`Optimizer state '${which}' of ${p.name} has ${data.length} values, the parameter ${this.sizes[i]}.`);
        return Float32Array.from(data);
      });
    const [m, v] = [next('m'), next('v')];
    this.dropDevice();
    this.hostM = m;
    this.hostV = v;
    this.hostCurrent = true;
    this.stepCount = s.step;
    this.lrScale = s.lrScale;
  }

  private dropDevice(): void {
    for (const t of [...(this.m ?? []), ...(this.v ?? [])]) disposeDeviceTensor(t);
    this.m = this.v = undefined;
  }

  async release(): Promise<void> {
    this.dropDevice();
    const r = this.runner;
    this.runner = undefined;
    if (r) await (await r).release();
  }
}
