// Usage: node --conditions=@distill/source --import tsx packages/experiments/scripts/subspace-overlap.ts <run folder of distill train> ...
// For trained runs: the share of the student's test-embedding energy inside its teacher's top-k principal subspace
// (uncentred, fitted on the teacher's train features), against k/d for a random subspace; and the mean cosine of
// each student image embedding with its own teacher feature (what DSMD's sd loss pulls up).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, initRuntime } from '@distill/core';
import { loadFeatureStore } from '@distill/teacher-adapters';
import { createTrainingContainer, obtainTeacherFeatures, type TrainConfig } from '@distill/training';
import { datasetOf, studentTestEmbeddings } from '../src/evaluate.js';

const log = createLogger({ level: 'warn' } as never);
const container = createTrainingContainer();
await initRuntime('auto', { logger: log, quiet: true });
const K = [4, 16];
function topBasis(x: Float32Array, d: number, k: number): Float64Array[] {
  const n = x.length / d;
  const M = new Float64Array(d * d);
  for (let i = 0; i < n; i++)
    for (let a = 0; a < d; a++) {
      const xa = x[i * d + a];
      if (!xa) continue;
      for (let b = 0; b < d; b++) M[a * d + b] += xa * x[i * d + b];
    }
  const out: Float64Array[] = [];
  let seed = 1;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5;
  for (let m = 0; m < k; m++) {
    let v = Float64Array.from({ length: d }, rnd);
    for (let it = 0; it < 300; it++) {
      const u = new Float64Array(d);
      for (let a = 0; a < d; a++) {
        let s = 0;
        for (let b = 0; b < d; b++) s += M[a * d + b] * v[b];
        u[a] = s;
      }
      for (const p of out) {
        let dot = 0;
        for (let a = 0; a < d; a++) dot += u[a] * p[a];
        for (let a = 0; a < d; a++) u[a] -= dot * p[a];
      }
      const nrm = Math.sqrt(u.reduce((s, t) => s + t * t, 0));
      if (!nrm) break;
      v = u.map((t) => t / nrm);
    }
    out.push(v);
  }
  return out;
}
const share = (x: Float32Array, d: number, basis: Float64Array[]) => {
  const n = x.length / d;
  let inside = 0,
    total = 0;
  for (let i = 0; i < n; i++) {
    let t = 0;
    for (let a = 0; a < d; a++) t += x[i * d + a] ** 2;
    total += t;
    for (const p of basis) {
      let dot = 0;
      for (let a = 0; a < d; a++) dot += x[i * d + a] * p[a];
      inside += dot * dot;
    }
  }
  return inside / total;
};
for (const dir of process.argv.slice(2)) {
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).config as TrainConfig;
  const sdir = join(dir, 'student');
  const ds = await datasetOf(cfg, container);
  const teacher =
    cfg.teacher.name === 'features'
      ? loadFeatureStore(cfg.teacher.model!, ds)
      : await obtainTeacherFeatures(cfg, ds, log, container);
  const orig = await obtainTeacherFeatures(
    { ...cfg, teacher: { ...cfg.teacher, name: 'emoji', model: undefined } } as TrainConfig,
    ds,
    log,
    container,
  );
  const d = teacher.dim;
  const st = await studentTestEmbeddings(cfg, sdir, container, log);
  const res: Record<string, unknown> = { run: dir.split('/').at(-1) };
  const train = (t: { splits: Record<string, { images: Float32Array; texts: Float32Array }> }) => {
    const s = t.splits.train;
    const a = new Float32Array(s.images.length + s.texts.length);
    a.set(s.images);
    a.set(s.texts, s.images.length);
    return a;
  };
  for (const k of K) {
    res[`ownTeacherTop${k}`] = +share(st.images, d, topBasis(train(teacher), d, k)).toFixed(3);
    res[`emojiTeacherTop${k}`] = +share(st.images, d, topBasis(train(orig), d, k)).toFixed(3);
    res[`random${k}`] = +(k / d).toFixed(3);
  }
  const tI = teacher.splits.test.images;
  let c = 0;
  const n = st.images.length / d;
  for (let i = 0; i < n; i++) {
    let dot = 0,
      nt = 0;
    for (let a = 0; a < d; a++) {
      dot += st.images[i * d + a] * tI[i * d + a];
      nt += tI[i * d + a] ** 2;
    }
    c += dot / Math.sqrt(nt);
  }
  res.meanCosStudentTeacherImages = +(c / n).toFixed(3);
  // collapse: mean cosine between different students' image embeddings, and image vs (all) caption embeddings
  const pair = (a: Float32Array, b: Float32Array, same: boolean) => {
    const na = a.length / d,
      nb = Math.min(b.length / d, 1500);
    let t = 0,
      k = 0;
    for (let i = 0; i < na; i++)
      for (let j = 0; j < nb; j++) {
        if (same && i === j) continue;
        let x = 0;
        for (let q = 0; q < d; q++) x += a[i * d + q] * b[j * d + q];
        t += x;
        k++;
      }
    return t / k;
  };
  res.studentCosImageImage = +pair(st.images, st.images, true).toFixed(3);
  res.studentCosImageText = +pair(st.images, st.texts, false).toFixed(3);
  res.teacherCosImageImage = +pair(tI, tI, true).toFixed(3);
  res.testRsum = +JSON.parse(readFileSync(join(sdir, 'result.json'), 'utf8')).test.rsum.toFixed(2);
  console.log(JSON.stringify(res));
}
