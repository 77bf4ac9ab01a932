/**
 * A small ONNX graph builder with reverse-mode autodiff. Every op records its ONNX node(s) with
 * static shapes and, when an input needs a gradient, a tape entry whose backward rule emits more ONNX
 * nodes: the rule of its primitive from the table in gradients.ts (`Graph.primitive`), or a hand-written
 * one (`customGradient`). `Graph.gradients()` writes the backward graph; `Graph.encode()` gives bytes
 * for an ONNX runtime. Only standard ONNX ops are used (onnxruntime-node has no training ops), so the
 * forward and the backward pass of a model run as one session on all cores.
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

/** A gradient, or null where there is none (an unused output, an input that needs none). */
export type Grad = Sym | null;

/** What a gradient rule sees of the node it differentiates (the forward values, not their gradients). */
export interface GradContext {
  readonly graph: Graph;
  /** The node's inputs (constants such as a Reshape's shape included: their gradient is null). */
  readonly inputs: readonly Sym[];
  /** The node's outputs (rules read saved values from them, e.g. exp's y). */
  readonly outputs: readonly Sym[];
  /** The node's ONNX attributes. */
  readonly attrs: Readonly<Record<string, AttrValue>>;
  /** Static facts the op recorded for its rule beyond the ONNX attributes (e.g. a slice's start and end). */
  readonly params: Readonly<Record<string, number | number[] | boolean>>;
}

/**
 * A backward rule: the output gradients (null where none) to the input gradients (null where none, or
 * where the input needs none), each the shape of its input.
 */
export type GradRule = (grads: Grad[], ctx: GradContext) => Grad[];

interface Tape {
  inputs: Sym[];
  outputs: Sym[];
  backward: (grads: Grad[]) => Grad[];
}

/** Gradient rules by ONNX op name: the table of gradients.ts, and any an extension defines. */
const rules = new Map<string, GradRule>();

/**
 * Registers the backward rule of an ONNX primitive, for `Graph.primitive` (one per op name: a second
 * one for the same name is an error). gradients.ts defines the built-in ones.
 */
export function defineGradient(op: string, rule: GradRule): void {
  if (rules.has(op)) throw new Error(`a gradient rule for ${op} is already defined`);
  rules.set(op, rule);
}

/** The backward rule of an ONNX primitive, if it has one. */
export function gradientRule(op: string): GradRule | undefined {
  return rules.get(op);
}

/** The op names that have a gradient rule. */
export function differentiableOps(): string[] {
  return [...rules.keys()].sort();
}

