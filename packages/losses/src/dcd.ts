/**
 * DCD (dynamic contrastive distillation, official raojay7/DCD semantics). The teacher's part (top-K
 * selection, entropy shares, row weights) is computed on the host from plain arrays: nothing of it
 * is differentiated. It enters the loss as constants / int indices (`DcdPlan`), and the student's
 * part is written once over `Ops<T>` (`dcdLossOps`, `dcdDualEncoderOps`), for both engines.
 */
import { DistillError, tf, type Ops } from '@distill/core';
import { checkPair, shaped, square, tfLossOps } from './common.js';

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
export function dcdSelect(teacherScores: ArrayLike<number>[], topK: number): DcdSelection {
  const teacherTopIndices = teacherScores.map((row) => {
    if (row.length < topK)
      throw new DistillError(`DCD: each row needs at least topK=${topK} candidates, got ${row.length}.`);
    return Array.from(row, (v, j) => [v, j] as const)
      .sort((a, b) => b[0] - a[0] || a[1] - b[1])
      .slice(0, topK)
      .map(([, j]) => j);
  });
  const studentCandidateIndices = teacherTopIndices.map((idx) => [0, ...idx.filter((j) => j !== 0)].slice(0, topK));
  return { teacherTopIndices, studentCandidateIndices };
}

/**
 * The teacher's side of one DCD loss, for a [B, C] score matrix: the selected teacher scores [B, K],
 * e_i = sum_j p_ij log p_ij / sum_ij p_ij log p_ij (p = softmax of the selected teacher row),
 * r = softmax_i((1 - e_i)^2) and sum_i r_i, and where the student's selected scores sit in its
 * flattened [B * C] score matrix (`studentIndex`, distinct). Float64 on the host, stored as float32.
 */
export interface DcdPlan {
  batch: number;
  candidates: number;
  topK: number;
  selection: DcdSelection;
  teacherSelected: Float32Array;
  entropyShare: Float32Array;
  rWeight: Float32Array;
  rSum: number;
  studentIndex: Int32Array;
}

/** The plan of `teacherScores` rows ([B][C]); `columnOf[i][c]` maps candidate c of row i to the student's column (default: c). */
export function dcdPlan(
  teacherScores: ArrayLike<number>[],
  topK: number,
  columnOf?: (i: number, c: number) => number,
): DcdPlan {
  const B = teacherScores.length;
  if (B === 0) throw new DistillError('DCD: no rows to score (an empty batch).');
  const C = teacherScores[0].length;
  const selection = dcdSelect(teacherScores, topK);
  const K = topK;
  const teacherSelected = new Float32Array(B * K);
  const ent = new Float64Array(B);
  selection.teacherTopIndices.forEach((row, i) => {
    row.forEach((j, k) => (teacherSelected[i * K + k] = teacherScores[i][j]));
    const t = Array.from(teacherSelected.subarray(i * K, (i + 1) * K));
    const m = Math.max(...t);
    const lse = m + Math.log(t.reduce((a, v) => a + Math.exp(v - m), 0));
    ent[i] = t.reduce((a, v) => a + Math.exp(v - lse) * (v - lse), 0); // sum_j p log p
  });
  const total = ent.reduce((a, v) => a + v, 0);
  const share = Array.from(ent, (e) => e / total);
  const logits = share.map((e) => (1 - e) ** 2);
  const lm = Math.max(...logits);
  const z = logits.reduce((a, v) => a + Math.exp(v - lm), 0);
  const r = logits.map((v) => Math.exp(v - lm) / z);
  const studentIndex = Int32Array.from(
    selection.studentCandidateIndices.flatMap((row, i) => row.map((c) => i * C + (columnOf ? columnOf(i, c) : c))),
  );
  return {
    batch: B,
    candidates: C,
    topK: K,
    selection,
    teacherSelected,
    entropyShare: Float32Array.from(share),
    rWeight: Float32Array.from(r),
    rSum: r.reduce((a, v) => a + v, 0),
    studentIndex,
  };
}

/** A `DcdPlan` as tensors of one engine: the student's selected positions (int), the teacher's scores [B, K], e [B], sum r. */
export interface DcdPlanTensors<T> {
  studentIndex: T;
  teacherSelected: T;
  entropyShare: T;
  rSum: T;
}

export function dcdPlanTensors<T>(o: Ops<T>, like: T, p: DcdPlan): DcdPlanTensors<T> {
  return {
    studentIndex: o.intConstant(like, p.studentIndex, [p.studentIndex.length]),
    teacherSelected: o.constant(like, p.teacherSelected, [p.batch, p.topK]),
    entropyShare: o.constant(like, p.entropyShare, [p.batch]),
    rSum: o.constant(like, [p.rSum], []),
  };
}

/**
 * DCD from the student's score matrix [B, C] and the teacher's plan:
 * L = alpha T^2 sum_i r_i mean((t/T - s/T)^2) + (1-alpha) sum_i e_i mean_j BCE(s_ij, [1,0..0]).
 */
