import { DistillError, tf } from '@distill/core';

/** Row-wise L2 normalisation: x / max(||x||_2, eps) (torch F.normalize). */
export function l2n(x: tf.Tensor2D, eps = 1e-12): tf.Tensor2D {
  return tf.tidy(() => x.div(tf.maximum(x.square().sum(1, true).sqrt(), eps)));
}

export function checkPair(a: tf.Tensor2D, b: tf.Tensor2D, what: string): void {
  if (a.shape.length !== 2 || b.shape.length !== 2) throw new DistillError(`${what}: expected two [B, D] matrices, got ${JSON.stringify(a.shape)} and ${JSON.stringify(b.shape)}.`);
  if (a.shape[1] !== b.shape[1]) {
    throw new DistillError(`${what}: student dim ${a.shape[1]} != teacher dim ${b.shape[1]}. The student's projection must map to the teacher's dimension (embedDim).`);
  }
  if (a.shape[0] !== b.shape[0]) throw new DistillError(`${what}: student batch ${a.shape[0]} != teacher batch ${b.shape[0]}.`);
}

/**
 * max(0, max_k x_ik) per row, as a constant for autodiff (zero gradient). The shift m in
 * m + log(sum exp(x - m)) cancels out of the gradient; differentiating through max would only cost
 * tfjs an Equal over the whole [B, K] logits (~45 ms per call on wasm at B 64, K 4160).
 */
const rowMaxConst = tf.customGrad(((x: tf.Tensor2D) => ({
  value: tf.relu(x.max(1, true)),
  gradFunc: () => tf.zerosLike(x),
})) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor2D) => tf.Tensor2D;

/** Per-sample InfoNCE of student vs same-modality teacher positive and queue negatives. */
export function contrastiveDistillPerSample(s: tf.Tensor2D, t: tf.Tensor2D, queue: tf.Tensor2D, temperature: number): tf.Tensor1D {
  checkPair(s, t, 'contrastive distillation');
  if (queue.shape[1] !== s.shape[1]) throw new DistillError(`contrastive distillation: queue dim ${queue.shape[1]} != feature dim ${s.shape[1]}.`);
  // l_i = logsumexp([s_i.t_i, s_i.q_1..q_K]/tau) - s_i.t_i/tau = log(1 + sum_k exp(d_ik)), d_ik = (s_i.q_k - s_i.t_i)/tau,
  // evaluated as m + log1p(exp(-m) + sum_k exp(d_ik - m) - 1) with m = max(0, max_k d_ik): exact in float32
  // also when the positive dominates (l_i ~ 1e-3), where logsumexp - logit loses digits to cancellation.
  return tf.tidy(() => {
    const pos = s.mul(t).sum(1, true);
    const d = tf.matMul(s, queue, false, true).sub(pos).div(temperature) as tf.Tensor2D;
    const m = rowMaxConst(d);
    const rest = d.sub(m).exp().sum(1, true);
    return m.add(tf.log1p(m.neg().exp().add(rest).sub(1))).squeeze([1]) as tf.Tensor1D;
  });
}

// L_con^m = mean_i CE([s_i.t_i, s_i.Q]/tau, 0)
export function contrastiveDistill(s: tf.Tensor2D, t: tf.Tensor2D, queue: tf.Tensor2D, temperature: number): tf.Scalar {
  return tf.tidy(() => contrastiveDistillPerSample(s, t, queue, temperature).mean());
}

// L_l1^m = mean_{b,d} |s - t|
export function featureDistill(s: tf.Tensor2D, t: tf.Tensor2D): tf.Scalar {
  checkPair(s, t, 'feature distillation');
  return tf.tidy(() => s.sub(t).abs().mean());
}

