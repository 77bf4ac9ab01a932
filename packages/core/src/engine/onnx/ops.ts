/**
 * Differentiable ops for the ONNX graph builder. Each op emits standard ONNX nodes and a backward
 * rule written with the same ops, with the math in a one-line comment. Shapes are static.
 */
import { type Sym, broadcastShape, sameShape } from './graph.js';

const g0 = (s: Sym) => s.graph;
const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** Sums a broadcast gradient back to `shape` (dy/dx of numpy broadcasting). */
export function sumTo(g: Sym, shape: readonly number[]): Sym {
  if (sameShape(g.shape, shape)) return g;
  const pad = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) if (i < pad || (shape[i - pad] === 1 && g.shape[i] !== 1)) axes.push(i);
  const summed = reduceSum(g, axes, true);
  return reshape(summed, [...shape]);
}

function binary(op: 'Add' | 'Sub' | 'Mul' | 'Div', a: Sym, b: Sym, backward: (g: Sym) => [Sym | null, Sym | null]): Sym {
  const shape = broadcastShape(a.shape, b.shape, op);
  return g0(a).emit(op, [a, b], [shape], {
    backward: ([g]) => {
      const [ga, gb] = backward(g!);
      return [ga && a.requiresGrad ? sumTo(ga, a.shape) : null, gb && b.requiresGrad ? sumTo(gb, b.shape) : null];
    },
  })[0];
}

/** a + b (broadcast): da = g, db = g. */
export const add = (a: Sym, b: Sym): Sym => binary('Add', a, b, (g) => [g, g]);
/** a - b (broadcast): da = g, db = -g. */
export const sub = (a: Sym, b: Sym): Sym => binary('Sub', a, b, (g) => [g, b.requiresGrad ? neg(g) : null]);
/** a * b (broadcast): da = g b, db = g a. */
export const mul = (a: Sym, b: Sym): Sym =>
  binary('Mul', a, b, (g) => [a.requiresGrad ? mul(g, b) : null, b.requiresGrad ? mul(g, a) : null]);
/** a / b (broadcast): da = g / b, db = -g a / b^2. */
export const div = (a: Sym, b: Sym): Sym =>
  binary('Div', a, b, (g) => [a.requiresGrad ? div(g, b) : null, b.requiresGrad ? neg(div(mul(g, a), mul(b, b))) : null]);

/** c x for a constant c: dx = c g. */
export const scale = (x: Sym, c: number): Sym => mul(x, g0(x).scalar(c));
/** -x: dx = -g. */
export const neg = (x: Sym): Sym => g0(x).emit('Neg', [x], [[...x.shape]], { backward: ([g]) => [neg(g!)] })[0];

/** tanh(x): dx = g (1 - y^2). */
export function tanh(x: Sym): Sym {
  return g0(x).emit('Tanh', [x], [[...x.shape]], {
    backward: ([g], [y]) => [mul(g!, sub(g0(x).scalar(1), mul(y, y)))],
  })[0];
}

/** exp(x): dx = g y. */
export const exp = (x: Sym): Sym => g0(x).emit('Exp', [x], [[...x.shape]], { backward: ([g], [y]) => [mul(g!, y)] })[0];

/** sqrt(x): dx = g / (2 y). */
export const sqrt = (x: Sym): Sym =>
  g0(x).emit('Sqrt', [x], [[...x.shape]], { backward: ([g], [y]) => [div(g!, scale(y, 2))] })[0];

/** max(x, 0): dx = g [x > 0]. */
export function relu(x: Sym): Sym {
  return g0(x).emit('Relu', [x], [[...x.shape]], {
    backward: ([g], [y]) => [mul(g!, sign(y))],
  })[0];
}

/**
 * sign(x) = [x > 0] - [x < 0] (no gradient: used by backward rules). Written with Greater/Less/Cast,
 * not ONNX Sign, which has no WebGPU kernel and would send every relu/abs gradient to the host.
 */
export function sign(x: Sym): Sym {
  const gr = g0(x);
  const zero = gr.scalar(0);
  const ind = (cmp: 'Greater' | 'Less') => gr.emit('Cast', [gr.emit(cmp, [x, zero], [[...x.shape]])[0]], [[...x.shape]], { attrs: { to: 1 } })[0];
  return gr.emit('Sub', [ind('Greater'), ind('Less')], [[...x.shape]])[0];
}

