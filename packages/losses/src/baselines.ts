import { tf } from '@distill/core';
import { checkPair } from './dsmd.js';
import { groupTargetArray } from './graph.js';

/** Soft targets: row i's positives are the columns with the same group id (uniform over them). */
export function groupTargets(ids: ArrayLike<number> | undefined, B: number): tf.Tensor2D {
  return tf.tensor2d(groupTargetArray(ids, B), [B, B]);
}

// InfoNCE(q, k) = mean_i CE(q_i k^T / tau, P_i) with P the same-group targets
export function infoNce(q: tf.Tensor2D, k: tf.Tensor2D, temperature: number, ids?: ArrayLike<number>): tf.Scalar {
  return tf.tidy(() => {
    const P = groupTargets(ids, q.shape[0]);
    return tf.neg(P.mul(tf.logSoftmax(tf.matMul(q, k, false, true).div(temperature), 1)).sum(1)).mean() as tf.Scalar;
  });
}

// L_clip = (InfoNCE(s^I, s^T) + InfoNCE(s^T, s^I)) / 2: the student's own contrastive loss (no teacher)
export function contrastiveLoss(si: tf.Tensor2D, st: tf.Tensor2D, temperature: number, ids?: ArrayLike<number>): tf.Scalar {
  checkPair(si, st, 'contrastive');
  return tf.tidy(() => infoNce(si, st, temperature, ids).add(infoNce(st, si, temperature, ids)).div(2) as tf.Scalar);
}

// L_kd = tau^2 * (KL(p_t^{i2t} || p_s^{i2t}) + KL(p_t^{t2i} || p_s^{t2i})) / 2, p = softmax(in-batch similarities / tau)
export function kdLoss(s: { image: tf.Tensor2D; text: tf.Tensor2D }, t: { image: tf.Tensor2D; text: tf.Tensor2D }, temperature: number): tf.Scalar {
  checkPair(s.image, t.image, 'kd');
  return tf.tidy(() => {
    // KL(p_t || p_s) per row = sum_j p_t,j z_j - log(sum_j p_s,j exp(z_j)), z = (T - S) / tau: the logits cancel
    // before rounding and the log is log1p(sum_j p_s,j expm1(z_j)), so float32 keeps ~1e-6 relative even at
    // large tau, where the KL is tiny next to the log-probabilities (lt - ls loses ~1e-5 there).
    const kl = (sl: tf.Tensor, tl: tf.Tensor) => {
      const z = tl.sub(sl).div(temperature);
      const pt = tf.softmax(tl.div(temperature), 1);
      const ps = tf.softmax(sl.div(temperature), 1);
      return pt.mul(z).sum(1).sub(tf.log1p(ps.mul(tf.expm1(z)).sum(1))).mean();
    };
    const S = tf.matMul(s.image, s.text, false, true);
    const T = tf.matMul(t.image, t.text, false, true);
    return kl(S, T).add(kl(S.transpose(), T.transpose())).div(2).mul(temperature * temperature) as tf.Scalar;
  });
}

// L_fitnet = mean (s^I - t^I)^2 + mean (s^T - t^T)^2
export function fitnetLoss(s: { image: tf.Tensor2D; text: tf.Tensor2D }, t: { image: tf.Tensor2D; text: tf.Tensor2D }): tf.Scalar {
  checkPair(s.image, t.image, 'fitnet');
  checkPair(s.text, t.text, 'fitnet');
  return tf.tidy(() => s.image.sub(t.image).square().mean().add(s.text.sub(t.text).square().mean()) as tf.Scalar);
}

function smoothL1(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    // huber(d) = 0.5 min(d,1)^2 + (d - min(d,1)): 0.5 d^2 below 1, d - 0.5 above
    const d = a.sub(b).abs();
    const c = tf.minimum(d, 1);
    return c.square().mul(0.5).add(d.sub(c)).mean() as tf.Scalar;
  });
}

function pairwiseDistance(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const sq = x.square().sum(1, true);
    const d2 = sq.add(sq.transpose()).sub(tf.matMul(x, x, false, true).mul(2));
    return tf.sqrt(tf.relu(d2).add(1e-12)).mul(tf.scalar(1).sub(tf.eye(x.shape[0]))) as tf.Tensor2D;
  });
}

// RKD-D = smoothL1(psi_D(s), psi_D(t)), psi_D = pairwise distances / their mean
export function rkdDistance(s: tf.Tensor2D, t: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const B = s.shape[0];
    const norm = (d: tf.Tensor2D) => d.div(d.sum().div(B * (B - 1)));
    return smoothL1(norm(pairwiseDistance(s)), norm(pairwiseDistance(t)));
  });
}

// RKD-A = smoothL1(psi_A(s), psi_A(t)), psi_A(i,j,k) = cos of the angle at j between e_ij and e_kj
export function rkdAngle(s: tf.Tensor2D, t: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const angles = (x: tf.Tensor2D) => {
      const diff = x.expandDims(0).sub(x.expandDims(1)); // [B, B, D]: x_j - x_i at [i, j]
      const n = diff.div(diff.square().sum(2, true).add(1e-12).sqrt()); // no NaN gradient at i = j
      return tf.matMul(n, n, false, true); // [B, B, B]
    };
    return smoothL1(angles(s), angles(t));
  });
}

// L_rkd = sum_m (1 * RKD-D + 2 * RKD-A) over the two modalities (RKD's 25:50 ratio)
export function rkdLoss(s: { image: tf.Tensor2D; text: tf.Tensor2D }, t: { image: tf.Tensor2D; text: tf.Tensor2D }): tf.Scalar {
  checkPair(s.image, t.image, 'rkd');
  return tf.tidy(() =>
    tf.addN([rkdDistance(s.image, t.image), rkdAngle(s.image, t.image).mul(2), rkdDistance(s.text, t.text), rkdAngle(s.text, t.text).mul(2)]) as tf.Scalar,
  );
}

// L_clipkd = mean_i ||s_i - t_i||^2 (both modalities) + (InfoNCE(s^I, t^T) + InfoNCE(s^T, t^I)) / 2 (interactive contrastive)
export function clipKdLoss(s: { image: tf.Tensor2D; text: tf.Tensor2D }, t: { image: tf.Tensor2D; text: tf.Tensor2D }, temperature: number, ids?: ArrayLike<number>): tf.Scalar {
  return tf.tidy(() =>
    s.image.sub(t.image).square().sum(1).mean().add(s.text.sub(t.text).square().sum(1).mean())
      .add(infoNce(s.image, t.text, temperature, ids).add(infoNce(s.text, t.image, temperature, ids)).div(2)) as tf.Scalar,
  );
}
