/**
 * A small ONNX graph builder with reverse-mode autodiff. Every op records its ONNX node(s) with
 * static shapes and, when an input needs a gradient, a backward rule that emits more ONNX nodes.
 * `Graph.gradients()` writes the backward graph; `Graph.encode()` gives bytes for onnxruntime.
 * Only standard ONNX ops are used (onnxruntime-node has no training ops), so the forward and the
 * backward pass of a model run as one onnxruntime session on all cores.
 */
import { type AttrValue, type NodeSpec, type OnnxDType, type TensorSpec, encodeModel } from './proto.js';

export const OPSET = 20;

export class Sym {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly shape: readonly number[],
    readonly dtype: OnnxDType,
    readonly requiresGrad: boolean,
  ) {}

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get rank(): number {
    return this.shape.length;
  }
}

type Grad = Sym | null;

interface Tape {
  inputs: Sym[];
  outputs: Sym[];
  backward: (grads: Grad[]) => Grad[];
}

export const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** Numpy broadcasting of two static shapes (throws with both shapes when they do not broadcast). */
export function broadcastShape(a: readonly number[], b: readonly number[], op = 'op'): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`${op}: shapes [${a}] and [${b}] do not broadcast`);
    out.push(Math.max(x, y));
  }
  return out;
}

export interface CompiledModel {
  model: Uint8Array;
  /** Input names in the model (feed exactly these). */
  inputs: string[];
  outputs: string[];
}

export interface TrainingGraphs {
  forward: CompiledModel;
  backward: CompiledModel;
  /** Forward outputs (`out_<i>`), in the order given. */
  outputNames: string[];
  /** Backward inputs for dLoss/dOutput (`seed_<i>`). */
  seedNames: string[];
  /** Activations passed from the forward to the backward run. */
  saved: string[];
}

export class Graph {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: TensorSpec[] = [];
  readonly inputs: Sym[] = [];
  private readonly tape: Tape[] = [];
  private readonly constCache = new Map<string, Sym>();
  /** Every value by name (inputs, constants, node outputs). */
  readonly values = new Map<string, Sym>();
  private counter = 0;
  /** When false, ops record no backward rules (used while emitting the backward graph itself). */
  private recording = true;

  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  /** A graph input (parameters: requiresGrad true; data: false). */
  input(name: string, shape: number[], opts: { dtype?: OnnxDType; requiresGrad?: boolean } = {}): Sym {
    if (this.inputs.some((s) => s.name === name)) throw new Error(`graph input '${name}' declared twice`);
    const s = new Sym(this, name, shape, opts.dtype ?? 'float32', opts.requiresGrad ?? false);
    this.inputs.push(s);
    this.values.set(name, s);
    return s;
  }

  /** A constant (initializer); small constants with the same value are shared. */
  constant(values: ArrayLike<number>, shape: number[], dtype: OnnxDType = 'float32'): Sym {
    const arr = Array.from(values);
    const key = arr.length <= 16 ? `${dtype}:${shape}:${arr}` : undefined;
    const hit = key && this.constCache.get(key);
    if (hit) return hit;
    const name = this.fresh('const');
    const data = dtype === 'int64' ? BigInt64Array.from(arr.map((x) => BigInt(x))) : dtype === 'float64' ? Float64Array.from(arr) : Float32Array.from(arr);
    this.initializers.push({ name, dtype, dims: shape, data });
    const s = new Sym(this, name, shape, dtype, false);
    this.values.set(name, s);
    if (key) this.constCache.set(key, s);
    return s;
  }

  scalar(v: number): Sym {
    return this.constant([v], []);
  }

  ints(v: number[]): Sym {
    return this.constant(v, [v.length], 'int64');
  }

  /**
   * Emits one ONNX node. `backward` (called with the output gradients, null where none) returns the
   * input gradients (null where none); it is only kept when an input needs a gradient.
   */
  emit(
    op: string,
    inputs: Sym[],
    outShapes: number[][],
    opts: { attrs?: Record<string, AttrValue>; extraInputs?: string[]; dtype?: OnnxDType; backward?: (grads: Grad[], outs: Sym[]) => Grad[] } = {},
  ): Sym[] {
    const requiresGrad = this.recording && !!opts.backward && inputs.some((s) => s.requiresGrad);
    const outs = outShapes.map((shape) => new Sym(this, this.fresh(op.toLowerCase()), shape, opts.dtype ?? inputs[0]?.dtype ?? 'float32', requiresGrad));
    for (const o of outs) this.values.set(o.name, o);
    this.nodes.push({
      op,
      name: this.fresh(`n_${op}`),
      inputs: [...inputs.map((s) => s.name), ...(opts.extraInputs ?? [])],
      outputs: outs.map((s) => s.name),
      attrs: opts.attrs,
    });
    if (requiresGrad) {
      const bw = opts.backward!;
      this.tape.push({ inputs, outputs: outs, backward: (g) => bw(g, outs) });
    }
    return outs;
  }

