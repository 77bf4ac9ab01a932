import { DistillError, tf } from '@distill/core';

export interface DcdOptions {
  /** Candidates the teacher keeps per row (official 8 = 1 + hard_negative 7). */
  topK: number;
  temperature: number;
  /** Mix: alpha * d_loss + (1 - alpha) * nll_loss (official 0.2). */
  alpha: number;
}
export const DCD_DEFAULTS: DcdOptions = { topK: 8, temperature: 1, alpha: 0.2 };

/** The teacher's selection (plain arrays: it is not differentiated). */
export interface DcdSelection {
  teacherTopIndices: number[][];
  studentCandidateIndices: number[][];
}

/**
 * Teacher picks the top-K candidates per row (descending). The student scores [0] + the selected
 * indices other than 0 in teacher order (if 0 was not selected, the K-th is dropped): official DCD.
 */
export function dcdSelect(teacherScores: number[][], topK: number): DcdSelection {
  const teacherTopIndices = teacherScores.map((row) => {
    if (row.length < topK) throw new DistillError(`DCD: each row needs at least topK=${topK} candidates, got ${row.length}.`);
    return row.map((v, j) => [v, j] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, topK).map(([, j]) => j);
  });
  const studentCandidateIndices = teacherTopIndices.map((idx) => [0, ...idx.filter((j) => j !== 0)].slice(0, topK));
  return { teacherTopIndices, studentCandidateIndices };
}

/**
 * `flat[idx]` for distinct indices, with a gradient built from Gather alone: d flat = [dy, 0][inverse],
 * where inverse[p] is the position of p in idx (or the appended zero). tf.gather's own gradient is
 * UnsortedSegmentSum, which tfjs-wasm does not have; for distinct indices both sum exactly one dy (or
 * none) into each entry, so values and gradients are identical on every backend.
 */