const SQRT_2_PI = Math.sqrt(2 / Math.PI);
/** gelu_tanh(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi)(x + 0.044715 x^3): dx = g (0.5(1+t) + 0.5 x (1-t^2) sqrt(2/pi)(1 + 3*0.044715 x^2)). */
export function geluTanh(x: Sym): Sym {
  const gr = g0(x);
  return gr.emit('Gelu', [x], [[...x.shape]], {
    attrs: { approximate: 'tanh' },
    backward: ([g]) => {
      const x2 = mul(x, x);
      const u = mul(x, add(scale(x2, 0.044715 * SQRT_2_PI), gr.scalar(SQRT_2_PI)));
      const t = tanh(u);
      const left = scale(add(t, gr.scalar(1)), 0.5);
      const du = add(scale(x2, 3 * 0.044715 * SQRT_2_PI), gr.scalar(SQRT_2_PI));
      const right = mul(mul(scale(x, 0.5), sub(gr.scalar(1), mul(t, t))), du);
      return [mul(g!, add(left, right))];
    },
  })[0];
}

/** gelu(x) = 0.5 x (1 + erf(x / sqrt 2)): dx = g (0.5 (1 + erf(x/sqrt2)) + x exp(-x^2/2) / sqrt(2 pi)). */
export function geluErf(x: Sym): Sym {
  const gr = g0(x);
  return gr.emit('Gelu', [x], [[...x.shape]], {
    backward: ([g]) => {
      const cdf = scale(add(gr.emit('Erf', [scale(x, Math.SQRT1_2)], [[...x.shape]])[0], gr.scalar(1)), 0.5);
      const pdf = scale(exp(scale(mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
      return [mul(g!, add(cdf, mul(x, pdf)))];
    },
  })[0];
}

/** Reshape (static): dx = reshape(g, x.shape). */
export function reshape(x: Sym, shape: number[]): Sym {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== x.size) throw new Error(`reshape: [${x.shape}] (${x.size} values) cannot become [${shape}] (${n})`);
  if (sameShape(x.shape, shape)) return x;
  const gr = g0(x);
  return gr.emit('Reshape', [x, gr.ints(shape)], [shape], { backward: ([g]) => [reshape(g!, [...x.shape])] })[0];
}

/** Transpose by `perm`: dx = transpose(g, perm^-1). */
export function transpose(x: Sym, perm: number[]): Sym {
  const inv = perm.map((_, i) => perm.indexOf(i));
  return g0(x).emit('Transpose', [x], [perm.map((p) => x.shape[p])], {
    attrs: { perm },
    backward: ([g]) => [transpose(g!, inv)],
  })[0];
}

/** Splits along `axis` into pieces of `sizes`: dx = concat(g_i or zeros). */
export function split(x: Sym, axis: number, sizes: number[]): Sym[] {
  const gr = g0(x);
  const ax = norm(axis, x.rank);
  if (sizes.reduce((a, b) => a + b, 0) !== x.shape[ax]) throw new Error(`split: sizes [${sizes}] do not add up to ${x.shape[ax]}`);
  const shapes = sizes.map((s) => x.shape.map((d, i) => (i === ax ? s : d)));
  return gr.emit('Split', [x, gr.ints(sizes)], shapes, {
    attrs: { axis: ax },
    backward: (gs, outs) => [concat(gs.map((g, i) => g ?? gr.constant(new Float32Array(outs[i].size), [...outs[i].shape])), ax)],
  });
}

/** Concatenates along `axis`: dx_i = split(g)_i. */
export function concat(xs: Sym[], axis: number): Sym {
  const gr = g0(xs[0]);
  const ax = norm(axis, xs[0].rank);
  const shape = [...xs[0].shape];
  shape[ax] = xs.reduce((a, s) => a + s.shape[ax], 0);
  return gr.emit('Concat', xs, [shape], {
    attrs: { axis: ax },
    backward: ([g]) => split(g!, ax, xs.map((s) => s.shape[ax])),
  })[0];
}

/** Slice [start, end) along one axis: dx = pad(g) with zeros. */
export function sliceAxis(x: Sym, axis: number, start: number, end: number): Sym {
  const gr = g0(x);
  const ax = norm(axis, x.rank);
  const shape = x.shape.map((d, i) => (i === ax ? end - start : d));
  return gr.emit('Slice', [x, gr.ints([start]), gr.ints([end]), gr.ints([ax])], [shape], {
    backward: ([g]) => {
      const pads = new Array(2 * x.rank).fill(0);
      pads[ax] = start;
      pads[x.rank + ax] = x.shape[ax] - end;
      return [gr.emit('Pad', [g!, gr.ints(pads)], [[...x.shape]])[0]];
    },
  })[0];
}

function reduced(x: Sym, axes: number[], keepdims: boolean): number[] {
  const ax = axes.map((a) => norm(a, x.rank));
  return keepdims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i));
}