  /**
   * Reverse-mode autodiff: gradients of `outputs` (seeded with `seeds`, same shapes) with respect
   * to `wrt`. Emits the backward nodes and returns one gradient per `wrt` (zeros when unused).
   */
  gradients(outputs: Sym[], seeds: Sym[], wrt: Sym[]): Sym[] {
    const grads = new Map<string, Sym>();
    const accumulate = (s: Sym, g: Sym) => {
      if (!sameShape(s.shape, g.shape)) throw new Error(`internal: gradient of ${s.name} has shape [${g.shape}], expected [${s.shape}]`);
      const prev = grads.get(s.name);
      grads.set(s.name, prev ? this.emit('Add', [prev, g], [[...s.shape]])[0] : g);
    };
    outputs.forEach((o, i) => accumulate(o, seeds[i]));
    this.recording = false;
    try {
      for (let t = this.tape.length - 1; t >= 0; t--) {
        const rec = this.tape[t];
        const gOut = rec.outputs.map((o) => grads.get(o.name) ?? null);
        if (gOut.every((g) => g === null)) continue;
        const gIn = rec.backward(gOut);
        rec.inputs.forEach((inp, i) => {
          const g = gIn[i];
          if (g && inp.requiresGrad) accumulate(inp, g);
        });
      }
    } finally {
      this.recording = true;
    }
    return wrt.map((w) => grads.get(w.name) ?? this.constant(new Float32Array(w.size), [...w.shape]));
  }

  /**
   * Two models for training: `forward` maps the graph inputs to `outputs` (embeddings whose loss is
   * computed elsewhere, or the loss components themselves) plus the activations the backward pass
   * needs (`saved`); `backward` maps those activations, the inputs it reads and one seed per output
   * (dLoss/dOutput, named `seed_<i>`: for a loss component, its weight) to the gradients of `wrt`
   * (named `grad_<i>`). Call once, after building the forward graph.
   */
  compileTraining(outputs: Sym[], wrt: Sym[]): TrainingGraphs {
    const nForward = this.nodes.length;
    const seeds = outputs.map((o, i) => this.input(`seed_${i}`, [...o.shape]));
    const grads = this.gradients(outputs, seeds, wrt);
    const gradNames = grads.map((_, i) => `grad_${i}`);
    grads.forEach((g, i) => this.nodes.push({ op: 'Identity', name: this.fresh('n_grad'), inputs: [g.name], outputs: [gradNames[i]] }));
    const fwdNodes = this.nodes.slice(0, nForward);
    const bwdNodes = this.nodes.slice(nForward);
    const producedFwd = new Set(fwdNodes.flatMap((n) => n.outputs));
    const producedBwd = new Set(bwdNodes.flatMap((n) => n.outputs));
    const initByName = new Map(this.initializers.map((t) => [t.name, t]));
    const bwdReads = [...new Set(bwdNodes.flatMap((n) => n.inputs))].filter((n) => n && !producedBwd.has(n));
    const saved = bwdReads.filter((n) => producedFwd.has(n));
    const outNames = outputs.map((_, i) => `out_${i}`);
    const fwdGraph: NodeSpec[] = [...fwdNodes, ...outputs.map((o, i) => ({ op: 'Identity', name: this.fresh('n_out'), inputs: [o.name], outputs: [outNames[i]] }))];
    const spec = (name: string) => {
      const s = this.values.get(name)!;
      return { name, dtype: s.dtype, shape: [...s.shape] };
    };
    const usedInputs = (nodes: NodeSpec[]) => {
      const reads = new Set(nodes.flatMap((n) => n.inputs));
      return {
        inputs: this.inputs.filter((s) => reads.has(s.name)).map((s) => spec(s.name)),
        inits: [...reads].filter((n) => initByName.has(n)).map((n) => initByName.get(n)!),
      };
    };
    const f = usedInputs(fwdNodes);
    const forward = encodeModel({
      nodes: fwdGraph,
      initializers: f.inits,
      inputs: f.inputs,
      outputs: [...outputs.map((o, i) => ({ name: outNames[i], dtype: o.dtype, shape: [...o.shape] })), ...saved.map(spec)],
      opset: OPSET,
    });
    const b = usedInputs(bwdNodes);
    const backward = encodeModel({
      nodes: bwdNodes,
      initializers: b.inits,
      inputs: [...b.inputs, ...saved.map(spec)],
      outputs: grads.map((g, i) => ({ name: gradNames[i], dtype: g.dtype, shape: [...g.shape] })),
      opset: OPSET,
    });
    return {
      forward: { model: forward, inputs: f.inputs.map((s) => s.name), outputs: [...outNames, ...saved] },
      backward: { model: backward, inputs: [...b.inputs.map((s) => s.name), ...saved], outputs: gradNames },
      outputNames: outNames,
      seedNames: seeds.map((s) => s.name),
      saved,
    };
  }

  /** The model bytes with the given outputs (renamed with Identity nodes when names are given). */
  encode(outputs: Sym[], names?: string[]): Uint8Array {
    const outs = outputs.map((o, i) => {
      const name = names?.[i];
      if (!name || name === o.name) return o;
      const s = new Sym(this, name, o.shape, o.dtype, false);
      this.nodes.push({ op: 'Identity', name: this.fresh('n_out'), inputs: [o.name], outputs: [name] });
      return s;
    });
    return encodeModel({
      nodes: this.nodes,
      initializers: this.initializers,
      inputs: this.inputs.map((s) => ({ name: s.name, dtype: s.dtype, shape: [...s.shape] })),
      outputs: outs.map((s) => ({ name: s.name, dtype: s.dtype, shape: [...s.shape] })),
      opset: OPSET,
    });
  }
}
