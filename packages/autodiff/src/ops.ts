/**
 * Differentiable ops for the ONNX graph builder. Each op emits standard ONNX nodes with static shapes;
 * its gradient is the rule of its ONNX primitive in the table of gradients.ts (one place, with the
 * math), or a hand-written one (`customGradient`: log1p) or none (`noGradient`: reduceMaxConst).
 */
import { type Sym, broadcastShape, customGradient, noGradient, sameShape } from './graph.js';
import type { AttrValue } from './proto.js';
import { axesParam, reducedShape } from './gradients.js';

export { sumTo } from './gradients.js';

const g0 = (s: Sym) => s.graph;
const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** One node of a differentiable primitive, one output (its gradient: the rule for `op` in gradients.ts). */
function prim(
  op: string,
  inputs: Sym[],
  shape: number[],
  attrs?: Record<string, AttrValue>,
  params?: Record<string, number | number[] | boolean>,
): Sym {
  return g0(inputs[0]).primitive(op, inputs, [shape], { attrs, params })[0];
}

const binary = (op: 'Add' | 'Sub' | 'Mul' | 'Div', a: Sym, b: Sym): Sym =>
  prim(op, [a, b], broadcastShape(a.shape, b.shape, op));

/** a + b (broadcast). */
export const add = (a: Sym, b: Sym): Sym => binary('Add', a, b);
/** a - b (broadcast). */
export const sub = (a: Sym, b: Sym): Sym => binary('Sub', a, b);
/** a * b (broadcast). */
export const mul = (a: Sym, b: Sym): Sym => binary('Mul', a, b);
/** a / b (broadcast). */
export const div = (a: Sym, b: Sym): Sym => binary('Div', a, b);

/** c x for a constant c. */
export const scale = (x: Sym, c: number): Sym => mul(x, g0(x).scalar(c));
/** -x. */
export const neg = (x: Sym): Sym => prim('Neg', [x], [...x.shape]);
/** tanh(x). */
export const tanh = (x: Sym): Sym => prim('Tanh', [x], [...x.shape]);
/** exp(x). */
export const exp = (x: Sym): Sym => prim('Exp', [x], [...x.shape]);
/** sqrt(x). */
export const sqrt = (x: Sym): Sym => prim('Sqrt', [x], [...x.shape]);
/** max(x, 0). */
export const relu = (x: Sym): Sym => prim('Relu', [x], [...x.shape]);
/** sigmoid(x) = 1 / (1 + exp(-x)). */
export const sigmoid = (x: Sym): Sym => prim('Sigmoid', [x], [...x.shape]);
/** |x|. */
export const abs = (x: Sym): Sym => prim('Abs', [x], [...x.shape]);
/** log(x). */
export const log = (x: Sym): Sym => prim('Log', [x], [...x.shape]);

/**
 * sign(x) = [x > 0] - [x < 0] (no gradient: used by backward rules). Written with Greater/Less/Cast,
 * not ONNX Sign, which has no WebGPU kernel and would send every relu/abs gradient to the host.
 */
export function sign(x: Sym): Sym {
  const gr = g0(x);
  const zero = gr.scalar(0);
  const ind = (cmp: 'Greater' | 'Less') =>
    gr.emit('Cast', [gr.emit(cmp, [x, zero], [[...x.shape]])[0]], [[...x.shape]], { attrs: { to: 1 } })[0];
  return gr.emit('Sub', [ind('Greater'), ind('Less')], [[...x.shape]])[0];
}

/** gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))). */
export const geluTanh = (x: Sym): Sym => prim('Gelu', [x], [...x.shape], { approximate: 'tanh' });

/** gelu(x) = 0.5 x (1 + erf(x / sqrt 2)). */
export const geluErf = (x: Sym): Sym => prim('Gelu', [x], [...x.shape]);

/** Reshape (static). */
export function reshape(x: Sym, shape: number[]): Sym {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== x.size) throw new Error(`reshape: [${x.shape}] (${x.size} values) cannot become [${shape}] (${n})`);
  if (sameShape(x.shape, shape)) return x;
  return prim('Reshape', [x, g0(x).ints(shape)], shape);
}

/** Transpose by `perm`. */
export const transpose = (x: Sym, perm: number[]): Sym =>
  prim(
    'Transpose',
    [x],
    perm.map((p) => x.shape[p]),
    { perm },
  );

/** Splits along `axis` into pieces of `sizes`. */
export function split(x: Sym, axis: number, sizes: number[]): Sym[] {
  const gr = g0(x);
  const ax = norm(axis, x.rank);
  if (sizes.reduce((a, b) => a + b, 0) !== x.shape[ax])
    throw new Error(`split: sizes [${sizes}] do not add up to ${x.shape[ax]}`);
  const shapes = sizes.map((s) => x.shape.map((d, i) => (i === ax ? s : d)));
  return gr.primitive('Split', [x, gr.ints(sizes)], shapes, { attrs: { axis: ax } });
}

