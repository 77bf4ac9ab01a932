/**
 * `npx nx run training:bench-base`: one training step of the paper's student (vit-bert `base`:
 * ViT-B/16 224 px + BERT-base, random weights) on the onnx CPU engine, as the trainer runs it
 * (towers + contrastive loss in onnxruntime, AdamW in JS over Float32Arrays), next to the same
 * student in PyTorch (tools/bench/base_step.py, 1 torch thread + 2 OpenBLAS threads). Each
 * configuration runs in its own process, so its peak RSS is its own. Prints a table, then
 * `ratio_vs_pytorch_base=<distill ms / PyTorch ms>` at the largest batch measured.
 *
 *   npx nx run training:bench-base -- --batches 8,64 --steps 2
 */
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initRuntime } from '@distill/core';
import { createStudent, OnnxStudentEngine } from '@distill/student-architectures';
import {
  createTrainingContainer,
  resolveConfig,
  methodFor,
  OnnxStepEngine,
  peakRssBytes,
  planOnnxStep,
} from '@distill/training';

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
};
const DIM = 512;
const LENGTH = 32;

interface Row {
  engine: string;
  batch: number;
  ms: number;
  times: number[];
  pairs_per_s: number;
  peak_rss_bytes: number;
  params: number;
  estimate_bytes?: number;
  loss?: number;
  error?: string;
}

async function child(batch: number, warmup: number, steps: number): Promise<Row> {
  await initRuntime('wasm', { quiet: true });
  const student = createStudent('vit-bert', { preset: 'base', embedDim: DIM, seed: 0, maxLength: LENGTH });
  const container = createTrainingContainer();
  const cfg = resolveConfig({
    container,
    preset: 'smoke',
    overrides: { losses: 'none', batchSize: batch, lossOptions: { temperature: 0.05 } },
  });
  const state = (await methodFor(cfg, container)).createState(DIM, cfg);
  const onnx = new OnnxStudentEngine(student, { threads: cpus().length, seed: 0, head: state.graph!.head });
  // the trainer's choice: 'split' when it fits, else 'fused' (BENCH_MODE=split|fused forces one)
  const plan = planOnnxStep(onnx, {
    params: student.parameterCount().total,
    batchSize: batch,
    textLength: LENGTH,
    size: 'base',
  });
  const forced = process.env.BENCH_MODE as 'split' | 'fused' | undefined;
  if (forced) onnx.mode = forced;
  const est = plan.estimate;
  process.stderr.write(
    `distill batch ${batch}: step form '${onnx.mode}', estimated ${(est.bytes / 1024 ** 3).toFixed(1)} GB\n`,
  );
  const engine = new OnnxStepEngine(student, onnx, { lr: 1e-4, weightDecay: 1e-4, betas: [0.9, 0.999], eps: 1e-8 });
  const { crop } = student.preprocess;
  const pixels = new Float32Array(batch * 3 * crop * crop).map((_, i) => Math.sin(i * 0.37));
  const ids = new Int32Array(batch * LENGTH).map((_, i) => (i * 7919) % 30522);
  const mask = new Int32Array(batch * LENGTH).fill(1);
  const imageIds = Int32Array.from({ length: batch }, (_, i) => i);
  const times: number[] = [];
  let loss = 0;
  for (let s = 0; s < warmup + steps; s++) {
    const t0 = performance.now();
    loss = await engine.step(
      { pixels, ids, mask, batch, length: LENGTH, step: s },
      {
        balance: (c) => state.balancer.weights(Object.values(c)),
        tfjsLoss: () => {
          throw new Error('the contrastive loss runs in the graph');
        },
        graphFeeds: () => state.graph!.feeds({ batch, imageIds }),
      },
    );
    if (s >= warmup) times.push(performance.now() - t0);
    process.stderr.write(
      `distill batch ${batch} step ${s + 1}/${warmup + steps}: ${(performance.now() - t0).toFixed(0)} ms, loss ${loss.toFixed(4)}\n`,
    );
  }
  await engine.release();
  const sorted = [...times].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const ms = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2; // median, as Python's statistics.median
  return {
    engine: `distill-onnx-${onnx.mode}`,
    batch,
    ms,
    times,
    pairs_per_s: (batch / ms) * 1000,
    peak_rss_bytes: peakRssBytes(),
    params: student.parameterCount().total,
    estimate_bytes: est.bytes,
    loss,
  };
}