/** Broadcasts a reduced gradient back to `shape` (the gradient of a sum). */
function expandTo(g: Sym, keptShape: number[], shape: readonly number[]): Sym {
  const gr = g0(g);
  const k = reshape(g, keptShape);
  return gr.emit('Expand', [k, gr.ints([...shape])], [[...shape]])[0];
}

/** Sum over `axes`: dx = broadcast(g). */
export function reduceSum(x: Sym, axes: number[], keepdims = false): Sym {
  const gr = g0(x);
  const kept = reduced(x, axes, true);
  return gr.emit('ReduceSum', [x, gr.ints(axes.map((a) => norm(a, x.rank)))], [reduced(x, axes, keepdims)], {
    attrs: { keepdims: keepdims ? 1 : 0 },
    backward: ([g]) => [expandTo(g!, kept, x.shape)],
  })[0];
}

/** Mean over `axes`: dx = broadcast(g) / n. */
export function reduceMean(x: Sym, axes: number[], keepdims = false): Sym {
  const gr = g0(x);
  const kept = reduced(x, axes, true);
  const n = x.size / kept.reduce((a, b) => a * b, 1);
  return gr.emit('ReduceMean', [x, gr.ints(axes.map((a) => norm(a, x.rank)))], [reduced(x, axes, keepdims)], {
    attrs: { keepdims: keepdims ? 1 : 0 },
    backward: ([g]) => [expandTo(scale(g!, 1 / n), kept, x.shape)],
  })[0];
}

/**
 * y = a @ b (2-D, optional transposes) + bias, as one Gemm (bias broadcast over rows).
 * dA = g op(B)^T, dB = op(A)^T g (written with Gemm's trans flags, no transposes), dbias = sum_rows(g).
 */
export function gemm(a: Sym, b: Sym, bias?: Sym, opts: { transA?: boolean; transB?: boolean } = {}): Sym {
  const gr = g0(a);
  const tA = !!opts.transA;
  const tB = !!opts.transB;
  if (a.rank !== 2 || b.rank !== 2) throw new Error(`gemm: needs 2-D inputs, got [${a.shape}] and [${b.shape}]`);
  const [m, k] = tA ? [a.shape[1], a.shape[0]] : a.shape;
  const [k2, n] = tB ? [b.shape[1], b.shape[0]] : b.shape;
  if (k !== k2) throw new Error(`gemm: inner sizes differ: [${a.shape}]${tA ? 'ᵀ' : ''} @ [${b.shape}]${tB ? 'ᵀ' : ''}`);
  const attrs: Record<string, number> = {};
  if (tA) attrs.transA = 1;
  if (tB) attrs.transB = 1;
  const inputs = bias ? [a, b, bias] : [a, b];
  return gr.emit('Gemm', inputs, [[m, n]], {
    attrs,
    backward: ([g]) => {
      const G = g!;
      let ga: Sym | null = null;
      let gb: Sym | null = null;
      if (a.requiresGrad) ga = tA ? gemm(b, G, undefined, { transA: tB, transB: true }) : gemm(G, b, undefined, { transB: !tB });
      if (b.requiresGrad) gb = tB ? gemm(G, a, undefined, { transA: true, transB: tA }) : gemm(a, G, undefined, { transA: !tA });
      const gbias = bias?.requiresGrad ? sumTo(G, bias.shape) : null;
      return bias ? [ga, gb, gbias] : [ga, gb];
    },
  })[0];
}

/** Linear layer x W + b on the last axis of any-rank x (flattened to 2-D for Gemm). */
export function linear(x: Sym, w: Sym, b?: Sym): Sym {
  if (x.rank === 2) return gemm(x, w, b);
  const lead = x.shape.slice(0, -1);
  const flat = reshape(x, [lead.reduce((p, q) => p * q, 1), x.shape[x.rank - 1]]);
  return reshape(gemm(flat, w, b), [...lead, w.shape[1]]);
}

