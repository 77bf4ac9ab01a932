/**
 * The DSMD losses and the no-teacher contrastive loss for the onnx engine's graph builder: the same
 * formulas as dsmd.ts / baselines.ts (tested against them), so the whole training step (towers and
 * losses) runs as one onnxruntime forward and one backward graph. Inputs are graph values (Sym).
 */
import { type Sym, onnxOps as op } from '@distill/core';
import type { HingeReduction } from './dsmd.js';

const rowDot = (a: Sym, b: Sym) => op.reduceSum(op.mul(a, b), [1]); // a_i . b_i

// L_l1^m = mean_{b,d} |s - t|
export function featureDistillGraph(s: Sym, t: Sym): Sym {
  return op.reduceMean(op.abs(op.sub(s, t)), [0, 1]);
}

// L_cos^m = 1 - (mean_i cos(s_i, t_i) + 1) / 2, cos = s_i.t_i / max(||s_i|| ||t_i||, 1e-6)
export function similarityDistillGraph(s: Sym, t: Sym): Sym {
  const g = s.graph;
  const norms = op.mul(op.sqrt(rowDot(s, s)), op.sqrt(rowDot(t, t)));
  const cos = op.div(rowDot(s, t), op.maximumConst(norms, 1e-6));
  return op.sub(g.scalar(1), op.scale(op.add(op.reduceMean(cos, [0]), g.scalar(1)), 0.5));
}

// L_con^m = mean_i log(1 + sum_k exp(d_ik)), d_ik = (s_i.q_k - s_i.t_i)/tau, as m + log1p(exp(-m) + sum_k exp(d_ik - m) - 1), m = max(0, max_k d_ik) (no gradient)
export function contrastiveDistillGraph(s: Sym, t: Sym, queue: Sym, temperature: number): Sym {
  const g = s.graph;
  const pos = op.reshape(rowDot(s, t), [s.shape[0], 1]);
  const d = op.scale(op.sub(op.gemm(s, queue, undefined, { transB: true }), pos), 1 / temperature);
  const m = op.maximumConst(op.reduceMaxConst(d, [1]), 0);
  const rest = op.reduceSum(op.exp(op.sub(d, m)), [1], true);
  const l = op.add(m, op.log1p(op.sub(op.add(op.exp(op.neg(m)), rest), g.scalar(1))));
  return op.reduceMean(l, [0, 1]);
}

// T(A,C) = sum_{i!=j} [m + S_ij - S_ii]_+ + [m + S_ij - S_jj]_+  (max: hardest j per i, hardest i per j), S = A C^T
export function hingePairGraph(a: Sym, c: Sym, margin: number, reduction: HingeReduction): Sym {
  const g = a.graph;
  const B = a.shape[0];
  const eye = new Float32Array(B * B);
  for (let i = 0; i < B; i++) eye[i * B + i] = 1;
  const offDiag = g.constant(eye.map((v) => 1 - v), [B, B]);
  const S = op.gemm(a, c, undefined, { transB: true });
  const diag = op.reduceSum(op.mul(S, g.constant(eye, [B, B])), [1]);
  const shifted = op.add(S, g.scalar(margin));
  const costS = op.mul(op.relu(op.sub(shifted, op.reshape(diag, [B, 1]))), offDiag);
  const costIm = op.mul(op.relu(op.sub(shifted, op.reshape(diag, [1, B]))), offDiag);
  if (reduction === 'max') return op.add(op.reduceSum(op.reduceMax(costS, [1]), [0]), op.reduceSum(op.reduceMax(costIm, [0]), [0]));
  return op.add(op.reduceSum(costS, [0, 1]), op.reduceSum(costIm, [0, 1]));
}

// InfoNCE(q, k) = mean_i -sum_j P_ij log softmax(q k^T / tau)_ij, log softmax = x - m - log sum exp(x - m), m = row max (no gradient)
export function infoNceGraph(q: Sym, k: Sym, temperature: number, targets: Sym): Sym {
  const x = op.scale(op.gemm(q, k, undefined, { transB: true }), 1 / temperature);
  const m = op.reduceMaxConst(x, [1]);
  const shifted = op.sub(x, m);
  const logp = op.sub(shifted, op.log(op.reduceSum(op.exp(shifted), [1], true)));
  return op.neg(op.reduceMean(op.reduceSum(op.mul(targets, logp), [1]), [0]));
}

// L_clip = (InfoNCE(s^I, s^T) + InfoNCE(s^T, s^I)) / 2 with P the same-group targets (symmetric)
export function contrastiveLossGraph(si: Sym, st: Sym, temperature: number, targets: Sym): Sym {
  return op.scale(op.add(infoNceGraph(si, st, temperature, targets), infoNceGraph(st, si, temperature, targets)), 0.5);
}

/** Row i's soft targets: uniform over the rows with the same group id (groupTargets in baselines.ts, as an array). */
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

/** Graph inputs of a loss: student embeddings, teacher features, queues ([K, D] rows) and same-group targets [B, B]. */
export interface GraphLossInputs {
  studentImage: Sym;
  studentText: Sym;
  teacherImage?: Sym;
  teacherText?: Sym;
  imageQueue?: Sym;
  textQueue?: Sym;
  targets?: Sym;
}