export const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

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
    const key = values.length <= 16 ? `${dtype}:${shape}:${Array.from(values)}` : undefined;
    const hit = key && this.constCache.get(key);
    if (hit) return hit;
    const name = this.fresh('const');
    // typed copies (a frozen pretrained table of millions of values is not walked through a JS array)
    const data =
      dtype === 'int64'
        ? BigInt64Array.from(Array.from(values, (x) => BigInt(x)))
        : dtype === 'float64'
          ? new Float64Array(values)
          : new Float32Array(values);
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
   * Emits one ONNX node. Without `backward` the node records no gradient (its outputs are constants for
   * autodiff: use `primitive` for an op with a rule in the table). `backward` (called with the output
   * gradients, null where none) returns the input gradients (null where none); it is only kept when an
   * input needs a gradient. Prefer `customGradient` for a hand-written gradient of several nodes.
   */
  emit(
    op: string,
    inputs: Sym[],
    outShapes: number[][],
    opts: {
      attrs?: Record<string, AttrValue>;
      extraInputs?: string[];
      dtype?: OnnxDType;
      backward?: (grads: Grad[], outs: Sym[]) => Grad[];
    } = {},
  ): Sym[] {
    const requiresGrad = this.recording && !!opts.backward && inputs.some((s) => s.requiresGrad);
    const outs = outShapes.map(
      (shape) =>
        new Sym(this, this.fresh(op.toLowerCase()), shape, opts.dtype ?? inputs[0]?.dtype ?? 'float32', requiresGrad),
    );
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
   * Emits one node of a differentiable primitive: its gradient is the rule registered for `op`
   * (gradients.ts). `params` are the static facts that rule reads besides the attributes.
   */
  primitive(
    op: string,
    inputs: Sym[],
    outShapes: number[][],
    opts: { attrs?: Record<string, AttrValue>; dtype?: OnnxDType; params?: GradContext['params'] } = {},
  ): Sym[] {
    const rule = rules.get(op);
    if (!rule)
      throw new Error(
        `no gradient rule for the ONNX op ${op} (define one with defineGradient, or emit it without a gradient)`,
      );
    const attrs = opts.attrs ?? {};
    const params = opts.params ?? {};
    return this.emit(op, inputs, outShapes, {
      attrs: opts.attrs,
      dtype: opts.dtype,
      backward: (grads, outputs) => rule(grads, { graph: this, inputs, outputs, attrs, params }),
    });
  }

  /**
   * `forward()` over `inputs` with a hand-written gradient: the nodes `forward` emits record none, and
   * one tape entry maps the output gradients to the inputs' through `backward` (null for an input with
   * none). `backward` null: the outputs are constants for autodiff (a stop-gradient). For a numerically
   * better form of a function (log1p), the max shift of a log-sum-exp, or a fused op.
   */
  withGradient(
    inputs: Sym[],
    forward: () => Sym[],
    backward: ((grads: Grad[], ctx: { inputs: Sym[]; outputs: Sym[] }) => Grad[]) | null,
  ): Sym[] {
    const recording = this.recording;
    const n0 = this.nodes.length;
    this.recording = false;
    let outs: Sym[];
    try {
      outs = forward();
    } finally {
      this.recording = recording;
    }
    const made = new Set(this.nodes.slice(n0).flatMap((n) => n.outputs));
    // A value forward did not make (an input passed through) gets an Identity: its own name, its own gradient flag.
    const own = (o: Sym) => (made.has(o.name) ? o : this.emit('Identity', [o], [[...o.shape]])[0]);
    if (!backward || !recording || !inputs.some((s) => s.requiresGrad)) {
      return outs.map((o) => (o.requiresGrad ? own(o) : o));
    }
    // The same ONNX values, now differentiable through `backward`.
    const wrapped = outs.map((o) => {
      const v = own(o);
      const s = new Sym(this, v.name, v.shape, v.dtype, true);
      this.values.set(s.name, s);
      return s;
    });
    this.tape.push({ inputs, outputs: wrapped, backward: (g) => backward(g, { inputs, outputs: wrapped }) });
    return wrapped;
  }

  /**
   * Reverse-mode autodiff: gradients of `outputs` (seeded with `seeds`, same shapes) with respect
   * to `wrt`. Emits the backward nodes and returns one gradient per `wrt` (zeros when unused).
   */
  gradients(outputs: Sym[], seeds: Sym[], wrt: Sym[]): Sym[] {
    const grads = new Map<string, Sym>();
    const accumulate = (s: Sym, g: Sym) => {
      if (!sameShape(s.shape, g.shape))
        throw new Error(`internal: gradient of ${s.name} has shape [${g.shape}], expected [${s.shape}]`);
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
    grads.forEach((g, i) =>
      this.nodes.push({ op: 'Identity', name: this.fresh('n_grad'), inputs: [g.name], outputs: [gradNames[i]] }),
    );
    const fwdNodes = this.nodes.slice(0, nForward);
    const bwdNodes = this.nodes.slice(nForward);
    const producedFwd = new Set(fwdNodes.flatMap((n) => n.outputs));
    const producedBwd = new Set(bwdNodes.flatMap((n) => n.outputs));
    const initByName = new Map(this.initializers.map((t) => [t.name, t]));
    const bwdReads = [...new Set(bwdNodes.flatMap((n) => n.inputs))].filter((n) => n && !producedBwd.has(n));
    const saved = bwdReads.filter((n) => producedFwd.has(n));
    const outNames = outputs.map((_, i) => `out_${i}`);
    const fwdGraph: NodeSpec[] = [
      ...fwdNodes,
      ...outputs.map((o, i) => ({
        op: 'Identity',
        name: this.fresh('n_out'),
        inputs: [o.name],
        outputs: [outNames[i]],
      })),
    ];
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
      outputs: [
        ...outputs.map((o, i) => ({ name: outNames[i], dtype: o.dtype, shape: [...o.shape] })),
        ...saved.map(spec),
      ],
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

/**
 * A function with a hand-written gradient (see `Graph.withGradient`):
 * `customGradient((x) => y, (dy, { inputs: [x], output: y }) => [dx])` returns `(x) => y`.
 * `forward` is built with the ordinary ops, whose own rules are not used; `backward` gets dL/dy and
 * returns one gradient per input (null for none), written with the same ops.
 */
export function customGradient<A extends Sym[]>(
  forward: (...xs: A) => Sym,
  backward: (dy: Sym, ctx: { inputs: A; output: Sym }) => Grad[],
): (...xs: A) => Sym {
  return (...xs: A) =>
    xs[0].graph.withGradient(
      xs,
      () => [forward(...xs)],
      ([dy], { outputs }) => backward(dy!, { inputs: xs, output: outputs[0] }),
    )[0];
}

/** `forward(...xs)` as a constant for autodiff: the same value, no gradient flows back through it. */
export function noGradient<A extends Sym[]>(forward: (...xs: A) => Sym): (...xs: A) => Sym {
  return (...xs: A) => xs[0].graph.withGradient(xs, () => [forward(...xs)], null)[0];
}

/** x as a constant for autodiff: y = x (an Identity node), dx = 0. */
export const stopGradient = noGradient((x: Sym) => x.graph.emit('Identity', [x], [[...x.shape]])[0]);
