/**
 * AdamW as an ONNX graph, for the WebGPU step: parameters and both moments stay on the device
 * between steps (`gpu-buffer` outputs fed back as inputs), so per step only the loss values cross
 * to JS. The graph is `adamwUpdate` (adamw.ts, the one definition over `Ops<T>`) recorded with
 * `graphOps`, computed in float32 on the device; `adamwKernel`, the host loop, evaluates the same
 * expression in float64 and rounds once: the two agree to float32 rounding, ~1e-7 relative per step.
 * The step-dependent scalars (`adamwScalars`) are inputs: one compiled session serves every step.
 */
import { disposeDeviceTensor, graphOps, OnnxRunner, readToHost, type OrtTensor, type ParamGroup } from '@distill/core';
import { Graph } from '@distill/autodiff';
import { AdamWBase, adamwUpdate, type AdamWOptions, type AdamWState, type ArrayParam } from './adamw.js';

const GROUPS: readonly ParamGroup[] = ['image', 'text', 'head'];

/** The update graph of parameters with these shapes and groups: inputs p<i>, g<i>, m<i>, v<i>, decay_<group>, step_<group>, bc2; outputs p<i>_out, m<i>_out, v<i>_out. */
export function buildAdamWGraph(
  params: readonly { shape: readonly number[]; group: ParamGroup }[],
  o: Pick<AdamWOptions, 'betas' | 'eps'>,
): { model: Uint8Array; inputs: string[]; outputs: string[] } {
  const g = new Graph();
  const ops = graphOps();
  const used = GROUPS.filter((k) => params.some((p) => p.group === k));
  const decay = Object.fromEntries(used.map((k) => [k, g.input(`decay_${k}`, [])])); // 1 - lr wd
  const step = Object.fromEntries(used.map((k) => [k, g.input(`step_${k}`, [])])); // lr / (1 - b1^t)
  const bc2 = g.input('bc2', []); // 1 - b2^t
  const outs = [];
  const names: string[] = [];
  for (let i = 0; i < params.length; i++) {
    const shape = [...params[i].shape];
    const [p, gr, m, v] = ['p', 'g', 'm', 'v'].map((k) => g.input(`${k}${i}`, shape));
    const k = params[i].group;
    const next = adamwUpdate(ops, { p, g: gr, m, v }, { decay: decay[k], step: step[k], bc2 }, o);
    outs.push(next.p, next.m, next.v);
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
export class DeviceAdamW extends AdamWBase {
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
  private runner?: Promise<OnnxRunner>;
  /** Bytes the last update sent up: its step-dependent scalars, and moments made on the host (the first update, or after a load). */
  lastUploadBytes = 0;

  constructor(
    readonly params: readonly Omit<ArrayParam, 'data'>[],
    opts: AdamWOptions,
    private readonly executionProviders: string[],
  ) {
    super(
      opts,
      params.map((p) => p.name),
      params.map((p) => p.shape.reduce((a, b) => a * b, 1)),
    );
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
    if (params.length !== n || grads.length !== n)
      throw new Error(`DeviceAdamW.apply: ${params.length} parameters and ${grads.length} gradients for ${n}`);
    const r = await this.session();
    const t = this.stepCount + 1;
    const feeds: Record<string, OrtTensor> = {};
    let up = 0;
    const scalar = (x: number) => ((up += 4), r.tensor(Float32Array.of(x), []));
    const host = (a: Float32Array, shape: readonly number[]) => ((up += a.byteLength), r.tensor(a, shape));
    let bc2 = 0;
    for (const k of GROUPS) {
      if (!this.params.some((p) => p.group === k)) continue;
      const s = this.scalarsFor(k, t);
      feeds[`decay_${k}`] = scalar(s.decay);
      feeds[`step_${k}`] = scalar(s.step);
      bc2 = s.bc2;
    }
    feeds.bc2 = scalar(bc2);
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
    const [m, v] = await Promise.all([
      readToHost(this.m, this.executionProviders),
      readToHost(this.v, this.executionProviders),
    ]);
    this.hostM = m;
    this.hostV = v;
    this.hostCurrent = true;
  }

  /** The moments by parameter name, as of the last `flush()` (refused while the device holds newer ones). */
  state(): AdamWState {
    if (!this.hostCurrent) throw new Error('DeviceAdamW.state(): the device holds newer moments; await flush() first');
    const host = (xs?: Float32Array[]) => this.sizes.map((n, i) => xs?.[i] ?? new Float32Array(n));
    return this.stateOf(host(this.hostM), host(this.hostV));
  }

  /** Loads moments (a checkpoint): they go to the device with the next update. */
  load(s: AdamWState): void {
    const { m, v } = this.checkedMoments(s);
    this.dropDevice();
    this.hostM = m.map((x) => Float32Array.from(x));
    this.hostV = v.map((x) => Float32Array.from(x));
    this.hostCurrent = true;
    this.restore(s);
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
