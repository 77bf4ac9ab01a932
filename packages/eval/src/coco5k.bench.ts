/**
 * `nx run eval:bench`: grouped Recall@K at COCO-5K size (5,000 images x 25,010 captions, dim 768) with
 * @distill/eval (onnxruntime-node GEMM when it imports, else tfjs wasm), and the ratio to the PyTorch/NumPy peer
 * (tools/bench/eval_peer.py, run with /usr/bin/python3). A benchmark, not a test.
 * Options: --images N --dim D --repeat R --engine auto|onnx|tf|js
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initRuntime, repoRoot, Rng, writeNpy } from '@distill/core';
import { computeRecallAsync } from './recall.js';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const nI = Number(arg('images', '5000'));
const dim = Number(arg('dim', '768'));
const repeat = Number(arg('repeat', '3'));
const engine = arg('engine', 'auto') as 'auto' | 'onnx' | 'tf' | 'js';
// 5 captions per image, plus one more for the first 10 images: 25,010 captions at COCO-5K size.
const extra = Math.min(10, nI);
const nT = nI * 5 + extra;

const rt = await initRuntime(engine === 'js' ? 'cpu' : 'wasm', { quiet: true });
const rng = new Rng(2026);
const unitRows = (a: Float32Array, rows: number) => {
  for (let r = 0; r < rows; r++) {
    let n = 0;
    for (let d = 0; d < dim; d++) n += a[r * dim + d] ** 2;
    n = Math.sqrt(n);
    for (let d = 0; d < dim; d++) a[r * dim + d] /= n;
  }
  return a;
};
const images = unitRows(rng.normalArray(nI * dim), nI);
const t2i = new Int32Array(nT);
for (let j = 0; j < nT; j++) t2i[j] = j < nI * 5 ? Math.floor(j / 5) : j - nI * 5;
// Captions = their image + noise, so recall is neither 0 nor 100.
const texts = new Float32Array(nT * dim);
for (let j = 0; j < nT; j++)
  for (let d = 0; d < dim; d++) texts[j * dim + d] = images[t2i[j] * dim + d] + 0.3 * rng.normal();
unitRows(texts, nT);

let best = Infinity;
let metrics: Awaited<ReturnType<typeof computeRecallAsync>> | undefined;
for (let r = 0; r < repeat; r++) {
  const t0 = performance.now();
  metrics = await computeRecallAsync(images, texts, dim, t2i, { engine });
  best = Math.min(best, (performance.now() - t0) / 1000);
}
const m = metrics!;
const ours = {
  i2t_r1: m.i2t_r1,
  i2t_r5: m.i2t_r5,
  i2t_r10: m.i2t_r10,
  t2i_r1: m.t2i_r1,
  t2i_r5: m.t2i_r5,
  t2i_r10: m.t2i_r10,
  rsum: m.rsum,
};
console.log(
  `distill eval (${m.engine === 'onnx' ? 'onnxruntime GEMM' : `${m.engine} on ${rt.backend}`}): ${nI} images x ${nT} captions x dim ${dim}: ${best.toFixed(3)} s (best of ${repeat})`,
);
console.log(`  ${JSON.stringify(ours)}`);

const dir = mkdtempSync(join(tmpdir(), 'distill-evalbench-'));
try {
  writeNpy(join(dir, 'images.npy'), images, [nI, dim]);
  writeNpy(join(dir, 'texts.npy'), texts, [nT, dim]);
  writeNpy(join(dir, 't2i.npy'), t2i, [nT]);
  const py = process.env.DISTILL_PYTHON ?? '/usr/bin/python3';
  const p = spawnSync(
    py,
    [
      join(repoRoot(), 'tools/bench/eval_peer.py'),
      '--images',
      join(dir, 'images.npy'),
      '--texts',
      join(dir, 'texts.npy'),
      '--text-image',
      join(dir, 't2i.npy'),
      '--repeat',
      String(repeat),
    ],
    { encoding: 'utf8' },
  );
  if (p.status !== 0) {
    console.log(`peer: not run (${py}: ${(p.stderr || p.error?.message || '').trim().split('\n').pop()})`);
  } else {
    const peer = JSON.parse(p.stdout.trim().split('\n').pop()!) as {
      engine: string;
      seconds: number;
      metrics: Record<string, number>;
    };
    console.log(`peer ${peer.engine}: ${peer.seconds.toFixed(3)} s (best of ${repeat})`);
    const diffs = Object.entries(ours).map(([k, v]) => Math.abs(v - peer.metrics[k]));
    console.log(
      `ratio distill/peer: ${(best / peer.seconds).toFixed(2)}x; max metric difference ${Math.max(...diffs).toExponential(2)} (percent points)`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