/** Concatenates along `axis`. */
export function concat(xs: Sym[], axis: number): Sym {
  const ax = norm(axis, xs[0].rank);
  const shape = [...xs[0].shape];
  shape[ax] = xs.reduce((a, s) => a + s.shape[ax], 0);
  return prim('Concat', xs, shape, { axis: ax });
}

/** Slice [start, end) along one axis. */
export function sliceAxis(x: Sym, axis: number, start: number, end: number): Sym {
  const gr = g0(x);
  const ax = norm(axis, x.rank);
  const shape = x.shape.map((d, i) => (i === ax ? end - start : d));
  return prim('Slice', [x, gr.ints([start]), gr.ints([end]), gr.ints([ax])], shape, undefined, {
    axis: ax,
    start,
    end,
  });
}

/** Sum over `axes`. */
export function reduceSum(x: Sym, axes: number[], keepdims = false): Sym {
  return prim(
    'ReduceSum',
    [x, g0(x).ints(axesParam(x, axes))],
    reducedShape(x, axes, keepdims),
    { keepdims: keepdims ? 1 : 0 },
    { axes: axesParam(x, axes) },
  );
}

/** Mean over `axes`. */
export function reduceMean(x: Sym, axes: number[], keepdims = false): Sym {
  return prim(
    'ReduceMean',
    [x, g0(x).ints(axesParam(x, axes))],
    reducedShape(x, axes, keepdims),
    { keepdims: keepdims ? 1 : 0 },
    { axes: axesParam(x, axes) },
  );
}

/** Max over `axes` (its gradient goes to every position equal to the max, as tfjs's). */
export function reduceMax(x: Sym, axes: number[], keepdims = false): Sym {
  return prim(
    'ReduceMax',
    [x, g0(x).ints(axesParam(x, axes))],
    reducedShape(x, axes, keepdims),
    { keepdims: keepdims ? 1 : 0 },
    { axes: axesParam(x, axes) },
  );
}

/** Max over `axes` as a constant for autodiff (no gradient): the shift of a log-sum-exp, which cancels out. */
export const reduceMaxConst = (x: Sym, axes: number[], keepdims = true): Sym =>
  noGradient((v: Sym) => reduceMax(v, axes, keepdims))(x);

/** y = a @ b (2-D, optional transposes) + bias, as one Gemm (bias broadcast over rows). */
export function gemm(a: Sym, b: Sym, bias?: Sym, opts: { transA?: boolean; transB?: boolean } = {}): Sym {
  const tA = !!opts.transA;
  const tB = !!opts.transB;
  if (a.rank !== 2 || b.rank !== 2) throw new Error(`gemm: needs 2-D inputs, got [${a.shape}] and [${b.shape}]`);
  const [m, k] = tA ? [a.shape[1], a.shape[0]] : a.shape;
  const [k2, n] = tB ? [b.shape[1], b.shape[0]] : b.shape;
  if (k !== k2)
    throw new Error(`gemm: inner sizes differ: [${a.shape}]${tA ? 'ᵀ' : ''} @ [${b.shape}]${tB ? 'ᵀ' : ''}`);
  const attrs: Record<string, number> = {};
  if (tA) attrs.transA = 1;
  if (tB) attrs.transB = 1;
  return prim('Gemm', bias ? [a, b, bias] : [a, b], [m, n], attrs);
}

/** Linear layer x W + b on the last axis of any-rank x (flattened to 2-D for Gemm). */
export function linear(x: Sym, w: Sym, b?: Sym): Sym {
  if (x.rank === 2) return gemm(x, w, b);
  const lead = x.shape.slice(0, -1);
  const flat = reshape(x, [lead.reduce((p, q) => p * q, 1), x.shape[x.rank - 1]]);
  return reshape(gemm(flat, w, b), [...lead, w.shape[1]]);
}

/** Batched a @ b (same leading dims, rank 3+). */
export function matmul(a: Sym, b: Sym): Sym {
  const r = a.rank;
  if (
    r !== b.rank ||
    r < 3 ||
    !sameShape(a.shape.slice(0, -2), b.shape.slice(0, -2)) ||
    a.shape[r - 1] !== b.shape[r - 2]
  )
    throw new Error(`matmul: shapes [${a.shape}] and [${b.shape}] do not match (batched, same leading dims)`);
  return prim('MatMul', [a, b], [...a.shape.slice(0, -1), b.shape[r - 1]]);
}

