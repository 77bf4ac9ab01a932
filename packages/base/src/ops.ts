/**
 * `Ops<T>`: the tensor operations every model and loss in distill is written against, once. Two
 * engines implement it: `tfOps` (tfjs tensors, tfjs autodiff) and `graphOps` (symbols of the onnx
 * engine's graph builder, reverse-mode autodiff into an ONNX backward graph). A tower or a loss is a
 * function `(o: Ops<T>, ...) => T`, so the same definition runs on both engines.
 *
 * Conventions: shapes are static; binary ops broadcast as numpy; images are NCHW; a convolution
 * weight is [kh, kw, in, out] (distill's parameter layout) with TensorFlow 'same' padding; ids are
 * the engine's integer tensors; masks are float 1/0. Ops made per forward pass carry the pass's
 * dropout (`dropout(x, rate)` is the identity when the pass is not training).
 */
export interface Ops<T> {
  /** 'tfjs' or 'graph' (for the few places that must know, e.g. error messages). */
  readonly engine: 'tfjs' | 'graph';
  shape(x: T): readonly number[];
  /** A float32 constant (no gradient) in the same graph / backend as `like`. */
  constant(like: T, data: ArrayLike<number>, shape: number[]): T;
  scalar(like: T, v: number): T;
  /** An integer constant (indices for `take` / `gather`) in the engine's int type. */
  intConstant(like: T, data: ArrayLike<number>, shape: number[]): T;

  add(a: T, b: T): T;
  sub(a: T, b: T): T;
  mul(a: T, b: T): T;
  div(a: T, b: T): T;
  neg(x: T): T;
  /** x * c for a number c. */
  scale(x: T, c: number): T;
  exp(x: T): T;
  log(x: T): T;
  /** log(1 + x), accurate for small x. */
  log1p(x: T): T;
  sqrt(x: T): T;
  abs(x: T): T;
  relu(x: T): T;
  tanh(x: T): T;
  sigmoid(x: T): T;
  /** 0.5 x (1 + erf(x / sqrt 2)) */
  geluErf(x: T): T;
  /** 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
  geluTanh(x: T): T;
  /** max(x, c) for a number c (gradient where x > c). */
  maximumConst(x: T, c: number): T;
  /** min(x, c) for a number c (gradient where x < c). */
  minimumConst(x: T, c: number): T;

  /** Batched matrix product a @ b over the last two axes (leading axes broadcast). */
  matmul(a: T, b: T): T;
  /** a @ b^T for 2-D a [M, K], b [N, K]. */
  matmulT(a: T, b: T): T;
  /** x W + b for x [..., in], W [in, out], b [out]. */
  linear(x: T, w: T, b?: T): T;
  /** LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * gamma + beta. */
  layerNorm(x: T, gamma: T, beta: T, eps: number): T;
  /** softmax over the last axis. */
  softmax(x: T): T;

  reshape(x: T, shape: number[]): T;
  transpose(x: T, perm: number[]): T;
  concat(xs: T[], axis: number): T;
  /** x[..., start:end, ...] along one axis. */
  sliceAxis(x: T, axis: number, start: number, end: number): T;
  /** Broadcast to `shape` (numpy rules). */
  expand(x: T, shape: number[]): T;
  reduceSum(x: T, axes: number[], keepdims?: boolean): T;
  reduceMean(x: T, axes: number[], keepdims?: boolean): T;
  /** Max over axes; the gradient goes to every position equal to the max. */
  reduceMax(x: T, axes: number[], keepdims?: boolean): T;
  /** x as a constant for autodiff (zero gradient). */
  stopGradient(x: T): T;

  /** Rows of a table: table[ids], shape [...ids, ...table.shape[1:]] (embedding lookup; exact gradients with repeated ids). */
  gather(table: T, ids: T): T;
  /** flat[idx] for a 1-D x and distinct int indices (an int tensor of the engine). */
  take(x: T, idx: T): T;
  /**
   * 2-D convolution, NCHW x, weight [kh, kw, in / group, out], optional bias [out], TensorFlow 'same'
   * padding. `group` (default 1) splits the input and output channels into that many independent
   * convolutions (depthwise: group = in = out, weight [kh, kw, 1, C]). Grouped convolutions have a
   * forward and gradients on both engines (the onnx engine's: autodiff's Conv rule with groups).
   */
  conv2dSame(x: T, w: T, b: T | undefined, stride: number, group?: number): T;
  /** Inverted dropout at one site (identity when the pass does not train or rate is 0). */
  dropout(x: T, rate: number): T;
  /** Max over axes as a constant: zero gradient, and nothing is differentiated through it (the shift of a log-sum-exp). */
  reduceMaxConst(x: T, axes: number[], keepdims?: boolean): T;
}

/** A model's parameters by name, as tensors of one engine. */
export type TensorParams<T> = Record<string, T>;