function lastJson(out: string): Row | undefined {
  const line = out
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  return line ? (JSON.parse(line) as Row) : undefined;
}

function runChild(batch: number, warmup: number, steps: number): Row {
  const r = spawnSync(
    process.execPath,
    [
      ...process.execArgv,
      fileURLToPath(import.meta.url),
      '--child',
      String(batch),
      '--warmup',
      String(warmup),
      '--steps',
      String(steps),
    ],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 24,
    },
  );
  return (
    lastJson(r.stdout) ?? {
      engine: 'distill-onnx',
      batch,
      ms: NaN,
      times: [],
      pairs_per_s: NaN,
      peak_rss_bytes: NaN,
      params: NaN,
      error: `exit ${r.status}`,
    }
  );
}

function runTorch(batch: number, warmup: number, steps: number): Row {
  const r = spawnSync(
    '/usr/bin/python3',
    [
      join(here, 'base_step.py'),
      '--batch',
      String(batch),
      '--length',
      String(LENGTH),
      '--dim',
      String(DIM),
      '--warmup',
      String(warmup),
      '--steps',
      String(steps),
    ],
    {
      encoding: 'utf8',
      env: { ...process.env, OPENBLAS_NUM_THREADS: '2' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const row = lastJson(r.stdout);
  return row
    ? { ...row, engine: 'pytorch' }
    : {
        engine: 'pytorch',
        batch,
        ms: NaN,
        times: [],
        pairs_per_s: NaN,
        peak_rss_bytes: NaN,
        params: NaN,
        error: `exit ${r.status} (is /usr/bin/python3 with torch installed?)`,
      };
}

const FLICKR_CAPTIONS = 145_000;
const gb = (b: number) => (b / 1024 ** 3).toFixed(1);

async function main() {
  const warmup = Number(arg('warmup', '1'));
  const steps = Number(arg('steps', '2'));
  if (process.argv.includes('--child')) {
    console.log(JSON.stringify(await child(Number(arg('child', '8')), warmup, steps)));
    return;
  }
  const batches = arg('batches', '8,64').split(',').map(Number);
  const rows: Row[] = [];
  for (const b of batches) {
    rows.push(runChild(b, warmup, steps));
    if (!process.argv.includes('--skip-pytorch')) rows.push(runTorch(b, warmup, steps));
  }
  console.log(
    `\nbase vit-bert (ViT-B/16 224 px + BERT-base, ${LENGTH} tokens, embed ${DIM}), ${warmup} warm-up + ${steps} timed steps, ${cpus().length} cores`,
  );
  console.log('| engine | batch | ms/step | pairs/s | peak RSS GB | est. GB | Flickr30K epoch (145k captions) |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const epochH = ((FLICKR_CAPTIONS / r.batch) * r.ms) / 3.6e6;
    console.log(
      `| ${r.engine} | ${r.batch} | ${r.error ? r.error : r.ms.toFixed(0)} | ${r.pairs_per_s.toFixed(2)} | ${gb(r.peak_rss_bytes)} | ${r.estimate_bytes ? gb(r.estimate_bytes) : ''} | ${epochH.toFixed(1)} h |`,
    );
  }
  const big = Math.max(...batches);
  const d = rows.find((r) => r.engine.startsWith('distill-onnx') && r.batch === big);
  const t = rows.find((r) => r.engine === 'pytorch' && r.batch === big);
  if (d && t && Number.isFinite(d.ms) && Number.isFinite(t.ms))
    console.log(`ratio_vs_pytorch_base=${(d.ms / t.ms).toFixed(2)}`);
  else console.log('ratio_vs_pytorch_base=unavailable');
}

await main();
