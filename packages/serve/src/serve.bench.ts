/**
 * Serving benchmark (`npx nx run serve:bench`, not a test): figures for docs/benchmarks.md.
 *  1. encoder latency on onnxruntime-node of the exported student vs the exported teacher, batch 1 and 64
 *     (the emoji student of the smoke/emoji presets vs the embedded emoji teacher; with --paper also the
 *     paper's ViT-B/16 + BERT-base student at 224 px, random weights: latency does not depend on them);
 *  2. the vector index (usearch HNSW, cosine, M=16, ef_add=128, ef_search=64): build time, queries per
 *     second (one query per call, as a server sees them) and recall@10 against exact search, on synthetic
 *     clustered unit vectors of the student's dimension (100k; 1M with --vectors 100000,1000000).
 * Options: --vectors <n,...>  --queries <n>  --paper  --student <saved student or run dir>  --threads <n>
 */
import { cpus, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initRuntime, l2NormalizeRows, Rng } from '@distill/core';
import { createStudent, loadTokenizer, saveStudent } from '@distill/student-architectures';
import { exactSearch, Index, MetricKind, ScalarKind } from 'usearch';
import { exportStudent } from './export.js';
import { OnnxModel } from './model.js';
import { encoderLatency } from './measure.js';
import { HNSW_DEFAULTS } from './vector-index.js';

const argv = process.argv.slice(2);
const arg = (name: string, def?: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? '') : def;
};
const flag = (name: string) => argv.includes(`--${name}`);
const threads = Number(arg('threads', String(cpus().length)));
const sizes = String(arg('vectors', '100000')).split(',').map(Number);
const nQueries = Number(arg('queries', '1000'));
const TEACHER_DIR = fileURLToPath(new URL('../../teacher-adapters/assets/teachers/emoji-teacher-v1', import.meta.url));

async function encoders(tmp: string): Promise<string[]> {
  const rows: string[] = [];
  const tokenizer = loadTokenizer(join(TEACHER_DIR, 'tokenizer.json'), { maxLength: 30 });
  const models: { label: string; dir: string; params: string }[] = [];
  const fromStudent = async (label: string, pair: string, preset: 'tiny' | 'base', embedDim: number) => {
    const s = createStudent(pair, { preset, embedDim, seed: 0, tokenizer, maxLength: 30 });
    const dir = join(tmp, label.replace(/\W+/g, '-'));
    saveStudent(dir, s);
    const p = (s.parameterCount().total / 1e6).toFixed(2);
    s.dispose();
    return { dir, params: `${p}M` };
  };
  const studentSrc = arg('student');
  if (studentSrc) models.push({ label: `student (${studentSrc})`, dir: studentSrc, params: '' });
  else
    models.push({
      label: 'student: vit-bert tiny (smoke/emoji presets)',
      ...(await fromStudent('student tiny', 'vit-bert', 'tiny', 256)),
    });
  models.push({ label: 'teacher: embedded emoji teacher', dir: TEACHER_DIR, params: '1.24M' });
  if (flag('paper'))
    models.push({
      label: "student: vit-bert base, 224 px (the paper's student size)",
      ...(await fromStudent('student base', 'vit-bert', 'base', 768)),
    });
  rows.push(
    `onnxruntime-node CPU, ${threads} threads (${cpus()[0]?.model ?? 'cpu'}), median of 20 runs at batch 1 and 5 at batch 64:`,
    '',
  );
  rows.push(
    '| model | params | export parity (image / text) | image ms b=1 | text ms b=1 | image ms b=64 | text ms b=64 | image imgs/s b=64 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const m of models) {
    const out = join(tmp, `onnx-${models.indexOf(m)}`);
    const t0 = performance.now();
    const r = await exportStudent(m.dir, out);
    const exportS = (performance.now() - t0) / 1000;
    const model = await OnnxModel.load(out, { threads });
    const b1 = await encoderLatency(model, 1, 20);
    const b64 = await encoderLatency(model, 64, 5);
    await model.dispose();
    rows.push(
      `| ${m.label} | ${m.params} | ${r.parity.image.toExponential(1)} / ${r.parity.text.toExponential(1)} | ${b1.image.toFixed(2)} | ${b1.text.toFixed(2)} | ${b64.image.toFixed(1)} | ${b64.text.toFixed(1)} | ${((64 / b64.image) * 1000).toFixed(0)} |`,
    );
    process.stderr.write(`${m.label}: exported in ${exportS.toFixed(1)} s; ${rows.at(-1)}\n`);
  }
  return rows;
}