export function gatherDistinct(flat: tf.Tensor1D, idx: number[]): tf.Tensor1D {
  const n = flat.shape[0];
  const inverse = new Int32Array(n).fill(idx.length);
  idx.forEach((p, k) => {
    if (!Number.isInteger(p) || p < 0 || p >= n) throw new DistillError(`DCD: index ${p} out of range [0, ${n}).`);
    if (inverse[p] !== idx.length) throw new DistillError(`DCD: index ${p} selected twice (gatherDistinct needs distinct indices).`);
    inverse[p] = k;
  });
  const f = tf.customGrad(((x: tf.Tensor1D, save: tf.GradSaveFunc) => {
    save([]);
    return {
      value: tf.gather(x, tf.tensor1d(idx, 'int32')),
      gradFunc: (dy: tf.Tensor) => tf.gather(tf.concat([tf.reshape(dy, [-1]), tf.zeros([1])]), tf.tensor1d(inverse, 'int32')),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(flat) as tf.Tensor1D;
}

/** Row-wise pick: out[i][k] = scores[i][idx[i][k]] (indices distinct within a row). */
function gather(scores: tf.Tensor2D, idx: number[][]): tf.Tensor2D {
  return tf.tidy(() => {
    const B = idx.length;
    const C = scores.shape[1];
    const flat = idx.flatMap((row, i) => row.map((j) => i * C + j));
    return gatherDistinct(scores.reshape([B * C]), flat).reshape([B, idx[0].length]) as tf.Tensor2D;
  });
}

export interface DcdOutputs {
  total: tf.Scalar;
  dLoss: tf.Scalar;
  nllLoss: tf.Scalar;
  teacherSelected: tf.Tensor2D;
  studentSelected: tf.Tensor2D;
  entropyShare: tf.Tensor1D;
  rWeight: tf.Tensor1D;
  selection: DcdSelection;
}

/**
 * DCD loss from score matrices [B, C] (candidate 0 = positive):
 * L = alpha T^2 sum_i r_i mean((t/T - s/T)^2) + (1-alpha) sum_i e_i mean_j BCE(s_ij, [1,0..0]),
 * e_i = sum_j p_ij log p_ij / sum_ij p_ij log p_ij (p = softmax teacher row), r = softmax_i((1-e_i)^2).
 */
export function dcdLoss(teacherScores: tf.Tensor2D, studentScores: tf.Tensor2D, o: DcdOptions = DCD_DEFAULTS): DcdOutputs {
  if (teacherScores.shape.join() !== studentScores.shape.join()) {
    throw new DistillError(`DCD: teacher scores ${JSON.stringify(teacherScores.shape)} and student scores ${JSON.stringify(studentScores.shape)} differ in shape.`);
  }
  const selection = dcdSelect(teacherScores.arraySync() as number[][], o.topK);
  const T = o.temperature;
  const teacherSelected = gather(teacherScores, selection.teacherTopIndices);
  const studentSelected = gather(studentScores, selection.studentCandidateIndices);
  const out = tf.tidy(() => {
    const t = teacherSelected; // teacher scores are constants: no gradient reaches the teacher
    const logp = tf.logSoftmax(t, 1);
    const ent = logp.exp().mul(logp).sum(1); // sum_j p log p, per row
    const share = ent.div(ent.sum());
    const r = tf.softmax(tf.scalar(1).sub(share).square());
    const dLoss = tf.scalar(T * T).mul(r.sum()).mul(t.div(T).sub(studentSelected.div(T)).square().mean());
    const K = o.topK;
    const B = t.shape[0];
    const labels = tf.concat([tf.ones([B, 1]), tf.zeros([B, K - 1])], 1);
    // BCEWithLogits(x, y) = max(x,0) - x y + log(1 + exp(-|x|))
    const s = studentSelected;
    const bce = tf.relu(s).sub(s.mul(labels)).add(tf.log1p(tf.exp(s.abs().neg())));
    const nllLoss = share.mul(bce.mean(1)).sum();
    const total = dLoss.mul(o.alpha).add(nllLoss.mul(1 - o.alpha));
    return { total: total as tf.Scalar, dLoss: dLoss as tf.Scalar, nllLoss: nllLoss as tf.Scalar, entropyShare: share as tf.Tensor1D, rWeight: r as tf.Tensor1D };
  });
  return { ...out, teacherSelected, studentSelected, selection };
}

/**
 * DCD for dual encoders: the score matrices come from similarities. For each image i the candidates
 * are its own caption (column 0) and the other in-batch captions (and queue keys, if given); the
 * same for each caption against images. Scores are similarities / temperature. The two directions
 * are averaged.
 */
export function dcdDualEncoder(
  s: { image: tf.Tensor2D; text: tf.Tensor2D },
  t: { image: tf.Tensor2D; text: tf.Tensor2D },
  opts: DcdOptions & { scoreTemperature: number },
  queues?: { image: tf.Tensor2D; text: tf.Tensor2D },
): tf.Scalar {
  const B = s.image.shape[0];
  if (B + (queues ? queues.image.shape[0] : 0) < opts.topK) throw new DistillError(`DCD: batch ${B} gives fewer than topK=${opts.topK} candidates per row.`);
  // Reorder columns so that candidate 0 is the positive: row i -> [i, 0..i-1, i+1..B-1].
  const order = Array.from({ length: B }, (_, i) => [i, ...Array.from({ length: B }, (_, j) => j).filter((j) => j !== i)]);
  const reorder = (m: tf.Tensor2D) => tf.tidy(() => {
    const C = m.shape[1];
    const idx = order.flatMap((row, i) => [...row, ...Array.from({ length: C - B }, (_, k) => B + k)].map((j) => i * C + j));
    return gatherDistinct(m.reshape([B * C]) as tf.Tensor1D, idx).reshape([B, C]) as tf.Tensor2D; // a permutation
  });
  const scores = (q: tf.Tensor2D, k: tf.Tensor2D, extra?: tf.Tensor2D) =>
    tf.tidy(() => reorder((extra ? tf.concat([tf.matMul(q, k, false, true), tf.matMul(q, extra, false, true)], 1) : tf.matMul(q, k, false, true)).div(opts.scoreTemperature) as tf.Tensor2D));
  const i2t = dcdLoss(scores(t.image, t.text, queues?.text), scores(s.image, s.text, queues?.text), opts);
  const t2i = dcdLoss(scores(t.text, t.image, queues?.image), scores(s.text, s.image, queues?.image), opts);
  const total = i2t.total.add(t2i.total).div(2) as tf.Scalar;
  return total;
}