/** Softmax over the last axis. */
export const softmax = (x: Sym): Sym => prim('Softmax', [x], [...x.shape], { axis: -1 });

/** LayerNorm over the last axis (one ONNX LayerNormalization node, which also returns mean and 1/std). */
export function layerNorm(x: Sym, gamma: Sym, beta: Sym, eps = 1e-5): Sym {
  const stat = [...x.shape.slice(0, -1), 1];
  return g0(x).primitive('LayerNormalization', [x, gamma, beta], [[...x.shape], stat, stat], {
    attrs: { axis: -1, epsilon: { float: eps } },
  })[0];
}

/** Row gather from a table (embeddings): y = table[ids]. `ids`: int64 (token ids in [0, rows)). */
export function gather(table: Sym, ids: Sym): Sym {
  return prim('Gather', [table, ids], [...ids.shape, ...table.shape.slice(1)], { axis: 0 });
}

/** Broadcast to `shape` (numpy rules). */
export function expand(x: Sym, shape: number[]): Sym {
  const out = broadcastShape(x.shape, shape, 'expand');
  if (sameShape(out, x.shape)) return x;
  return prim('Expand', [x, g0(x).ints(shape)], out);
}

/**
 * 2-D convolution, NCHW input, OIHW weight, explicit pads [top, left, bottom, right], optional bias.
 * `group` > 1 splits the channels into groups (ONNX Conv's `group`): the weight is [O, C / group, kh, kw]
 * and output channel o sees the input channels of group floor(o / (O / group)); group = C is a
 * depthwise convolution (MobileNet's), O = C x the channel multiplier.
 */
export function conv2d(
  x: Sym,
  w: Sym,
  b: Sym | undefined,
  stride: number,
  pads: [number, number, number, number],
  group = 1,
): Sym {
  const [N, C, H, W] = x.shape;
  const [O, Cg, kh, kw] = w.shape;
  if (
    x.rank !== 4 ||
    w.rank !== 4 ||
    !Number.isInteger(group) ||
    group < 1 ||
    C % group !== 0 ||
    O % group !== 0 ||
    Cg * group !== C
  )
    throw new Error(
      `conv2d: input [${x.shape}] (NCHW) and weight [${w.shape}] (OIHW) do not match${group > 1 ? ` in ${group} groups` : ''}`,
    );
  const [pt, pl, pb, pr] = pads;
  const Ho = Math.floor((H + pt + pb - kh) / stride) + 1;
  const Wo = Math.floor((W + pl + pr - kw) / stride) + 1;
  const attrs: Record<string, AttrValue> = { strides: [stride, stride], pads, kernel_shape: [kh, kw] };
  if (group > 1) attrs.group = group;
  return prim('Conv', b ? [x, w, b] : [x, w], [N, O, Ho, Wo], attrs);
}

/** TensorFlow's 'same' padding of one axis for kernel k and stride s: [before, after]. */
export function samePads(size: number, k: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + k - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** min(max(x, lo), hi) for constants lo < hi (ReLU6 = clip(x, 0, 6)); the gradient flows where lo <= x <= hi. */
export function clip(x: Sym, lo: number, hi: number): Sym {
  if (!(lo < hi)) throw new Error(`clip: needs lo < hi, got ${lo} and ${hi}`);
  const gr = g0(x);
  return prim('Clip', [x, gr.scalar(lo), gr.scalar(hi)], [...x.shape], undefined, { lo, hi });
}

/** max(x, c) for a constant c. */
export const maximumConst = (x: Sym, c: number): Sym => prim('Max', [x, g0(x).scalar(c)], [...x.shape]);

/**
 * log(1 + x), accurate for small x (Goldberg: with u = 1 + x, log1p = x when u == 1, else x log(u) / (u - 1)),
 * a Where over two branches: its gradient is written by hand, dx = g / (1 + x).
 */
export const log1p = customGradient(
  (x: Sym): Sym => {
    const gr = x.graph;
    const shape = [...x.shape];
    const u = gr.emit('Add', [x, gr.scalar(1)], [shape])[0];
    const w = gr.emit('Sub', [u, gr.scalar(1)], [shape])[0];
    const exact = gr.emit('Div', [gr.emit('Mul', [x, gr.emit('Log', [u], [shape])[0]], [shape])[0], w], [shape])[0];
    const isOne = gr.emit('Equal', [w, gr.scalar(0)], [shape])[0];
    return gr.emit('Where', [isOne, x, exact], [shape], { dtype: 'float32' })[0];
  },
  (g, { inputs: [x] }) => [div(g, add(x, x.graph.scalar(1)))],
);