/** n unit vectors around `centers` random cluster centres (embeddings cluster; uniform random vectors are HNSW's worst case). */
function clustered(
  rng: Rng,
  n: number,
  dim: number,
  centers: Float32Array,
  nCenters: number,
  noise = 0.6,
): Float32Array {
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(rng.next() * nCenters);
    for (let d = 0; d < dim; d++) x[i * dim + d] = centers[c * dim + d] + (noise * rng.normal()) / Math.sqrt(dim);
  }
  return l2NormalizeRows(x, dim);
}

async function vectors(dim: number): Promise<string[]> {
  const rows = [
    `usearch ${HNSW_DEFAULTS.connectivity}-connectivity HNSW (ef_add ${HNSW_DEFAULTS.expansionAdd}, ef_search ${HNSW_DEFAULTS.expansionSearch}), cosine, f32, ${dim}-d clustered unit vectors, ${threads} threads for the build; ` +
      `queries one at a time (1 thread), recall@10 = |HNSW top-10 ∩ exact top-10| / 10 over the queries; exact = usearch's brute-force exactSearch (all threads):`,
    '',
    '| vectors | build s | inserts/s | HNSW QPS | HNSW ms/query | exact QPS | recall@10 | index MiB |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const n of sizes) {
    const rng = new Rng(n);
    const nCenters = Math.max(100, Math.round(n / 100));
    const centers = rng.normalArray(nCenters * dim);
    for (let c = 0; c < nCenters; c++) {
      // unit centres; each point = centre + noise of norm ~0.6 (cosine to its centre ~0.86), renormalised
      const row = centers.subarray(c * dim, (c + 1) * dim);
      const norm = Math.hypot(...row);
      for (let d = 0; d < dim; d++) row[d] /= norm;
    }
    const data = clustered(rng, n, dim, centers, nCenters);
    const q = Math.min(nQueries, n >= 1_000_000 ? 200 : nQueries);
    const queries = clustered(rng, q, dim, centers, nCenters);
    const index = new Index({
      dimensions: dim,
      metric: MetricKind.Cos,
      quantization: ScalarKind.F32,
      multi: false,
      connectivity: HNSW_DEFAULTS.connectivity,
      expansion_add: HNSW_DEFAULTS.expansionAdd,
      expansion_search: HNSW_DEFAULTS.expansionSearch,
    });
    const keys = new BigUint64Array(n);
    for (let i = 0; i < n; i++) keys[i] = BigInt(i);
    let t0 = performance.now();
    index.add(keys, data, threads);
    const buildS = (performance.now() - t0) / 1000;
    const tmp = mkdtempSync(join(tmpdir(), 'distill-bench-'));
    index.save(join(tmp, 'i.usearch'));
    const { statSync } = await import('node:fs');
    const mib = statSync(join(tmp, 'i.usearch')).size / 2 ** 20;
    rmSync(tmp, { recursive: true, force: true });
    // copies: usearch 2.26 exactSearch ignores a subarray's byteOffset
    const approx: bigint[][] = [];
    t0 = performance.now();
    for (let i = 0; i < q; i++)
      approx.push(Array.from(index.search(queries.slice(i * dim, (i + 1) * dim), 10, 1).keys));
    const hnswS = (performance.now() - t0) / 1000;
    const exact: bigint[][] = [];
    let exactS = 0;
    for (let i = 0; i < q; i++) {
      const t = performance.now();
      exact.push(
        Array.from(
          (
            exactSearch(data, queries.slice(i * dim, (i + 1) * dim), dim, 10, MetricKind.Cos, threads) as {
              keys: BigUint64Array;
            }
          ).keys,
        ),
      );
      exactS += (performance.now() - t) / 1000;
    }
    let hit = 0;
    for (let i = 0; i < q; i++) {
      const truth = new Set(exact[i]);
      hit += approx[i].filter((k) => truth.has(k)).length;
    }
    const recall = hit / (q * 10);
    rows.push(
      `| ${n.toLocaleString('en')} | ${buildS.toFixed(1)} | ${(n / buildS).toFixed(0)} | ${(q / hnswS).toFixed(0)} | ${((hnswS / q) * 1000).toFixed(3)} | ${(q / exactS).toFixed(1)} | ${recall.toFixed(4)} | ${mib.toFixed(0)} |`,
    );
    process.stderr.write(`${n} vectors: ${rows.at(-1)}\n`);
  }
  return rows;
}

await initRuntime('auto', { quiet: true });
const tmp = mkdtempSync(join(tmpdir(), 'distill-serve-bench-'));
try {
  const lines = flag('no-encoders') ? [] : await encoders(tmp);
  const v = flag('no-index') ? [] : await vectors(Number(arg('dim', '256')));
  process.stdout.write([...lines, '', ...v, ''].join('\n'));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
