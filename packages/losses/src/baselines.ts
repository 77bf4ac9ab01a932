/**
 * The baseline losses (spec/baseline-losses.md) and the no-teacher contrastive loss, each written once
 * over `Ops<T>`; the tfjs functions without the `Ops` suffix are one-line wrappers on `tfOps()`.
 */
import { tf, type Ops } from '@distill/core';
import { checkPair, expm1, eyeConst, logSoftmaxRows, maxConst, shaped, square, tfLossOps } from './common.js';

type Pair<T> = { image: T; text: T };

/** Row i's soft targets [B, B] row-major: uniform over the rows with the same group id (no ids: every row its own group). */
export function groupTargetArray(ids: ArrayLike<number> | undefined, B: number): Float32Array {
  const g = ids ?? Array.from({ length: B }, (_, i) => i);
  const t = new Float32Array(B * B);
  for (let i = 0; i < B; i++) {
    let n = 0;
    for (let j = 0; j < B; j++) if (g[i] === g[j]) n++;
    for (let j = 0; j < B; j++) if (g[i] === g[j]) t[i * B + j] = 1 / n;
  }
  return t;
}

// InfoNCE(q, k) = mean_i -sum_j P_ij log softmax(q k^T / tau)_ij, P the same-group targets [B, B]
export function infoNceOps<T>(o: Ops<T>, q: T, k: T, temperature: number, targets: T): T {
  const logp = logSoftmaxRows(o, o.scale(o.matmulT(q, k), 1 / temperature));
  return o.neg(o.reduceMean(o.reduceSum(o.mul(targets, logp), [1]), [0]));
}

// L_clip = (InfoNCE(s^I, s^T) + InfoNCE(s^T, s^I)) / 2: the student's own contrastive loss (no teacher; P is symmetric)
export function contrastiveLossOps<T>(o: Ops<T>, si: T, st: T, temperature: number, targets: T): T {
  checkPair(shaped(o, si), shaped(o, st), 'contrastive');
  return o.scale(o.add(infoNceOps(o, si, st, temperature, targets), infoNceOps(o, st, si, temperature, targets)), 0.5);
}

// KL(p_t || p_s) per row, mean over rows: sum_j p_t,ij z_ij - log sum_j p_s,ij exp(z_ij), z = (T - S) / tau
function klRows<T>(o: Ops<T>, S: T, Tm: T, temperature: number): T {
  const B = o.shape(S)[0];
  const ls = o.scale(S, 1 / temperature);
  const lt = o.scale(Tm, 1 / temperature);
  const z = o.sub(lt, ls);
  const ptz = o.reduceSum(o.mul(o.softmax(lt), z), [1]);
  // Value: the logits cancel before rounding and the log is log1p(sum_j p_s,j expm1(z_j)), so float32 keeps ~1e-6
  // relative even at large tau, where the KL is tiny next to the log-probabilities (log p_t - log p_s loses ~1e-5).
  const exact = o.sub(ptz, o.log1p(o.reduceSum(o.mul(o.softmax(ls), expm1(o, z)), [1])));
  // Gradient: from sum_j p_t,j z_j - lse(lt) + lse(ls), i.e. (p_s - p_t) / tau per logit (no huge terms that cancel
  // at small tau, where the log1p form's gradient loses ~1e-4).
  const lse = (x: T) => o.add(maxConst(o, x, [1]), o.log(o.reduceSum(o.exp(o.sub(x, maxConst(o, x, [1]))), [1], true)));
  const plain = o.sub(ptz, o.reshape(o.sub(lse(lt), lse(ls)), [B]));
  return o.reduceMean(o.add(plain, o.stopGradient(o.sub(exact, plain))), [0]);
}

// L_kd = tau^2 * (KL(p_t^{i2t} || p_s^{i2t}) + KL(p_t^{t2i} || p_s^{t2i})) / 2, p = softmax(in-batch similarities / tau)
export function kdLossOps<T>(o: Ops<T>, s: Pair<T>, t: Pair<T>, temperature: number): T {
  checkPair(shaped(o, s.image), shaped(o, t.image), 'kd');
  const S = o.matmulT(s.image, s.text);
  const Tm = o.matmulT(t.image, t.text);
  const kl = o.add(
    klRows(o, S, Tm, temperature),
    klRows(o, o.transpose(S, [1, 0]), o.transpose(Tm, [1, 0]), temperature),
  );
  return o.scale(kl, (temperature * temperature) / 2);
}

// L_fitnet = mean (s^I - t^I)^2 + mean (s^T - t^T)^2
export function fitnetLossOps<T>(o: Ops<T>, s: Pair<T>, t: Pair<T>): T {
  checkPair(shaped(o, s.image), shaped(o, t.image), 'fitnet');
  checkPair(shaped(o, s.text), shaped(o, t.text), 'fitnet');
  const mse = (a: T, b: T) => o.reduceMean(square(o, o.sub(a, b)), [0, 1]);
  return o.add(mse(s.image, t.image), mse(s.text, t.text));
}

// smoothL1(a, b) = mean huber(|a - b|), huber(d) = 0.5 min(d,1)^2 + (d - min(d,1)): 0.5 d^2 below 1, d - 0.5 above
function smoothL1<T>(o: Ops<T>, a: T, b: T): T {
  const d = o.abs(o.sub(a, b));
  const c = o.minimumConst(d, 1);
  return o.reduceMean(
    o.add(o.scale(square(o, c), 0.5), o.sub(d, c)),
    o.shape(d).map((_, i) => i),
  );
}

