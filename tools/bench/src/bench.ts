/**
 * `npx nx run core:bench` — one training step (forward + backward + AdamW) of the reference
 * transformer on each tfjs backend, versus the same step in PyTorch (tools/bench/reference_step.py).
 *
 * Options (after `--`): --steps N (5) --warmup N (2) --budget-s S (60: slow backends are estimated
 * from a batch-2 step and skipped above this) --variants onnx,onnx-1t,wasm-nofix,wasm,wasm-fast,wasm-fast-dp2,cpu --no-torch
 * --torch-python /usr/bin/python3 --json FILE --tiny (a small config, for smoke tests).
 * Last line: `ratio_vs_pytorch=<x>` (best distill variant / PyTorch, medians) or `=n/a (<reason>)`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initRuntime, installWasmFastKernels } from '@distill/core';
import { startDataParallel } from './data-parallel.js';
import { OnnxReferenceTrainer } from './reference-onnx.js';
import { summariseOrtProfile, formatOrtProfile, type OrtOpStat } from './ort-profile.js';
import { formatKernelTable, installKernelProfiler, type KernelStat } from './kernel-profile.js';
import {
  REFERENCE_CONFIG,
  type ReferenceConfig,
  createReferenceModel,
  paramCount,
  referenceStep,
  stepFlops,
} from './reference-model.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '2' },
    'budget-s': { type: 'string', default: '60' },
    variants: { type: 'string', default: 'onnx,wasm-nofix,wasm,wasm-fast,wasm-fast-dp2,cpu' },
    'no-torch': { type: 'boolean', default: false },
    'torch-python': { type: 'string', default: '/usr/bin/python3' },
    'torch-blas-threads': { type: 'string', default: '2' },
    json: { type: 'string' },
    tiny: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
  },
  allowPositionals: true,
});

const config: ReferenceConfig = args.tiny
  ? { layers: 2, batch: 4, seq: 17, dim: 64, heads: 4, mlp: 128 }
  : REFERENCE_CONFIG;
const steps = Number(args.steps);
const warmup = Number(args.warmup);
const budgetMs = Number(args['budget-s']) * 1000;
const flops = stepFlops(config);
const err = (s: string) => process.stderr.write(`${s}\n`);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

interface Result {
  variant: string;
  msPerStep?: number;
  msAll?: number[];
  gflops?: number;
  skipped?: string;
  estimatedMs?: number;
  lossFirst?: number;
  lossLast?: number;
}
const results: Result[] = [];

/** Times `n` steps after `w` warm-up steps of a fresh model with config `c`. */
function timeSteps(c: ReferenceConfig, w: number, n: number): { ms: number[]; losses: number[] } {
  const model = createReferenceModel(c, 1);
  const ms: number[] = [];
  const losses: number[] = [];
  try {
    for (let s = 0; s < w + n; s++) {
      const t0 = performance.now();
      losses.push(referenceStep(model));
      const dt = performance.now() - t0;
      if (s >= w) ms.push(dt);
    }
  } finally {
    model.dispose();
  }
  return { ms, losses };
}

/** Measures the current backend; slow ones are first estimated from a batch-2 step. */
function measure(variant: string, slow: boolean): Result {
  let w = warmup;
  let n = steps;
  let estimatedMs: number | undefined;
  if (slow && config.batch > 2) {
    const small = { ...config, batch: 2 };
    const { ms } = timeSteps(small, 1, 1);
    estimatedMs = ms[0] * (config.batch / small.batch);
    if (estimatedMs > budgetMs) {
      const reason = `estimated ${(estimatedMs / 1000).toFixed(1)} s/step (batch-2 step x ${config.batch / 2}) > budget ${budgetMs / 1000} s (--budget-s)`;
      err(`${variant}: skipped, ${reason}`);
      return { variant, skipped: reason, estimatedMs };
    }
    // One measured step only: slow backends have nothing to warm up beyond the batch-2 step.
    w = 0;
    n = 1;
  }
  err(`${variant}: ${w} warm-up + ${n} timed steps...`);
  const { ms, losses } = timeSteps(config, w, n);
  return resultOf(variant, ms, losses, estimatedMs);
}

