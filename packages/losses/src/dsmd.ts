/**
 * DSMD's four losses (spec section E), each written once over `Ops<T>` (`...Ops` functions: the tfjs
 * engine and the onnx graph engine run the same definition). The tfjs functions without the suffix
 * are one-line wrappers on `tfOps()` for callers that hold tfjs tensors.
 */
import { DistillError, tf, type Ops } from '@distill/core';
import { checkPair, eyeConst, maxConst, rowDot, shaped, tfLossOps } from './common.js';

export { checkPair, l2n, l2nOps } from './common.js';

type Pair<T> = { image: T; text: T };

// l_i = log(1 + sum_k exp(d_ik)), d_ik = (s_i.q_k - s_i.t_i)/tau, as m + log1p(exp(-m) + sum_k exp(d_ik - m) - 1), m = max(0, max_k d_ik) (a constant)
export function contrastiveDistillPerSampleOps<T>(o: Ops<T>, s: T, t: T, queue: T, temperature: number): T {
  checkPair(shaped(o, s), shaped(o, t), 'contrastive distillation');
  const [B, D] = o.shape(s);
  if (o.shape(queue)[1] !== D)
    throw new DistillError(`contrastive distillation: queue dim ${o.shape(queue)[1]} != feature dim ${D}.`);
  // = logsumexp([s_i.t_i, s_i.Q]/tau) - s_i.t_i/tau, exact in float32 also when the positive dominates (l_i ~ 1e-3),
  // where logsumexp - logit loses digits to cancellation, and without overflow when a key dominates.
  const pos = o.reshape(rowDot(o, s, t), [B, 1]);
  const d = o.scale(o.sub(o.matmulT(s, queue), pos), 1 / temperature);
  const m = o.maximumConst(maxConst(o, d, [1]), 0);
  const rest = o.reduceSum(o.exp(o.sub(d, m)), [1], true);
  return o.reshape(o.add(m, o.log1p(o.sub(o.add(o.exp(o.neg(m)), rest), o.scalar(s, 1)))), [B]);
}

// L_con^m = mean_i CE([s_i.t_i, s_i.Q]/tau, 0)
export function contrastiveDistillOps<T>(o: Ops<T>, s: T, t: T, queue: T, temperature: number): T {
  return o.reduceMean(contrastiveDistillPerSampleOps(o, s, t, queue, temperature), [0]);
}

// L_l1^m = mean_{b,d} |s - t|
export function featureDistillOps<T>(o: Ops<T>, s: T, t: T): T {
  checkPair(shaped(o, s), shaped(o, t), 'feature distillation');
  return o.reduceMean(o.abs(o.sub(s, t)), [0, 1]);
}

// cos(s_i, t_i) = s_i.t_i / max(||s_i|| ||t_i||, eps) (torch CosineSimilarity, eps 1e-6)
export function cosinePerSampleOps<T>(o: Ops<T>, s: T, t: T, eps = 1e-6): T {
  checkPair(shaped(o, s), shaped(o, t), 'similarity distillation');
  return o.div(rowDot(o, s, t), o.maximumConst(o.mul(o.sqrt(rowDot(o, s, s)), o.sqrt(rowDot(o, t, t))), eps));
}

// L_cos^m = 1 - (mean_i cos(s_i, t_i) + 1) / 2
export function similarityDistillOps<T>(o: Ops<T>, s: T, t: T): T {
  const one = o.scalar(s, 1);
  return o.sub(one, o.scale(o.add(o.reduceMean(cosinePerSampleOps(o, s, t), [0]), one), 0.5));
}

export type HingeReduction = 'sum' | 'max';

// T(A,C) = sum_{i!=j} [m + S_ij - S_ii]_+ + [m + S_ij - S_jj]_+  (max: hardest j per i, hardest i per j), S = A C^T
export function hingePairOps<T>(o: Ops<T>, a: T, c: T, margin: number, reduction: HingeReduction): T {
  checkPair(shaped(o, a), shaped(o, c), 'hard-negative distillation');
  const B = o.shape(a)[0];
  const S = o.matmulT(a, c);
  const offDiag = eyeConst(o, a, B, true);
  const diag = o.reduceSum(o.mul(S, eyeConst(o, a, B)), [1]); // S_ii
  const shifted = o.add(S, o.scalar(a, margin));
  const costS = o.mul(o.relu(o.sub(shifted, o.reshape(diag, [B, 1]))), offDiag); // query A_i, negatives C_j
  const costIm = o.mul(o.relu(o.sub(shifted, o.reshape(diag, [1, B]))), offDiag); // query C_j, negatives A_i
  if (reduction === 'max')
    return o.add(o.reduceSum(o.reduceMax(costS, [1]), [0]), o.reduceSum(o.reduceMax(costIm, [0]), [0]));
  return o.add(o.reduceSum(costS, [0, 1]), o.reduceSum(costIm, [0, 1]));
}