// dist_ij = sqrt(max(|x_i|^2 + |x_j|^2 - 2 x_i.x_j, 0) + 1e-12) off the diagonal, 0 on it
function pairwiseDistance<T>(o: Ops<T>, x: T): T {
  const B = o.shape(x)[0];
  const sq = o.reduceSum(square(o, x), [1], true);
  const d2 = o.sub(o.add(sq, o.transpose(sq, [1, 0])), o.scale(o.matmulT(x, x), 2));
  return o.mul(o.sqrt(o.add(o.relu(d2), o.scalar(x, 1e-12))), eyeConst(o, x, B, true));
}

// RKD-D = smoothL1(psi_D(s), psi_D(t)), psi_D = pairwise distances / their mean over i != j
export function rkdDistanceOps<T>(o: Ops<T>, s: T, t: T): T {
  const B = o.shape(s)[0];
  const psi = (x: T) => {
    const d = pairwiseDistance(o, x);
    return o.div(d, o.scale(o.reduceSum(d, [0, 1]), 1 / (B * (B - 1))));
  };
  return smoothL1(o, psi(s), psi(t));
}

// RKD-A = smoothL1(psi_A(s), psi_A(t)), psi_A(i,j,k) = cos of the angle at i between e_ij and e_ik (e = unit x_j - x_i)
export function rkdAngleOps<T>(o: Ops<T>, s: T, t: T): T {
  const psi = (x: T) => {
    const [B, D] = o.shape(x);
    const diff = o.sub(o.reshape(x, [1, B, D]), o.reshape(x, [B, 1, D])); // [B, B, D]: x_j - x_i at [i, j]
    const n = o.div(diff, o.sqrt(o.add(o.reduceSum(square(o, diff), [2], true), o.scalar(x, 1e-12)))); // no NaN gradient at i = j
    return o.matmul(n, o.transpose(n, [0, 2, 1])); // [B, B, B]
  };
  return smoothL1(o, psi(s), psi(t));
}

// L_rkd = sum_m (1 * RKD-D + 2 * RKD-A) over the two modalities (RKD's 25:50 ratio)
export function rkdLossOps<T>(o: Ops<T>, s: Pair<T>, t: Pair<T>): T {
  checkPair(shaped(o, s.image), shaped(o, t.image), 'rkd');
  checkPair(shaped(o, s.text), shaped(o, t.text), 'rkd');
  const one = (a: T, b: T) => o.add(rkdDistanceOps(o, a, b), o.scale(rkdAngleOps(o, a, b), 2));
  return o.add(one(s.image, t.image), one(s.text, t.text));
}

// L_clipkd = mean_i ||s_i - t_i||^2 (both modalities) + (InfoNCE(s^I, t^T) + InfoNCE(s^T, t^I)) / 2 (interactive contrastive)
export function clipKdLossOps<T>(o: Ops<T>, s: Pair<T>, t: Pair<T>, temperature: number, targets: T): T {
  checkPair(shaped(o, s.image), shaped(o, t.image), 'clip-kd');
  checkPair(shaped(o, s.text), shaped(o, t.text), 'clip-kd');
  const fd = (a: T, b: T) => o.reduceMean(o.reduceSum(square(o, o.sub(a, b)), [1]), [0]);
  const ice = o.scale(
    o.add(infoNceOps(o, s.image, t.text, temperature, targets), infoNceOps(o, s.text, t.image, temperature, targets)),
    0.5,
  );
  return o.add(o.add(fd(s.image, t.image), fd(s.text, t.text)), ice);
}

// ---- tfjs wrappers (the definitions above on tfOps); `ids` are the rows' group ids (none: every row its own group)
const T = tfLossOps;
type M = tf.Tensor2D;
export const groupTargets = (ids: ArrayLike<number> | undefined, B: number): M =>
  tf.tensor2d(groupTargetArray(ids, B), [B, B]);
export const infoNce = (q: M, k: M, temperature: number, ids?: ArrayLike<number>) =>
  tf.tidy(() => infoNceOps(T(), q, k, temperature, groupTargets(ids, q.shape[0])) as tf.Scalar);
export const contrastiveLoss = (si: M, st: M, temperature: number, ids?: ArrayLike<number>) =>
  tf.tidy(() => contrastiveLossOps(T(), si, st, temperature, groupTargets(ids, si.shape[0])) as tf.Scalar);
export const kdLoss = (s: Pair<M>, t: Pair<M>, temperature: number) =>
  tf.tidy(() => kdLossOps(T(), s, t, temperature) as tf.Scalar);
export const fitnetLoss = (s: Pair<M>, t: Pair<M>) => tf.tidy(() => fitnetLossOps(T(), s, t) as tf.Scalar);
export const rkdDistance = (s: M, t: M) => tf.tidy(() => rkdDistanceOps(T(), s, t) as tf.Scalar);
export const rkdAngle = (s: M, t: M) => tf.tidy(() => rkdAngleOps(T(), s, t) as tf.Scalar);
export const rkdLoss = (s: Pair<M>, t: Pair<M>) => tf.tidy(() => rkdLossOps(T(), s, t) as tf.Scalar);
export const clipKdLoss = (s: Pair<M>, t: Pair<M>, temperature: number, ids?: ArrayLike<number>) =>
  tf.tidy(() => clipKdLossOps(T(), s, t, temperature, groupTargets(ids, s.image.shape[0])) as tf.Scalar);