interface TorchResult {
  ms_per_step: number;
  ms_all: number[];
  torch: string;
  params: number;
}

function runTorch(): TorchResult | string {
  const py = args['torch-python']!;
  if (!existsSync(py)) return `${py} not found`;
  const probe = spawnSync(py, ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return `${py} cannot import torch`;
  const script = join(repoRoot, 'tools/bench/reference_step.py');
  const cli = ['layers', 'batch', 'seq', 'dim', 'heads', 'mlp'].flatMap((k) => [
    `--${k}`,
    String(config[k as keyof ReferenceConfig]),
  ]);
  const r = spawnSync(py, [script, ...cli, '--warmup', String(warmup), '--steps', String(steps), '--threads', '1'], {
    encoding: 'utf8',
    env: { ...process.env, OPENBLAS_NUM_THREADS: args['torch-blas-threads'] },
  });
  if (r.status !== 0) return `reference_step.py failed: ${(r.stderr || '').trim().split('\n').pop()}`;
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchResult;
}

/** The result row of timed steps (median ms, GFLOP/s, first and last loss), printed as it is made. */
function resultOf(variant: string, ms: number[], losses: number[], estimatedMs?: number): Result {
  const msPerStep = median(ms);
  const r: Result = {
    variant,
    msPerStep,
    msAll: ms.map((x) => Math.round(x * 10) / 10),
    gflops: flops.total / (msPerStep / 1000) / 1e9,
    estimatedMs,
    lossFirst: losses[0],
    lossLast: losses[losses.length - 1],
  };
  err(`${variant}: ${msPerStep.toFixed(1)} ms/step [${r.msAll!.join(', ')}]`);
  return r;
}

/** `warmup` untimed then `steps` timed calls of an async training step (returns its loss); `close` always runs. */
async function timeAsyncSteps(
  variant: string,
  step: () => Promise<number>,
  close: () => Promise<void>,
): Promise<Result> {
  const ms: number[] = [];
  const losses: number[] = [];
  try {
    for (let s = 0; s < warmup + steps; s++) {
      const t0 = performance.now();
      losses.push(await step());
      if (s >= warmup) ms.push(performance.now() - t0);
    }
  } finally {
    await close();
  }
  return resultOf(variant, ms, losses);
}

/** Data-parallel wasm step over `workers` worker_threads (tools/bench/src/data-parallel.ts). */
async function measureDataParallel(variant: string, workers: number, fastKernels: boolean): Promise<Result> {
  err(`${variant}: starting ${workers} workers, ${warmup} warm-up + ${steps} timed steps...`);
  const dp = await startDataParallel({
    workers,
    taskModule: new URL('./reference-task.ts', import.meta.url),
    init: { config, seed: 1 },
    backend: 'wasm',
    fastKernels,
  });
  return timeAsyncSteps(
    variant,
    () => dp.step(),
    () => dp.close(),
  );
}

/**
 * The onnx engine (@distill/autodiff graphs run by @distill/core's OnnxRunner): forward + backward as one onnxruntime-node graph,
 * AdamW in JS. Starts from the same parameters and data as the tfjs variants (seed 1).
 */
async function measureOnnx(
  variant: string,
  threads: number | undefined,
  profile: boolean,
): Promise<{ result: Result; profile?: OrtOpStat[] }> {
  await initRuntime('cpu', { quiet: true });
  const ref = createReferenceModel(config, 1);
  const init = {
    params: ref.params.map((p) => p.dataSync() as Float32Array),
    x: ref.x.dataSync() as Float32Array,
    target: ref.target.dataSync() as Float32Array,
  };
  ref.dispose();
  err(`${variant}: compiling the graph, ${warmup} warm-up + ${steps} timed steps...`);
  const trainer = await OnnxReferenceTrainer.create(config, init, { threads });
  const result = await timeAsyncSteps(
    variant,
    () => trainer.trainStep(),
    () => trainer.release(),
  );
  if (!profile) return { result };
  err(`${variant}: per-op profile (onnxruntime profiler), 1 warm-up + ${PROFILE_STEPS} steps...`);
  const dir = mkdtempSync(join(tmpdir(), 'distill-ort-profile-'));
  const prof = await OnnxReferenceTrainer.create(config, init, { threads, profileDir: dir });
  try {
    for (let s = 0; s < PROFILE_STEPS + 1; s++) await prof.trainStep();
  } finally {
    await prof.release();
  }
  const stats = summariseOrtProfile(dir, PROFILE_STEPS, 1);
  rmSync(dir, { recursive: true, force: true });
  return { result, profile: stats };
}

const PROFILE_STEPS = 3;

/** Per-kernel times of the wasm step: the step closest to the median total of PROFILE_STEPS (after 1 warm-up). */
function profileWasm(label = 'wasm'): KernelStat[] {
  err(`${label}: per-kernel profile, 1 warm-up + ${PROFILE_STEPS} steps...`);
  const prof = installKernelProfiler('wasm');
  const model = createReferenceModel(config, 1);
  const runs: KernelStat[][] = [];
  try {
    referenceStep(model);
    for (let s = 0; s < PROFILE_STEPS; s++) {
      prof.reset();
      referenceStep(model);
      runs.push(prof.stats());
    }
  } finally {
    model.dispose();
    prof.uninstall();
  }
  const totals = runs.map((r) => r.reduce((a, x) => a + x.ms, 0));
  const m = median(totals);
  return runs[totals.findIndex((t) => t === m) >= 0 ? totals.findIndex((t) => t === m) : 0];
}

async function useWasmWithoutFix(): Promise<boolean> {
  const wasm = (await import('@tensorflow/tfjs-backend-wasm')) as { setWasmPaths(p: string): void };
  const require = createRequire(import.meta.url);
  wasm.setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
  return tf.setBackend('wasm');
}

async function main(): Promise<void> {
  const variants = args
    .variants!.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  err(
    `reference step: ${JSON.stringify(config)}, ${(paramCount(config) / 1e6).toFixed(3)}M params, ` +
      `${(flops.total / 1e9).toFixed(2)} GFLOP/step (fwd ${(flops.forward / 1e9).toFixed(2)}, bwd ${(flops.backward / 1e9).toFixed(2)})`,
  );
  let profile: KernelStat[] | undefined;
  let profileFast: KernelStat[] | undefined;
  const torchRuns: TorchResult[] = [];
  let torchMissing: string | undefined;
  const torch = () => {
    if (args['no-torch'] || torchMissing) return;
    err('pytorch: running tools/bench/reference_step.py ...');
    const r = runTorch();
    if (typeof r === 'string') {
      torchMissing = r;
      err(`pytorch: ${r}`);
    } else {
      torchRuns.push(r);
      err(`pytorch: ${r.ms_per_step.toFixed(1)} ms/step [${r.ms_all.join(', ')}]`);
    }
  };

  // The fix is installed globally by initRuntime('wasm') and cannot be removed: measure without it first.
  if (variants.includes('wasm-nofix')) {
    if (await useWasmWithoutFix()) results.push(measure('wasm-nofix', true));
    else results.push({ variant: 'wasm-nofix', skipped: 'tf.setBackend("wasm") failed' });
  }
  // PyTorch back to back with (before and after) the main distill measurement: the machine is shared.
  torch();
  let profileOnnx: OrtOpStat[] | undefined;
  for (const v of variants) {
    const m = /^onnx(?:-(\d+)t)?$/.exec(v);
    if (!m) continue;
    try {
      const r = await measureOnnx(v, m[1] ? Number(m[1]) : undefined, !!args.profile && !profileOnnx);
      results.push(r.result);
      profileOnnx ??= r.profile;
    } catch (e) {
      results.push({ variant: v, skipped: String((e as Error).message).split('\n')[0] });
    }
  }
  if (variants.includes('wasm')) {
    try {
      await initRuntime('wasm', { quiet: true });
      results.push(measure('wasm', false));
      if (args.profile) profile = profileWasm();
    } catch (e) {
      results.push({ variant: 'wasm', skipped: String((e as Error).message) });
    }
  }
  // Opt-in fast paths (@distill/core's installWasmFastKernels): installed from here on.
  if (variants.some((v) => v.startsWith('wasm-fast'))) {
    await initRuntime('wasm', { quiet: true });
    installWasmFastKernels();
  }
  if (variants.includes('wasm-fast')) {
    results.push(measure('wasm-fast', false));
    if (args.profile) profileFast = profileWasm('wasm-fast');
  }
  for (const v of variants) {
    const m = /^wasm(-fast)?-dp(\d+)$/.exec(v);
    if (!m) continue;
    try {
      results.push(await measureDataParallel(v, Number(m[2]), !!m[1]));
    } catch (e) {
      results.push({ variant: v, skipped: String((e as Error).message).split('\n')[0] });
    }
  }
  torch();
  if (variants.includes('cpu')) {
    await initRuntime('cpu', { quiet: true });
    results.push(measure('cpu', true));
  }

  const torchAll = torchRuns.flatMap((r) => r.ms_all);
  const torchMs = torchAll.length ? median(torchAll) : undefined;
  const rows: string[] = [];
  const fmt = (ms: number) => ms.toFixed(1).padStart(10);
  rows.push(`${'engine'.padEnd(14)} ${'ms/step'.padStart(10)} ${'GFLOP/s'.padStart(8)} ${'vs torch'.padStart(9)}`);
  for (const r of results) {
    if (r.msPerStep === undefined) {
      rows.push(`${r.variant.padEnd(14)} ${'skipped'.padStart(10)}  (${r.skipped})`);
      continue;
    }
    const ratio = torchMs ? (r.msPerStep / torchMs).toFixed(2) + 'x' : 'n/a';
    rows.push(`${r.variant.padEnd(14)} ${fmt(r.msPerStep)} ${r.gflops!.toFixed(2).padStart(8)} ${ratio.padStart(9)}`);
  }
  if (torchMs) {
    rows.push(
      `${'pytorch'.padEnd(14)} ${fmt(torchMs)} ${(flops.total / (torchMs / 1000) / 1e9).toFixed(2).padStart(8)} ${'1.00x'.padStart(9)}` +
        `  (torch ${torchRuns[0].torch}, 1 thread + ${args['torch-blas-threads']} BLAS threads; runs: ${torchRuns.map((r) => r.ms_per_step.toFixed(1)).join(' / ')} ms)`,
    );
  }
  process.stdout.write(rows.join('\n') + '\n');
  if (profileOnnx)
    process.stdout.write(
      `\nonnx per-op profile (onnxruntime profiler, mean step of ${PROFILE_STEPS}; AdamW runs in JS, outside it):\n${formatOrtProfile(profileOnnx)}\n\n`,
    );
  if (profile)
    process.stdout.write(
      `\nwasm per-kernel profile (median step of ${PROFILE_STEPS}):\n${formatKernelTable(profile, 1)}\n\n`,
    );
  if (profileFast)
    process.stdout.write(
      `wasm-fast per-kernel profile (median step of ${PROFILE_STEPS}):\n${formatKernelTable(profileFast, 1)}\n\n`,
    );

  const measured = results.filter((r) => r.msPerStep !== undefined).sort((a, b) => a.msPerStep! - b.msPerStep!);
  const best = measured[0];
  let last: string;
  if (!best) last = 'ratio_vs_pytorch=n/a (no distill backend measured)';
  else if (!torchMs)
    last = `ratio_vs_pytorch=n/a (${args['no-torch'] ? '--no-torch' : (torchMissing ?? 'pytorch not run')})`;
  else {
    process.stdout.write(`best distill variant: ${best.variant}\n`);
    last = `ratio_vs_pytorch=${(best.msPerStep! / torchMs).toFixed(2)}`;
  }
  if (args.json) {
    writeFileSync(
      args.json,
      JSON.stringify(
        {
          config,
          params: paramCount(config),
          profileOnnx,
          profile,
          profileFast,
          flops,
          results,
          torch: torchRuns,
          torchMs,
        },
        null,
        2,
      ) + '\n',
    );
  }
  process.stdout.write(`${last}\n`);
}

main().catch((e) => {
  err(String((e as Error).stack ?? e));
  process.exit(1);
});
