/**
 * The gradient rule of every differentiable ONNX primitive, in one table: op name -> backward rule,
 * each with its math. A rule gets dL/dy of the node's outputs (null where none) and returns dL/dx of
 * each input (null where the input is a constant or needs none), written with the same differentiable
 * ops (ops.ts), so the backward graph is standard ONNX too. Broadcasting inputs get their gradient
 * summed back to their shape (`sumTo`). Ops whose gradient is not a single primitive's are written with
 * `customGradient` (ops.ts: log1p) or `noGradient` (reduceMaxConst).
 */
import { type Grad, type GradContext, type GradRule, type Sym, defineGradient, sameShape } from './graph.js';
import { gatherGradOneHot, graphDevice } from './gather-grad-webgpu.js';
import {
  add,
  concat,
  div,
  exp,
  gemm,
  matmul,
  mul,
  neg,
  reduceMean,
  reduceSum,
  reshape,
  scale,
  sign,
  sliceAxis,
  split,
  sub,
  tanh,
  transpose,
} from './ops.js';

const norm = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** `axes` as non-negative axes of x (the ONNX input and the rule's `params.axes`). */
export const axesParam = (x: Sym, axes: number[]): number[] => axes.map((a) => norm(a, x.rank));

/** x's shape reduced over `axes` (kept as 1 with keepdims). */
export function reducedShape(x: Sym, axes: number[], keepdims: boolean): number[] {
  const ax = axesParam(x, axes);
  return keepdims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i));
}

/** Sums a broadcast gradient back to `shape` (dy/dx of numpy broadcasting). */
export function sumTo(g: Sym, shape: readonly number[]): Sym {
  if (sameShape(g.shape, shape)) return g;
  const pad = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) if (i < pad || (shape[i - pad] === 1 && g.shape[i] !== 1)) axes.push(i);
  return reshape(reduceSum(g, axes, true), [...shape]);
}

/** Broadcasts a reduced gradient back to x's shape (the gradient of a sum over `axes`). */
function expandTo(g: Sym, x: Sym, axes: number[]): Sym {
  const gr = g.graph;
  const k = reshape(g, reducedShape(x, axes, true));
  return gr.emit('Expand', [k, gr.ints([...x.shape])], [[...x.shape]])[0];
}

/** [x > c] as float32 (no gradient). */
const greater = (x: Sym, c: Sym): Sym => {
  const gr = x.graph;
  return gr.emit('Cast', [gr.emit('Greater', [x, c], [[...x.shape]])[0]], [[...x.shape]], { attrs: { to: 1 } })[0];
};

/** Only the inputs that need a gradient get one; broadcast inputs get it summed back to their shape. */
const forInputs = (ctx: GradContext, grads: (Sym | null)[]): Grad[] =>
  ctx.inputs.map((x, i) => (grads[i] && x.requiresGrad ? sumTo(grads[i]!, x.shape) : null));

const SQRT_2_PI = Math.sqrt(2 / Math.PI);
const swapLast = (r: number) => [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2];

/**
 * The gradient of Gather (axis 0): dtable[v] = sum_{n: ids[n] = v} g[n], written without a reducing scatter.
 * onnxruntime's CPU ScatterND(reduction='add') splits the index rows over threads and adds without
 * locks, so rows of a repeated id lose updates at 2+ threads. Here the rows are sorted by id (TopK),
 * each id's rows summed as a difference of a float64 running sum (CumSum) over its first..last row,
 * and the sums written with a plain ScatterND whose ids are distinct: float32-rounded exact sums,
 * bit-identical at any thread count, in O(rows x width) work besides the zero table.
 */
function gatherGrad(table: Sym, ids: Sym, g: Sym): Sym {
  if (graphDevice() === 'webgpu') return gatherGradOneHot(table, ids, g); // WebGPU has no TopK/Unique/float64 kernels
  const gr = table.graph;
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
  const rows = gr.emit('Cast', [rowsAt(reshape(g, [n, w]), perm)], [[n, w]], {
    attrs: { to: 11 },
    dtype: 'float64',
  })[0];
  const running = gr.emit('CumSum', [rows, int64(0)], [[n, w]])[0];
  // sum over first..last = running[last] - running[first] + rows[first]
  const sums64 = gr.emit(
    'Add',
    [gr.emit('Sub', [rowsAt(running, last), rowsAt(running, first)], [[n, w]])[0], rowsAt(rows, first)],
    [[n, w]],
  )[0];
  const sums = gr.emit('Cast', [sums64], [[n, w]], { attrs: { to: 1 }, dtype: 'float32' })[0];
  const zeros = gr.emit('ConstantOfShape', [gr.ints([table.shape[0], w])], [[table.shape[0], w]], {
    dtype: 'float32',
  })[0]; // float 0 by default
  const at = gr.emit('Unsqueeze', [uniq, gr.ints([1])], [[n, 1]])[0];
  return reshape(gr.emit('ScatterND', [zeros, at, sums], [[table.shape[0], w]])[0], [...table.shape]);
}