const swapLast = (r: number) => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];

/** Batched a @ b (same leading dims): da = g b^T, db = a^T g. */
export function matmul(a: Sym, b: Sym): Sym {
  const r = a.rank;
  if (r !== b.rank || r < 3 || !sameShape(a.shape.slice(0, -2), b.shape.slice(0, -2)) || a.shape[r - 1] !== b.shape[r - 2])
    throw new Error(`matmul: shapes [${a.shape}] and [${b.shape}] do not match (batched, same leading dims)`);
  const shape = [...a.shape.slice(0, -1), b.shape[r - 1]];
  return g0(a).emit('MatMul', [a, b], [shape], {
    backward: ([g]) => [
      a.requiresGrad ? matmul(g!, transpose(b, swapLast(r))) : null,
      b.requiresGrad ? matmul(transpose(a, swapLast(r)), g!) : null,
    ],
  })[0];
}

/** Softmax over the last axis: dx = y (g - sum(g y)). */
export function softmax(x: Sym): Sym {
  return g0(x).emit('Softmax', [x], [[...x.shape]], {
    attrs: { axis: -1 },
    backward: ([g], [y]) => {
      const gy = mul(g!, y);
      return [sub(gy, mul(y, reduceSum(gy, [-1], true)))];
    },
  })[0];
}

/**
 * LayerNorm over the last axis (one ONNX LayerNormalization node, which also returns mean and 1/std).
 * xhat = (x - mean) rstd; dgamma = sum(g xhat); dbeta = sum(g); dx = rstd (d - mean(d) - xhat mean(d xhat)), d = g gamma.
 */
export function layerNorm(x: Sym, gamma: Sym, beta: Sym, eps = 1e-5): Sym {
  const gr = g0(x);
  const stat = [...x.shape.slice(0, -1), 1];
  const [y] = gr.emit('LayerNormalization', [x, gamma, beta], [[...x.shape], stat, stat], {
    attrs: { axis: -1, epsilon: { float: eps } },
    backward: ([g], [, mean, rstd]) => {
      const G = g!;
      const xhat = mul(sub(x, mean), rstd);
      const d = mul(G, gamma);
      const md = reduceMean(d, [-1], true);
      const mdx = reduceMean(mul(d, xhat), [-1], true);
      const gx = x.requiresGrad ? mul(rstd, sub(sub(d, md), mul(xhat, mdx))) : null;
      const gg = gamma.requiresGrad ? sumTo(mul(G, xhat), gamma.shape) : null;
      const gb = beta.requiresGrad ? sumTo(G, beta.shape) : null;
      return [gx, gg, gb];
    },
  });
  return y;
}

/**
 * Row gather from a table (embeddings): y = table[ids]. `ids`: int64 graph input (token ids in [0, rows)).
 * dtable[v] = sum of g over the positions whose id is v (see `gatherGrad`).
 */
export function gather(table: Sym, ids: Sym): Sym {
  const gr = g0(table);
  const shape = [...ids.shape, ...table.shape.slice(1)];
  return gr.emit('Gather', [table, ids], [shape], {
    attrs: { axis: 0 },
    backward: ([g]) => [gatherGrad(table, ids, g!), null],
  })[0];
}

/**
 * The gradient of `gather`: dtable[v] = sum_{n: ids[n] = v} g[n], written without a reducing scatter.
 * onnxruntime's CPU ScatterND(reduction='add') splits the index rows over threads and adds without
 * locks, so rows of a repeated id lose updates at 2+ threads. Here the rows are sorted by id (TopK),
 * each id's rows summed as a difference of a float64 running sum (CumSum) over its first..last row,
 * and the sums written with a plain ScatterND whose ids are distinct: float32-rounded exact sums,
 * bit-identical at any thread count, in O(rows x width) work besides the zero table.
 */
