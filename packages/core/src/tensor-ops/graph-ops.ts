/** `Ops<Sym>`: the onnx engine (the graph builder's ops; autodiff writes the backward graph). */
import { customGradient, stopGradient, type Sym, onnxOps as op } from '@distill/autodiff';
import type { Ops } from '@distill/base';

/** Dropout at one site of a graph: returns x with dropout `rate` applied (the engine feeds seeded masks). */
export type GraphDropFn = (x: Sym, rate: number) => Sym;

export interface GraphOpsOptions {
  /** The pass's dropout; without it dropout is off. */
  drop?: GraphDropFn;
}

/**
 * flat[idx] for distinct int64 indices, a custom gradient: d flat = ScatterND(zeros, idx, dy) (no reduction:
 * the indices are distinct, so each position receives at most one value), no gradient for the indices.
 */
const take = customGradient(
  (x: Sym, idx: Sym) => x.graph.emit('Gather', [x, idx], [[...idx.shape]], { attrs: { axis: 0 } })[0],
  (dy, { inputs: [x, idx] }) => {
    const g = x.graph;
    const n = idx.size;
    const zeros = g.emit('ConstantOfShape', [g.ints([...x.shape])], [[...x.shape]], { dtype: 'float32' })[0];
    return [g.emit('ScatterND', [zeros, op.reshape(idx, [n, 1]), op.reshape(dy, [n])], [[...x.shape]])[0], null];
  },
);

/** Graph-builder ops for one graph (its dropout is `opts.drop`). */
export function graphOps(opts: GraphOpsOptions = {}): Ops<Sym> {
  const drop = opts.drop;
  return {
    engine: 'graph',
    shape: (x) => x.shape,
    constant: (like, data, shape) => like.graph.constant(data, shape),
    scalar: (like, v) => like.graph.scalar(v),
    intConstant: (like, data, shape) => like.graph.constant(data, shape, 'int64'),
    add: op.add,
    sub: op.sub,
    mul: op.mul,
    div: op.div,
    neg: op.neg,
    scale: op.scale,
    exp: op.exp,
    log: op.log,
    log1p: op.log1p,
    sqrt: op.sqrt,
    abs: op.abs,
    relu: op.relu,
    tanh: op.tanh,
    sigmoid: op.sigmoid,
    geluErf: op.geluErf,
    geluTanh: op.geluTanh,
    maximumConst: op.maximumConst,
    minimumConst: (x, c) => op.neg(op.maximumConst(op.neg(x), -c)), // min(x, c) = -max(-x, -c)
    matmul: (a, b) => {
      if (a.shape.length === 2 && b.shape.length === 2) return op.gemm(a, b);
      // leading axes broadcast (numpy): both expanded to the common batch shape (Expand's gradient sums back)
      const r = Math.max(a.shape.length, b.shape.length);
      const lead = (x: Sym) => [...new Array<number>(r - x.shape.length).fill(1), ...x.shape.slice(0, -2)];
      const lb = lead(b);
      const batch = lead(a).map((d, i) => Math.max(d, lb[i]));
      return op.matmul(op.expand(a, [...batch, ...a.shape.slice(-2)]), op.expand(b, [...batch, ...b.shape.slice(-2)]));
    },
    matmulT: (a, b) => op.gemm(a, b, undefined, { transB: true }),
    linear: (x, w, b) => op.linear(x, w, b),
    layerNorm: op.layerNorm,
    softmax: op.softmax,
    reshape: op.reshape,
    transpose: op.transpose,
    concat: op.concat,
    sliceAxis: op.sliceAxis,
    expand: op.expand,
    reduceSum: (x, axes, keepdims = false) => op.reduceSum(x, axes, keepdims),
    reduceMean: (x, axes, keepdims = false) => op.reduceMean(x, axes, keepdims),
    reduceMax: (x, axes, keepdims = false) => op.reduceMax(x, axes, keepdims),
    stopGradient,
    gather: op.gather,
    take,
    conv2dSame: (x, w, b, stride, group = 1) => {
      const [kh, kw] = w.shape;
      const [pt, pb] = op.samePads(x.shape[2], kh, stride);
      const [pl, pr] = op.samePads(x.shape[3], kw, stride);
      return op.conv2d(x, op.transpose(w, [3, 2, 0, 1]), b, stride, [pt, pl, pb, pr], group);
    },
    dropout: (x, rate) => (drop && rate > 0 ? drop(x, rate) : x),
    reduceMaxConst: (x, axes, keepdims = false) => op.reduceMaxConst(x, axes, keepdims),
  };
}