/** cos(s_i, t_i) = s_i.t_i / max(||s_i|| ||t_i||, eps) (torch CosineSimilarity, eps 1e-6). */
export function cosinePerSample(s: tf.Tensor2D, t: tf.Tensor2D, eps = 1e-6): tf.Tensor1D {
  checkPair(s, t, 'similarity distillation');
  return tf.tidy(() => s.mul(t).sum(1).div(tf.maximum(s.norm(2, 1).mul(t.norm(2, 1)), eps)) as tf.Tensor1D);
}

// L_cos^m = 1 - (mean_i cos(s_i, t_i) + 1) / 2
export function similarityDistill(s: tf.Tensor2D, t: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.scalar(1).sub(cosinePerSample(s, t).mean().add(1).div(2)));
}

export type HingeReduction = 'sum' | 'max';

// T(A,C) = sum_{i!=j} [m + S_ij - S_ii]_+ + [m + S_ij - S_jj]_+  (max: hardest j per i, hardest i per j), S = A C^T
export function hingePair(a: tf.Tensor2D, c: tf.Tensor2D, margin: number, reduction: HingeReduction): tf.Scalar {
  checkPair(a, c, 'hard-negative distillation');
  return tf.tidy(() => {
    const S = tf.matMul(a, c, false, true);
    const B = S.shape[0];
    const diag = S.mul(tf.eye(B)).sum(1); // S_ii
    const offDiag = tf.scalar(1).sub(tf.eye(B));
    const costS = tf.relu(S.add(margin).sub(diag.reshape([B, 1]))).mul(offDiag); // query A_i, negatives C_j
    const costIm = tf.relu(S.add(margin).sub(diag.reshape([1, B]))).mul(offDiag); // query C_j, negatives A_i
    if (reduction === 'max') return costS.max(1).sum().add(costIm.max(0).sum()) as tf.Scalar;
    return costS.sum().add(costIm.sum()) as tf.Scalar;
  });
}

export const HND_PAIRS = ['img_img', 'txt_txt', 'img_txt', 'txt_img'] as const;

// L_hnd = T(s^I,t^I) + T(s^T,t^T) + T(s^I,t^T) + T(s^T,t^I)
export function hardNegativeDistill(
  s: { image: tf.Tensor2D; text: tf.Tensor2D },
  t: { image: tf.Tensor2D; text: tf.Tensor2D },
  margin: number,
  reduction: HingeReduction,
): { total: tf.Scalar; pairs: Record<(typeof HND_PAIRS)[number], tf.Scalar> } {
  const pairs = {
    img_img: hingePair(s.image, t.image, margin, reduction),
    txt_txt: hingePair(s.text, t.text, margin, reduction),
    img_txt: hingePair(s.image, t.text, margin, reduction),
    txt_img: hingePair(s.text, t.image, margin, reduction),
  };
  return { total: tf.addN(Object.values(pairs)) as tf.Scalar, pairs };
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
export function dsmdLosses(
  s: { image: tf.Tensor2D; text: tf.Tensor2D },
  t: { image: tf.Tensor2D; text: tf.Tensor2D },
  queues: { image: tf.Tensor2D; text: tf.Tensor2D } | undefined,
  o: DsmdOptions,
): Record<string, tf.Scalar> {
  const out: Record<string, tf.Scalar> = {};
  if (o.enabled.includes('fd')) out.l1_loss = featureDistill(s.image, t.image).add(featureDistill(s.text, t.text));
  if (o.enabled.includes('sd')) out.cos_loss = similarityDistill(s.image, t.image).add(similarityDistill(s.text, t.text));
  if (o.enabled.includes('cd')) {
    if (!queues) throw new DistillError('contrastive distillation (cd) needs the feature queues.');
    out.con_loss = contrastiveDistill(s.image, t.image, queues.image, o.temperature).add(contrastiveDistill(s.text, t.text, queues.text, o.temperature));
  }
  if (o.enabled.includes('hnd')) out.hnd_loss = hardNegativeDistill(s, t, o.margin, o.reduction).total;
  return out;
}