function gatherGrad(table: Sym, ids: Sym, g: Sym): Sym {
  const gr = g0(table);
  const n = ids.size;
  const w = table.size / table.shape[0];
  const int64 = (v: number) => gr.constant([v], [], 'int64');
  const rowsAt = (x: Sym, idx: Sym) => gr.emit('Gather', [x, idx], [[n, w]], { attrs: { axis: 0 } })[0];
  const flatIds = reshape(ids, [n]);
  const [sorted, perm] = gr.emit('TopK', [flatIds, gr.ints([n])], [[n], [n]], { attrs: { largest: 0, sorted: 1 } });
  // Distinct ids (ascending), the position of each one's first row in `sorted`, and its row count:
  // U <= n values each at run time (the static shapes say n; only the scatter below reads them).
  const [uniq, first, , counts] = gr.emit('Unique', [sorted], [[n], [n], [n], [n]], { attrs: { sorted: 1 } });
  const last = gr.emit('Sub', [gr.emit('Add', [first, counts], [[n]])[0], int64(1)], [[n]])[0];
  const rows = gr.emit('Cast', [rowsAt(reshape(g, [n, w]), perm)], [[n, w]], { attrs: { to: 11 }, dtype: 'float64' })[0];
  const running = gr.emit('CumSum', [rows, int64(0)], [[n, w]])[0];
  // sum over first..last = running[last] - running[first] + rows[first]
  const sums64 = gr.emit('Add', [gr.emit('Sub', [rowsAt(running, last), rowsAt(running, first)], [[n, w]])[0], rowsAt(rows, first)], [[n, w]])[0];
  const sums = gr.emit('Cast', [sums64], [[n, w]], { attrs: { to: 1 }, dtype: 'float32' })[0];
  const zeros = gr.emit('ConstantOfShape', [gr.ints([table.shape[0], w])], [[table.shape[0], w]], { dtype: 'float32' })[0]; // float 0 by default
  const at = gr.emit('Unsqueeze', [uniq, gr.ints([1])], [[n, 1]])[0];
  return reshape(gr.emit('ScatterND', [zeros, at, sums], [[table.shape[0], w]])[0], [...table.shape]);
}

/** Broadcast to `shape` (numpy rules): dx = sumTo(g, x.shape). */
export function expand(x: Sym, shape: number[]): Sym {
  const gr = g0(x);
  const out = broadcastShape(x.shape, shape, 'expand');
  if (sameShape(out, x.shape)) return x;
  return gr.emit('Expand', [x, gr.ints(shape)], [out], { backward: ([g]) => [sumTo(g!, x.shape)] })[0];
}

/** sigmoid(x): dx = g y (1 - y). */
export function sigmoid(x: Sym): Sym {
  return g0(x).emit('Sigmoid', [x], [[...x.shape]], {
    backward: ([g], [y]) => [mul(g!, mul(y, sub(g0(x).scalar(1), y)))],
  })[0];
}

/** Rows scaled to unit L2 norm: y = x / sqrt(sum x^2) (tfjs's max(||x||, 1e-12) guard only differs for all-zero rows). */
export function l2Normalize(x: Sym): Sym {
  return div(x, sqrt(reduceSum(mul(x, x), [-1], true)));
}

/** Max over `axes` (keepdims): dx = g where x equals the max (every tied position, as tfjs). */
export function reduceMax(x: Sym, axes: number[], keepdims = false): Sym {
  const gr = g0(x);
  const ax = axes.map((a) => norm(a, x.rank));
  const kept = reduced(x, axes, true);
  return gr.emit('ReduceMax', [x, gr.ints(ax)], [reduced(x, axes, keepdims)], {
    attrs: { keepdims: keepdims ? 1 : 0 },
    backward: ([g], [y]) => {
      const hit = gr.emit('Cast', [gr.emit('Equal', [x, reshape(y, kept)], [[...x.shape]], { dtype: 'float32' })[0]], [[...x.shape]], { attrs: { to: 1 } })[0];
      return [mul(expandTo(g!, kept, x.shape), hit)];
    },
  })[0];
}

/**
 * 2-D convolution, NCHW input, OIHW weight, explicit pads [top, left, bottom, right], optional bias:
 * dx = ConvTranspose(g, w) (same strides and pads); dw = Conv(pad(x)ᵀ, gᵀ, dilation = stride) sliced
 * to the kernel (the batch plays the channel); db = sum(g) over batch and space.
 */