export function dcdLossOps<T>(
  o: Ops<T>,
  studentScores: T,
  p: DcdPlanTensors<T>,
  opts: DcdOptions,
): { total: T; dLoss: T; nllLoss: T; studentSelected: T } {
  const [B, C] = o.shape(studentScores);
  const K = opts.topK;
  const tT = 1 / opts.temperature;
  const s = o.reshape(o.take(o.reshape(studentScores, [B * C]), p.studentIndex), [B, K]);
  const dLoss = o.mul(
    o.scale(
      o.reduceMean(square(o, o.sub(o.scale(p.teacherSelected, tT), o.scale(s, tT))), [0, 1]),
      opts.temperature ** 2,
    ),
    p.rSum,
  );
  const labels = new Float32Array(B * K);
  for (let i = 0; i < B; i++) labels[i * K] = 1;
  // BCEWithLogits(x, y) = max(x,0) - x y + log(1 + exp(-|x|))
  const bce = o.add(o.sub(o.relu(s), o.mul(s, o.constant(s, labels, [B, K]))), o.log1p(o.exp(o.neg(o.abs(s)))));
  const nllLoss = o.reduceSum(o.mul(p.entropyShare, o.reduceMean(bce, [1])), [0]);
  return {
    total: o.add(o.scale(dLoss, opts.alpha), o.scale(nllLoss, 1 - opts.alpha)),
    dLoss,
    nllLoss,
    studentSelected: s,
  };
}

type Pair<T> = { image: T; text: T };
const dot = (a: ArrayLike<number>, ai: number, b: ArrayLike<number>, bj: number, D: number) => {
  let v = 0;
  for (let d = 0; d < D; d++) v += a[ai * D + d] * b[bj * D + d];
  return v;
};

/**
 * The teacher's plans of dual-encoder DCD, from teacher features [B, D] (row-major) and optional queues
 * [Kq, D]: for each image i the candidates are its own caption (candidate 0) and the other in-batch
 * captions (and the queue keys), scored by similarity / scoreTemperature; the same for each caption.
 */
export function dcdDualPlans(
  t: Pair<ArrayLike<number>>,
  batch: number,
  dim: number,
  opts: DcdOptions & { scoreTemperature: number },
  queues?: Pair<ArrayLike<number>>,
): { i2t: DcdPlan; t2i: DcdPlan } {
  const B = batch;
  const Kq = queues ? queues.image.length / dim : 0;
  if (B + Kq < opts.topK)
    throw new DistillError(`DCD: batch ${B} gives fewer than topK=${opts.topK} candidates per row.`);
  // Candidate order of row i: [i, 0..i-1, i+1..B-1, B..C-1] (column of candidate c).
  const columnOf = (i: number, c: number) => (c === 0 ? i : c <= i ? c - 1 : c);
  const plan = (q: ArrayLike<number>, k: ArrayLike<number>, extra?: ArrayLike<number>) => {
    const rows = Array.from({ length: B }, (_, i) => {
      const row = new Float32Array(B + Kq);
      for (let c = 0; c < B + Kq; c++) {
        const j = columnOf(i, c);
        row[c] = (j < B ? dot(q, i, k, j, dim) : dot(q, i, extra!, j - B, dim)) / opts.scoreTemperature;
      }
      return row;
    });
    return dcdPlan(rows, opts.topK, columnOf);
  };
  return { i2t: plan(t.image, t.text, queues?.text), t2i: plan(t.text, t.image, queues?.image) };
}

// L_dcd = (DCD(s^I s^T^T / tau | teacher i2t plan) + DCD(s^T s^I^T / tau | teacher t2i plan)) / 2 (queue keys as extra candidates)
export function dcdDualEncoderOps<T>(
  o: Ops<T>,
  s: Pair<T>,
  plans: { i2t: DcdPlanTensors<T>; t2i: DcdPlanTensors<T> },
  opts: DcdOptions & { scoreTemperature: number },
  queues?: Pair<T>,
): T {
  checkPair(shaped(o, s.image), shaped(o, s.text), 'dcd');
  const scores = (q: T, k: T, extra?: T) =>
    o.scale(extra ? o.concat([o.matmulT(q, k), o.matmulT(q, extra)], 1) : o.matmulT(q, k), 1 / opts.scoreTemperature);
  const i2t = dcdLossOps(o, scores(s.image, s.text, queues?.text), plans.i2t, opts);
  const t2i = dcdLossOps(o, scores(s.text, s.image, queues?.image), plans.t2i, opts);
  return o.scale(o.add(i2t.total, t2i.total), 0.5);
}

// ---- tfjs wrapper (the definitions above on tfOps)
/** Dual-encoder DCD on tfjs tensors (teacher features read to the host for the plans). */
export function dcdDualEncoder(
  s: Pair<tf.Tensor2D>,
  t: Pair<tf.Tensor2D>,
  opts: DcdOptions & { scoreTemperature: number },
  queues?: Pair<tf.Tensor2D>,
): tf.Scalar {
  checkPair(s.image, t.image, 'dcd');
  checkPair(s.text, t.text, 'dcd');
  const [B, D] = s.image.shape;
  const plans = dcdDualPlans(
    { image: t.image.dataSync(), text: t.text.dataSync() },
    B,
    D,
    opts,
    queues && { image: queues.image.dataSync(), text: queues.text.dataSync() },
  );
  return tf.tidy(() => {
    const o = tfLossOps();
    const like = s.image;
    return dcdDualEncoderOps(
      o,
      s,
      { i2t: dcdPlanTensors(o, like, plans.i2t), t2i: dcdPlanTensors(o, like, plans.t2i) },
      opts,
      queues,
    ) as tf.Scalar;
  });
}
