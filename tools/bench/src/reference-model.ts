import * as tf from '@tensorflow/tfjs';

/**
 * The reference transformer of the training-step benchmark: pre-LN encoder layers on a given
 * [batch, seq, dim] input (no embedding), a final LayerNorm, mean pooling over the sequence and
 * a simple scalar loss, trained with AdamW. Self-contained (tfjs only), so @distill/core does not
 * depend on other distill packages. tools/bench/reference_step.py is the same model in PyTorch.
 */
export interface ReferenceConfig {
  layers: number;
  batch: number;
  seq: number;
  dim: number;
  heads: number;
  mlp: number;
}

/** The size the benchmark measures (issue #2 item 5): ~3.16M params, ~41 GFLOP per step. */
export const REFERENCE_CONFIG: ReferenceConfig = { layers: 4, batch: 32, seq: 65, dim: 256, heads: 4, mlp: 1024 };

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}
export const ADAMW_DEFAULTS: AdamWConfig = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

/** Parameter count: per layer 2 LayerNorms, QKV + output projection, 2 MLP linears; plus a final LayerNorm. */
export function paramCount(c: ReferenceConfig): number {
  const d = c.dim;
  const perLayer = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * c.mlp + c.mlp) + (c.mlp * d + d);
  return c.layers * perLayer + 2 * d;
}

/**
 * Matmul FLOPs of one training step (2 per multiply-add), the convention PyTorch/ML papers use.
 * Forward: QKV, attention scores, attention x V, output projection, two MLP linears. Backward:
 * twice the forward (gradient w.r.t. inputs and w.r.t. weights), except that the first layer's
 * QKV needs no input gradient (the input is data). Element-wise ops (LayerNorm, softmax, GELU,
 * AdamW) add < 1% and are not counted.
 */
export function stepFlops(c: ReferenceConfig): { forward: number; backward: number; total: number } {
  const t = c.batch * c.seq;
  const dh = c.dim / c.heads;
  const qkv = 2 * t * c.dim * 3 * c.dim;
  const attn = 2 * (2 * c.batch * c.heads * c.seq * c.seq * dh);
  const out = 2 * t * c.dim * c.dim;
  const mlp = 2 * (2 * t * c.dim * c.mlp);
  const forward = c.layers * (qkv + attn + out + mlp);
  const backward = 2 * forward - qkv;
  return { forward, backward, total: forward + backward };
}

export interface ReferenceModel {
  config: ReferenceConfig;
  /** Trainable variables in a fixed order (the order of tools/bench/reference_step.py). */
  params: tf.Variable[];
  /** AdamW state. */
  m: tf.Variable[];
  v: tf.Variable[];
  step: number;
  /** Fixed input [batch, seq, dim] and target [batch, dim]. */
  x: tf.Tensor3D;
  target: tf.Tensor2D;
  dispose(): void;
}

let modelCounter = 0;

/** Builds the model with N(0, 0.02) weights (zero biases, unit LayerNorm gains) from `seed`. */
export function createReferenceModel(config: ReferenceConfig = REFERENCE_CONFIG, seed = 1): ReferenceModel {
  if (config.dim % config.heads !== 0) throw new Error(`dim ${config.dim} is not divisible by heads ${config.heads}`);
  const id = `bench_ref_${modelCounter++}`;
  const { dim: d, mlp } = config;
  let s = seed * 1000;
  const params: tf.Variable[] = [];
  const add = (name: string, t: tf.Tensor) => {
    params.push(tf.variable(t, true, `${id}/${name}`));
    t.dispose(); // the variable holds its own reference to the data
  };
  const w = (shape: number[]) => tf.randomNormal(shape, 0, 0.02, 'float32', s++);
  for (let l = 0; l < config.layers; l++) {
    add(`l${l}/ln1_g`, tf.ones([d]));
    add(`l${l}/ln1_b`, tf.zeros([d]));
    add(`l${l}/wqkv`, w([d, 3 * d]));
    add(`l${l}/bqkv`, tf.zeros([3 * d]));
    add(`l${l}/wo`, w([d, d]));
    add(`l${l}/bo`, tf.zeros([d]));
    add(`l${l}/ln2_g`, tf.ones([d]));
    add(`l${l}/ln2_b`, tf.zeros([d]));
    add(`l${l}/w1`, w([d, mlp]));
    add(`l${l}/b1`, tf.zeros([mlp]));
    add(`l${l}/w2`, w([mlp, d]));
    add(`l${l}/b2`, tf.zeros([d]));
  }
  add('lnf_g', tf.ones([d]));
  add('lnf_b', tf.zeros([d]));
  const m = params.map((p) => tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
  const v = params.map((p) => tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
  const x = tf.randomNormal([config.batch, config.seq, d], 0, 1, 'float32', seed * 1000 + 999) as tf.Tensor3D;
  const target = tf.randomNormal([config.batch, d], 0, 1, 'float32', seed * 1000 + 998) as tf.Tensor2D;
  return {
    config,
    params,
    m,
    v,
    step: 0,
    x,
    target,
    dispose() {
      tf.dispose([...params, ...m, ...v, x, target]);
    },
  };
}

const LN_EPS = 1e-5;

function layerNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, LN_EPS))), g), b);
}

/** gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (PyTorch's approximate='tanh'). */
function gelu(x: tf.Tensor2D): tf.Tensor2D {
  // x*x*x, not tf.pow(x, 3): wasm's Pow (and its gradient) is ~4x slower than two multiplies.
  const inner = tf.mul(tf.add(x, tf.mul(tf.mul(tf.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}

/** Forward pass on [batch, seq, dim]; returns the scalar loss mean((meanpool(LN(h)) - target)^2). */
export function referenceLoss(model: ReferenceModel, params: tf.Tensor[] = model.params): tf.Scalar {
  const { batch: B, seq: L, dim: D, heads: H, layers } = model.config;
  const dh = D / H;
  let h = tf.reshape(model.x, [B * L, D]) as tf.Tensor2D;
  let i = 0;
  const next = () => params[i++];
  for (let l = 0; l < layers; l++) {
    const [ln1g, ln1b, wqkv, bqkv, wo, bo, ln2g, ln2b, w1, b1, w2, b2] = Array.from({ length: 12 }, next);
    const a = layerNorm(h, ln1g, ln1b);
    const qkv = tf.add(tf.matMul(a, wqkv as tf.Tensor2D), bqkv);
    // [B*L, 3D] -> [3, B, H, L, dh]
    const heads = tf.transpose(tf.reshape(qkv, [B, L, 3, H, dh]), [2, 0, 3, 1, 4]);
    const [q, k, v] = tf.unstack(heads, 0) as tf.Tensor4D[];
    const scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh));
    const ctx = tf.matMul(tf.softmax(scores, -1), v); // [B, H, L, dh]
    const merged = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [B * L, D]) as tf.Tensor2D;
    h = tf.add(h, tf.add(tf.matMul(merged, wo as tf.Tensor2D), bo));
    const c = layerNorm(h, ln2g, ln2b);
    const f = gelu(tf.add(tf.matMul(c, w1 as tf.Tensor2D), b1));
    h = tf.add(h, tf.add(tf.matMul(f, w2 as tf.Tensor2D), b2));
  }
  const out = layerNorm(h, next(), next());
  const pooled = tf.mean(tf.reshape(out, [B, L, D]), 1);
  return tf.mean(tf.square(tf.sub(pooled, model.target)));
}

/** Loss and gradients (same order as model.params), without updating anything. */
export function referenceGrads(model: ReferenceModel): { loss: tf.Scalar; grads: tf.Tensor[] } {
  const { value, grads } = tf.variableGrads(() => referenceLoss(model), model.params);
  return { loss: value, grads: model.params.map((p) => grads[p.name]) };
}

/**
 * AdamW (decoupled weight decay, PyTorch's torch.optim.AdamW):
 * p <- p (1 - lr wd);  m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  p <- p - lr m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps).
 */
export function adamwUpdate(model: ReferenceModel, grads: tf.Tensor[], opt: AdamWConfig = ADAMW_DEFAULTS): void {
  model.step += 1;
  const t = model.step;
  const bc1 = 1 - opt.beta1 ** t;
  const bc2 = 1 - opt.beta2 ** t;
  tf.tidy(() => {
    model.params.forEach((p, j) => {
      const g = grads[j];
      const m = tf.add(tf.mul(model.m[j], opt.beta1), tf.mul(g, 1 - opt.beta1));
      const v = tf.add(tf.mul(model.v[j], opt.beta2), tf.mul(tf.square(g), 1 - opt.beta2));
      const denom = tf.add(tf.sqrt(tf.div(v, bc2)), opt.eps);
      const decayed = tf.mul(p, 1 - opt.lr * opt.weightDecay);
      p.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), opt.lr / bc1)));
      model.m[j].assign(m);
      model.v[j].assign(v);
    });
  });
}

/** One training step: forward + backward + AdamW. Returns the loss (before the update). */
export function referenceStep(model: ReferenceModel, opt: AdamWConfig = ADAMW_DEFAULTS): number {
  const { loss, grads } = referenceGrads(model);
  adamwUpdate(model, grads, opt);
  const value = loss.dataSync()[0];
  tf.dispose([loss, ...grads]);
  return value;
}