export function conv2d(x: Sym, w: Sym, b: Sym | undefined, stride: number, pads: [number, number, number, number]): Sym {
  const gr = g0(x);
  const [N, C, H, W] = x.shape;
  const [O, C2, kh, kw] = w.shape;
  if (x.rank !== 4 || w.rank !== 4 || C !== C2) throw new Error(`conv2d: input [${x.shape}] (NCHW) and weight [${w.shape}] (OIHW) do not match`);
  const [pt, pl, pb, pr] = pads;
  const Ho = Math.floor((H + pt + pb - kh) / stride) + 1;
  const Wo = Math.floor((W + pl + pr - kw) / stride) + 1;
  const attrs = { strides: [stride, stride], pads, kernel_shape: [kh, kw] };
  const inputs = b ? [x, w, b] : [x, w];
  return gr.emit('Conv', inputs, [[N, O, Ho, Wo]], {
    attrs,
    backward: ([g]) => {
      const G = g!;
      let gx: Sym | null = null;
      let gw: Sym | null = null;
      if (x.requiresGrad) {
        const oph = H - (stride * (Ho - 1) + kh - pt - pb);
        const opw = W - (stride * (Wo - 1) + kw - pl - pr);
        gx = gr.emit('ConvTranspose', [G, w], [[N, C, H, W]], { attrs: { ...attrs, output_padding: [oph, opw] } })[0];
      }
      if (w.requiresGrad) {
        const xp = pt || pl || pb || pr ? gr.emit('Pad', [x, gr.ints([0, 0, pt, pl, 0, 0, pb, pr])], [[N, C, H + pt + pb, W + pl + pr]])[0] : x;
        const xt = transpose(xp, [1, 0, 2, 3]);
        const gt = transpose(G, [1, 0, 2, 3]);
        const rh = H + pt + pb - (Ho - 1) * stride;
        const rw = W + pl + pr - (Wo - 1) * stride;
        let r = gr.emit('Conv', [xt, gt], [[C, O, rh, rw]], { attrs: { dilations: [stride, stride], kernel_shape: [Ho, Wo] } })[0];
        if (rh !== kh) r = sliceAxis(r, 2, 0, kh);
        if (rw !== kw) r = sliceAxis(r, 3, 0, kw);
        gw = transpose(r, [1, 0, 2, 3]);
      }
      const gb = b?.requiresGrad ? reduceSum(G, [0, 2, 3]) : null;
      return b ? [gx, gw, gb] : [gx, gw];
    },
  })[0];
}

/** TensorFlow's 'same' padding of one axis for kernel k and stride s: [before, after]. */
export function samePads(size: number, k: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + k - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** |x|: dx = g sign(x). */
export const abs = (x: Sym): Sym => g0(x).emit('Abs', [x], [[...x.shape]], { backward: ([g]) => [mul(g!, sign(x))] })[0];

/** log(x): dx = g / x. */
export const log = (x: Sym): Sym => g0(x).emit('Log', [x], [[...x.shape]], { backward: ([g]) => [div(g!, x)] })[0];

/**
 * log(1 + x), accurate for small x (Goldberg: with u = 1 + x, log1p = x when u == 1, else x log(u) / (u - 1)):
 * dx = g / (1 + x).
 */
export function log1p(x: Sym): Sym {
  const gr = x.graph;
  const shape = [...x.shape];
  const u = gr.emit('Add', [x, gr.scalar(1)], [shape])[0];
  const w = gr.emit('Sub', [u, gr.scalar(1)], [shape])[0];
  const exact = gr.emit('Div', [gr.emit('Mul', [x, gr.emit('Log', [u], [shape])[0]], [shape])[0], w], [shape])[0];
  const isOne = gr.emit('Equal', [w, gr.scalar(0)], [shape])[0];
  return gr.emit('Where', [isOne, x, exact], [shape], { dtype: 'float32', backward: ([g]) => [null, div(g!, u), null] })[0];
}

/** max(x, c) for a constant c: dx = g [x > c]. */
export function maximumConst(x: Sym, c: number): Sym {
  const gr = g0(x);
  const cs = gr.scalar(c);
  return gr.emit('Max', [x, cs], [[...x.shape]], {
    backward: ([g]) => [mul(g!, gr.emit('Cast', [gr.emit('Greater', [x, cs], [[...x.shape]])[0]], [[...x.shape]], { attrs: { to: 1 } })[0]), null],
  })[0];
}

/** Max over `axes` as a constant for autodiff (no gradient): the shift of a log-sum-exp, which cancels out. */
export function reduceMaxConst(x: Sym, axes: number[], keepdims = true): Sym {
  const gr = g0(x);
  return gr.emit('ReduceMax', [x, gr.ints(axes.map((a) => norm(a, x.rank)))], [reduced(x, axes, keepdims)], { attrs: { keepdims: keepdims ? 1 : 0 } })[0];
}
