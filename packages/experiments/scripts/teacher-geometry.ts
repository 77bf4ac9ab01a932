// Usage: node --conditions=@distill/source --import tsx packages/experiments/scripts/teacher-geometry.ts emoji [<out folder for the whitened features>]
// Teacher feature geometry (docs/results.md, the dsmd-diagnosis), and a whitened copy of the features as a `features` teacher.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, initRuntime, writeNpy } from '@distill/core';
import { datasetOf } from '../src/evaluate.js';
import { createTrainingContainer, obtainTeacherFeatures, resolveConfig } from '@distill/training';

const preset = process.argv[2] ?? 'emoji';
const whitenOut = process.argv[3];
const log = createLogger();
await initRuntime('auto', { logger: log, quiet: true });
const container = createTrainingContainer();
const cfg = resolveConfig({ container, preset });
const ds = await datasetOf(cfg, container);
const tf = await obtainTeacherFeatures(cfg, ds, log, container);
const d = tf.dim;
const meanPairCos = (a: Float32Array, b: Float32Array, same: boolean, limit = 3000) => {
  const na = Math.min(a.length / d, limit),
    nb = Math.min(b.length / d, limit);
  let s = 0,
    c = 0;
  for (let i = 0; i < na; i++)
    for (let j = 0; j < nb; j++) {
      if (same && i === j) continue;
      let x = 0;
      for (let k = 0; k < d; k++) x += a[i * d + k] * b[j * d + k];
      s += x;
      c++;
    }
  return s / c;
};
const matched = (img: Float32Array, txt: Float32Array, t2i: number[]) => {
  let s = 0;
  for (let j = 0; j < t2i.length; j++) {
    let x = 0;
    for (let k = 0; k < d; k++) x += img[t2i[j] * d + k] * txt[j * d + k];
    s += x;
  }
  return s / t2i.length;
};
const spectrum = (x: Float32Array) => {
  const n = x.length / d;
  // uncentred second moment (what a dot product sees): eigenvalues of X^T X / n by Jacobi-free power: use covariance via symmetric eig (small d)
  const m = new Float64Array(d * d);
  for (let i = 0; i < n; i++)
    for (let a = 0; a < d; a++) {
      const xa = x[i * d + a];
      if (xa === 0) continue;
      for (let b = 0; b < d; b++) m[a * d + b] += (xa * x[i * d + b]) / n;
    }
  return jacobiEig(m, d);
};
function jacobiEig(A: Float64Array, n: number): number[] {
  const a = Float64Array.from(A);
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (off < 1e-20) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) < 1e-15) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1),
          s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p],
            akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k],
            aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
      }
  }
  return Array.from({ length: n }, (_, i) => a[i * n + i]).sort((x, y) => y - x);
}
for (const split of ['train', 'test']) {
  const s = tf.splits[split];
  if (!s) continue;
  const t2i = ds.splits[split].captions.map((c) => c.image);
  const ev = spectrum(s.images);
  const tot = ev.reduce((x, y) => x + y, 0);
  const top16 = ev.slice(0, 16).reduce((x, y) => x + y, 0) / tot;
  const pr = tot ** 2 / ev.reduce((x, y) => x + y * y, 0);
  const meanVec = (x: Float32Array) => {
    const n = x.length / d;
    const m = new Float64Array(d);
    for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) m[k] += x[i * d + k] / n;
    return Math.sqrt(m.reduce((a, b) => a + b * b, 0));
  };
  console.log(
    JSON.stringify({
      preset,
      split,
      dim: d,
      images: s.images.length / d,
      texts: s.texts.length / d,
      cosImageImage: +meanPairCos(s.images, s.images, true).toFixed(3),
      cosTextText: +meanPairCos(s.texts, s.texts, true).toFixed(3),
      cosImageText: +meanPairCos(s.images, s.texts, false).toFixed(3),
      cosMatchedPairs: +matched(s.images, s.texts, t2i).toFixed(3),
      meanVectorNormImages: +meanVec(s.images).toFixed(3),
      meanVectorNormTexts: +meanVec(s.texts).toFixed(3),
      energyTop16Images: +top16.toFixed(4),
      participationRatioImages: +pr.toFixed(2),
    }),
  );
}
if (whitenOut) {
  // ZCA whitening fitted on the train split (images and texts together, centred), applied to every split; the features teacher L2-normalises the rows again
  const tr = tf.splits.train;
  const all = new Float32Array(tr.images.length + tr.texts.length);
  all.set(tr.images);
  all.set(tr.texts, tr.images.length);
  const n = all.length / d;
  const mu = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) mu[k] += all[i * d + k] / n;
  const C = new Float64Array(d * d);
  for (let i = 0; i < n; i++)
    for (let a = 0; a < d; a++) {
      const xa = all[i * d + a] - mu[a];
      for (let b = 0; b < d; b++) C[a * d + b] += (xa * (all[i * d + b] - mu[b])) / n;
    }
  // eigendecomposition with vectors (Jacobi)
  const A = Float64Array.from(C),
    V = new Float64Array(d * d);
  for (let i = 0; i < d; i++) V[i * d + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += A[p * d + q] ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < d; p++)
      for (let q = p + 1; q < d; q++) {
        const apq = A[p * d + q];
        if (Math.abs(apq) < 1e-16) continue;
        const theta = (A[q * d + q] - A[p * d + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1),
          s = t * c;
        for (let k = 0; k < d; k++) {
          const akp = A[k * d + p],
            akq = A[k * d + q];
          A[k * d + p] = c * akp - s * akq;
          A[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = A[p * d + k],
            aqk = A[q * d + k];
          A[p * d + k] = c * apk - s * aqk;
          A[q * d + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = V[k * d + p],
            vkq = V[k * d + q];
          V[k * d + p] = c * vkp - s * vkq;
          V[k * d + q] = s * vkp + c * vkq;
        }
      }
  }
  const eps = 1e-3 * Math.max(...Array.from({ length: d }, (_, i) => A[i * d + i]));
  const W = new Float64Array(d * d); // V diag(1/sqrt(l+eps)) V^T
  for (let a = 0; a < d; a++)
    for (let b = 0; b < d; b++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += (V[a * d + k] * V[b * d + k]) / Math.sqrt(Math.max(A[k * d + k], 0) + eps);
      W[a * d + b] = s;
    }
  const apply = (x: Float32Array) => {
    const m = x.length / d;
    const o = new Float32Array(x.length);
    for (let i = 0; i < m; i++)
      for (let b = 0; b < d; b++) {
        let s = 0;
        for (let a = 0; a < d; a++) s += (x[i * d + a] - mu[a]) * W[a * d + b];
        o[i * d + b] = s;
      }
    return o;
  };
  mkdirSync(whitenOut, { recursive: true });
  for (const [split, s] of Object.entries(tf.splits)) {
    const wi = apply(s.images),
      wt = apply(s.texts);
    writeNpy(join(whitenOut, `${split}.image.npy`), wi, [wi.length / d, d]);
    writeNpy(join(whitenOut, `${split}.text.npy`), wt, [wt.length / d, d]);
  }
  console.log(`whitened features (ZCA fitted on train, eps ${eps.toExponential(2)}) in ${whitenOut}`);
}