export const HND_PAIRS = ['img_img', 'txt_txt', 'img_txt', 'txt_img'] as const;

// L_hnd = T(s^I,t^I) + T(s^T,t^T) + T(s^I,t^T) + T(s^T,t^I)
export function hardNegativeDistillOps<T>(
  o: Ops<T>,
  s: Pair<T>,
  t: Pair<T>,
  margin: number,
  reduction: HingeReduction,
): { total: T; pairs: Record<(typeof HND_PAIRS)[number], T> } {
  const h = (a: T, c: T) => hingePairOps(o, a, c, margin, reduction);
  const pairs = {
    img_img: h(s.image, t.image),
    txt_txt: h(s.text, t.text),
    img_txt: h(s.image, t.text),
    txt_img: h(s.text, t.image),
  };
  return { total: o.add(o.add(o.add(pairs.img_img, pairs.txt_txt), pairs.img_txt), pairs.txt_img), pairs };
}

export type DsmdComponent = 'fd' | 'sd' | 'cd' | 'hnd';
export const DSMD_COMPONENTS: DsmdComponent[] = ['fd', 'sd', 'cd', 'hnd'];

export interface DsmdOptions {
  temperature: number;
  margin: number;
  reduction: HingeReduction;
  /** Which of the four to compute (ablations). */
  enabled: DsmdComponent[];
}

/** The two named modes of spec section E. */
export const DSMD_MODES: Record<'paper' | 'official', Pick<DsmdOptions, 'margin' | 'reduction'>> = {
  paper: { margin: 0, reduction: 'max' },
  official: { margin: 0.2, reduction: 'sum' },
};

/**
 * DSMD's four losses on L2-normalised features, in the balancer's order l1, cos, con, hnd (each
 * summed over the two modalities / four pairs, as the official code). Keys: l1_loss, cos_loss,
 * con_loss, hnd_loss (only the enabled ones).
 */
export function dsmdLossesOps<T>(
  o: Ops<T>,
  s: Pair<T>,
  t: Pair<T>,
  queues: Pair<T> | undefined,
  opts: DsmdOptions,
): Record<string, T> {
  const out: Record<string, T> = {};
  const on = (c: DsmdComponent) => opts.enabled.includes(c);
  if (on('fd')) out.l1_loss = o.add(featureDistillOps(o, s.image, t.image), featureDistillOps(o, s.text, t.text));
  if (on('sd'))
    out.cos_loss = o.add(similarityDistillOps(o, s.image, t.image), similarityDistillOps(o, s.text, t.text));
  if (on('cd')) {
    if (!queues) throw new DistillError('contrastive distillation (cd) needs the feature queues.');
    out.con_loss = o.add(
      contrastiveDistillOps(o, s.image, t.image, queues.image, opts.temperature),
      contrastiveDistillOps(o, s.text, t.text, queues.text, opts.temperature),
    );
  }
  if (on('hnd')) out.hnd_loss = hardNegativeDistillOps(o, s, t, opts.margin, opts.reduction).total;
  return out;
}

// ---- tfjs wrappers (the definitions above on tfOps)
const T = tfLossOps;
type M = tf.Tensor2D;
export const contrastiveDistillPerSample = (s: M, t: M, queue: M, temperature: number) =>
  tf.tidy(() => contrastiveDistillPerSampleOps(T(), s, t, queue, temperature) as tf.Tensor1D);
export const contrastiveDistill = (s: M, t: M, queue: M, temperature: number) =>
  tf.tidy(() => contrastiveDistillOps(T(), s, t, queue, temperature) as tf.Scalar);
export const featureDistill = (s: M, t: M) => tf.tidy(() => featureDistillOps(T(), s, t) as tf.Scalar);
export const cosinePerSample = (s: M, t: M, eps = 1e-6) =>
  tf.tidy(() => cosinePerSampleOps(T(), s, t, eps) as tf.Tensor1D);
export const similarityDistill = (s: M, t: M) => tf.tidy(() => similarityDistillOps(T(), s, t) as tf.Scalar);
export const hingePair = (a: M, c: M, margin: number, reduction: HingeReduction) =>
  tf.tidy(() => hingePairOps(T(), a, c, margin, reduction) as tf.Scalar);
export const hardNegativeDistill = (s: Pair<M>, t: Pair<M>, margin: number, reduction: HingeReduction) =>
  tf.tidy(() => hardNegativeDistillOps(T(), s, t, margin, reduction)) as {
    total: tf.Scalar;
    pairs: Record<(typeof HND_PAIRS)[number], tf.Scalar>;
  };
export const dsmdLosses = (s: Pair<M>, t: Pair<M>, queues: Pair<M> | undefined, opts: DsmdOptions) =>
  tf.tidy(() => dsmdLossesOps(T(), s, t, queues, opts)) as Record<string, tf.Scalar>;