/** Op name -> backward rule. `g` is dL/dy of the (first) output, `y` the output, `x`, `a`, `b` the inputs. */
export const GRADIENT_RULES: Readonly<Record<string, GradRule>> = {
  /** a + b: da = g, db = g. */
  Add: ([g], ctx) => forInputs(ctx, [g, g]),
  /** a - b: da = g, db = -g. */
  Sub: ([g], ctx) => forInputs(ctx, [g, ctx.inputs[1].requiresGrad ? neg(g!) : null]),
  /** a * b: da = g b, db = g a. */
  Mul: ([g], ctx) => {
    const [a, b] = ctx.inputs;
    return forInputs(ctx, [a.requiresGrad ? mul(g!, b) : null, b.requiresGrad ? mul(g!, a) : null]);
  },
  /** a / b: da = g / b, db = -g a / b^2. */
  Div: ([g], ctx) => {
    const [a, b] = ctx.inputs;
    return forInputs(ctx, [
      a.requiresGrad ? div(g!, b) : null,
      b.requiresGrad ? neg(div(mul(g!, a), mul(b, b))) : null,
    ]);
  },
  /** max(a, b): da = g [a > b], db = g [b >= a] (a tie sends the gradient to b: max(x, c) is flat in x there). */
  Max: ([g], ctx) => {
    const [a, b] = ctx.inputs;
    return forInputs(ctx, [
      a.requiresGrad ? mul(g!, greater(a, b)) : null,
      b.requiresGrad ? mul(g!, sub(a.graph.scalar(1), greater(a, b))) : null,
    ]);
  },
  /** -x: dx = -g. */
  Neg: ([g]) => [neg(g!)],
  /** tanh(x): dx = g (1 - y^2). */
  Tanh: ([g], { outputs: [y], graph }) => [mul(g!, sub(graph.scalar(1), mul(y, y)))],
  /** exp(x): dx = g y. */
  Exp: ([g], { outputs: [y] }) => [mul(g!, y)],
  /** sqrt(x): dx = g / (2 y). */
  Sqrt: ([g], { outputs: [y] }) => [div(g!, scale(y, 2))],
  /** max(x, 0): dx = g [y > 0] (sign(y) is 0 or 1). */
  Relu: ([g], { outputs: [y] }) => [mul(g!, sign(y))],
  /** sigmoid(x): dx = g y (1 - y). */
  Sigmoid: ([g], { outputs: [y], graph }) => [mul(g!, mul(y, sub(graph.scalar(1), y)))],
  /** |x|: dx = g sign(x). */
  Abs: ([g], { inputs: [x] }) => [mul(g!, sign(x))],
  /** log(x): dx = g / x. */
  Log: ([g], { inputs: [x] }) => [div(g!, x)],
  /**
   * approximate 'tanh': y = 0.5 x (1 + t), t = tanh(u), u = sqrt(2/pi)(x + 0.044715 x^3):
   *   dx = g (0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi)(1 + 3 * 0.044715 x^2));
   * exact: y = 0.5 x (1 + erf(x / sqrt 2)): dx = g (0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)).
   */
  Gelu: ([g], { inputs: [x], attrs, graph: gr }) => {
    if (attrs.approximate === 'tanh') {
      const x2 = mul(x, x);
      const u = mul(x, add(scale(x2, 0.044715 * SQRT_2_PI), gr.scalar(SQRT_2_PI)));
      const t = tanh(u);
      const left = scale(add(t, gr.scalar(1)), 0.5);
      const du = add(scale(x2, 3 * 0.044715 * SQRT_2_PI), gr.scalar(SQRT_2_PI));
      const right = mul(mul(scale(x, 0.5), sub(gr.scalar(1), mul(t, t))), du);
      return [mul(g!, add(left, right))];
    }
    const cdf = scale(add(gr.emit('Erf', [scale(x, Math.SQRT1_2)], [[...x.shape]])[0], gr.scalar(1)), 0.5);
    const pdf = scale(exp(scale(mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
    return [mul(g!, add(cdf, mul(x, pdf)))];
  },
  /** reshape(x): dx = reshape(g, x.shape). */
  Reshape: ([g], { inputs: [x] }) => [reshape(g!, [...x.shape]), null],
  /** transpose(x, perm): dx = transpose(g, perm^-1). */
  Transpose: ([g], { attrs }) => {
    const perm = attrs.perm as number[];
    return [
      transpose(
        g!,
        perm.map((_, i) => perm.indexOf(i)),
      ),
    ];
  },
  /** split(x) into y_i: dx = concat(g_i, or zeros for an unused piece). */
  Split: (gs, { outputs, attrs, graph }) => [
    concat(
      gs.map((g, i) => g ?? graph.constant(new Float32Array(outputs[i].size), [...outputs[i].shape])),
      attrs.axis as number,
    ),
    null,
  ],
  /** concat(x_i): dx_i = split(g)_i. */
  Concat: ([g], { inputs, attrs }) => {
    const ax = attrs.axis as number;
    return split(
      g!,
      ax,
      inputs.map((s) => s.shape[ax]),
    );
  },
  /** x[start:end] on one axis: dx = g padded with zeros back to x's shape. */
  Slice: ([g], { inputs: [x], params, graph }) => {
    const { axis, start, end } = params as { axis: number; start: number; end: number };
    const pads = new Array(2 * x.rank).fill(0);
    pads[axis] = start;
    pads[x.rank + axis] = x.shape[axis] - end;
    return [graph.emit('Pad', [g!, graph.ints(pads)], [[...x.shape]])[0], null, null, null];
  },
  /** Expand(x) to a shape: dx = sumTo(g, x.shape). */
  Expand: ([g], { inputs: [x] }) => [sumTo(g!, x.shape), null],
  /** sum over axes: dx = broadcast(g). */
  ReduceSum: ([g], { inputs: [x], params }) => [expandTo(g!, x, params.axes as number[]), null],
  /** mean over axes: dx = broadcast(g) / n, n = the number of values each mean covers. */
  ReduceMean: ([g], { inputs: [x], params }) => {
    const axes = params.axes as number[];
    const n = x.size / reducedShape(x, axes, true).reduce((p, q) => p * q, 1);
    return [expandTo(scale(g!, 1 / n), x, axes), null];
  },
  /** max over axes: dx = broadcast(g) where x equals the max (every tied position, as tfjs). */
  ReduceMax: ([g], { inputs: [x], outputs: [y], params, graph: gr }) => {
    const axes = params.axes as number[];
    const hit = gr.emit(
      'Cast',
      [gr.emit('Equal', [x, reshape(y, reducedShape(x, axes, true))], [[...x.shape]], { dtype: 'float32' })[0]],
      [[...x.shape]],
      {
        attrs: { to: 1 },
      },
    )[0];
    return [mul(expandTo(g!, x, axes), hit), null];
  },
  /**
   * y = op(A) op(B) + bias (one Gemm): dA = g op(B)^T, dB = op(A)^T g, written with Gemm's trans flags
   * (no transposes); dbias = g summed over the rows.
   */
  Gemm: ([g], { inputs: [a, b, bias], attrs }) => {
    const G = g!;
    const tA = !!attrs.transA;
    const tB = !!attrs.transB;
    let ga: Sym | null = null;
    let gb: Sym | null = null;
    if (a.requiresGrad)
      ga = tA ? gemm(b, G, undefined, { transA: tB, transB: true }) : gemm(G, b, undefined, { transB: !tB });
    if (b.requiresGrad)
      gb = tB ? gemm(G, a, undefined, { transA: true, transB: tA }) : gemm(a, G, undefined, { transA: !tA });
    const gbias = bias?.requiresGrad ? sumTo(G, bias.shape) : null;
    return bias ? [ga, gb, gbias] : [ga, gb];
  },
  /** batched a @ b: da = g b^T, db = a^T g. */
  MatMul: ([g], { inputs: [a, b] }) => {
    const r = a.rank;
    return [
      a.requiresGrad ? matmul(g!, transpose(b, swapLast(r))) : null,
      b.requiresGrad ? matmul(transpose(a, swapLast(r)), g!) : null,
    ];
  },
  /** softmax over the last axis: dx = y (g - sum(g y)) = g y - y sum(g y). */
  Softmax: ([g], { outputs: [y] }) => {
    const gy = mul(g!, y);
    return [sub(gy, mul(y, reduceSum(gy, [-1], true)))];
  },
  /**
   * LayerNorm over the last axis, outputs y, mean, rstd = 1/std: xhat = (x - mean) rstd;
   * dgamma = sum(g xhat); dbeta = sum(g); dx = rstd (d - mean(d) - xhat mean(d xhat)), d = g gamma.
   */
  LayerNormalization: ([g], { inputs: [x, gamma, beta], outputs: [, mean, rstd] }) => {
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
  /** table[ids] (axis 0): dtable[v] = sum of g over the positions whose id is v (gatherGrad); ids: none. */
  Gather: ([g], { inputs: [table, ids] }) => [gatherGrad(table, ids, g!), null],
  /** clip(x, lo, hi): dx = g [lo <= x <= hi] (bounds included, as tfjs's clipByValue and torch's clamp). */
  Clip: ([g], { inputs: [x], params, graph: gr }) => {
    const { lo, hi } = params as { lo: number; hi: number };
    const shape = [...x.shape];
    const inside = gr.emit(
      'And',
      [
        gr.emit('GreaterOrEqual', [x, gr.scalar(lo)], [shape])[0],
        gr.emit('LessOrEqual', [x, gr.scalar(hi)], [shape])[0],
      ],
      [shape],
    )[0];
    return [mul(g!, gr.emit('Cast', [inside], [shape], { attrs: { to: 1 } })[0]), null, null];
  },
  /**
   * 2-D convolution (NCHW x [N, C, H, W], OIHW w [O, C/k, kh, kw], k = group, stride s, pads), y [N, O, Ho, Wo]:
   * dx = ConvTranspose(g, w) with the same strides, pads and group (its weight layout [O, C/k, kh, kw] is w's),
   * plus the output padding that gives back H x W;
   * dw[o, c, i, j] = sum_{n,p,q} pad(x)[n, k(o) C/k + c, s p + i, s q + j] g[n, o, p, q]: a Conv with dilation s whose
   * "channels" are the batch: input pad(x) as [C/k, k N, Hp, Wp] (group-major), weight gᵀ [O, N, Ho, Wo], group k,
   * so output channel o sums over the N samples of its own group only; the result [C/k, O, rh, rw] is sliced to the
   * kernel and transposed (k = 1: the plain x^T * g^T correlation);
   * db = sum(g) over batch and space.
   */
  Conv: ([g], { inputs: [x, w, b], attrs, graph: gr }) => {
    const G = g!;
    const [N, C, H, W] = x.shape;
    const [, Cg, kh, kw] = w.shape;
    const [, O, Ho, Wo] = G.shape;
    const k = (attrs.group as number | undefined) ?? 1;
    const stride = (attrs.strides as number[])[0];
    const [pt, pl, pb, pr] = attrs.pads as number[];
    let gx: Sym | null = null;
    let gw: Sym | null = null;
    if (x.requiresGrad) {
      const oph = H - (stride * (Ho - 1) + kh - pt - pb);
      const opw = W - (stride * (Wo - 1) + kw - pl - pr);
      gx = gr.emit('ConvTranspose', [G, w], [[N, C, H, W]], { attrs: { ...attrs, output_padding: [oph, opw] } })[0];
    }
    if (w.requiresGrad) {
      const [Hp, Wp] = [H + pt + pb, W + pl + pr];
      const xp =
        pt || pl || pb || pr ? gr.emit('Pad', [x, gr.ints([0, 0, pt, pl, 0, 0, pb, pr])], [[N, C, Hp, Wp]])[0] : x;
      // [N, C, Hp, Wp] -> [N, k, C/k, Hp, Wp] -> [C/k, k, N, Hp, Wp] -> [C/k, k N, Hp, Wp]
      const xt =
        k === 1
          ? transpose(xp, [1, 0, 2, 3])
          : reshape(transpose(reshape(xp, [N, k, Cg, Hp, Wp]), [2, 1, 0, 3, 4]), [Cg, k * N, Hp, Wp]);
      const gt = transpose(G, [1, 0, 2, 3]);
      const rh = Hp - (Ho - 1) * stride;
      const rw = Wp - (Wo - 1) * stride;
      const cAttrs: Record<string, number | number[]> = { dilations: [stride, stride], kernel_shape: [Ho, Wo] };
      if (k > 1) cAttrs.group = k;
      let r = gr.emit('Conv', [xt, gt], [[Cg, O, rh, rw]], { attrs: cAttrs })[0];
      if (rh !== kh) r = sliceAxis(r, 2, 0, kh);
      if (rw !== kw) r = sliceAxis(r, 3, 0, kw);
      gw = transpose(r, [1, 0, 2, 3]);
    }
    const gb = b?.requiresGrad ? reduceSum(G, [0, 2, 3]) : null;
    return b ? [gx, gw, gb] : [gx, gw];
  },
};

for (const [op, rule] of Object.entries(GRADIENT_RULES)) defineGradient(op, rule);
