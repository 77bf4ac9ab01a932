/**
 * One training step of a student pair (default: the paper's vit-bert `base`, ViT-B/16 224 px +
 * BERT-base, random weights) as the trainer runs it on the onnx engine, towers + contrastive loss in
 * one graph pair, on one execution provider, in two modes:
 *  - resident: the engine's WebGPU form (OnnxStudentEngine resident + DeviceAdamW): weights, AdamW
 *              moments, gradients and saved activations stay on the device; only the loss values
 *              (and the batch going up) cross per step. On the CPU provider the same code runs with
 *              CPU tensors.
 *  - upload:   the host-side form: weights uploaded every run, saved activations and gradients
 *              back to JS, AdamW in JS (ArrayAdamW).
 * Prints one JSON line per mode (ms/step median, host peak RSS). Bundled by build.sh as student.cjs
 * (run.sh --workload base|all); its PyTorch peer is torch_base_step.py.
 *
 *   node --conditions=@distill/source --import tsx tools/bench/gpu/student-bench.ts --device cpu --size tiny --batch 4
 */
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { initRuntime } from '@distill/core';
import { createStudent, OnnxStudentEngine } from '@distill/student-architectures';
import { createTrainingContainer, resolveConfig, methodFor, OnnxStepEngine, peakRssBytes } from '@distill/training';

const { values: a } = parseArgs({
  options: {
    device: { type: 'string', default: 'webgpu' },
    modes: { type: 'string', default: 'resident,upload' },
    student: { type: 'string', default: 'vit-bert' },
    size: { type: 'string', default: 'base' },
    batch: { type: 'string', default: '64' },
    length: { type: 'string', default: '32' },
    dim: { type: 'string', default: '512' },
    warmup: { type: 'string', default: '2' },
    steps: { type: 'string', default: '5' },
  },
  allowPositionals: false,
});
const device = a.device!;
if (!['cpu', 'webgpu'].includes(device)) throw new Error(`--device must be cpu or webgpu, not ${device}`);
const [batch, length, dim, warmup, steps] = [a.batch, a.length, a.dim, a.warmup, a.steps].map(Number);
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];

async function run(mode: 'resident' | 'upload') {
  // tfjs only makes the random weights (its plain-JS cpu backend: nothing to bundle besides JS)
  await initRuntime('cpu', { quiet: true });
  const t0 = performance.now();
  const student = createStudent(a.student!, {
    preset: a.size as 'tiny' | 'small' | 'base',
    embedDim: dim,
    seed: 0,
    maxLength: length,
  });
  const container = createTrainingContainer();
  const cfg = resolveConfig({
    container,
    preset: 'smoke',
    overrides: { losses: 'none', batchSize: batch, lossOptions: { temperature: 0.05 } },
  });
  const state = (await methodFor(cfg, container)).createState(dim, cfg);
  const onnx = new OnnxStudentEngine(student, {
    threads: cpus().length,
    seed: 0,
    head: state.graph!.head,
    executionProviders: [device],
    resident: mode === 'resident',
  });
  const engine = new OnnxStepEngine(student, onnx, { lr: 1e-4, weightDecay: 1e-4, betas: [0.9, 0.999], eps: 1e-8 });
  const setupMs = performance.now() - t0;
  const { crop } = student.preprocess;
  const pixels = new Float32Array(batch * 3 * crop * crop).map((_, i) => Math.sin(i * 0.37));
  const vocab = student.tokenizer?.vocabSize ?? 1000;
  const ids = new Int32Array(batch * length).map((_, i) => (i * 7919) % vocab);
  const mask = new Int32Array(batch * length).fill(1);
  const imageIds = Int32Array.from({ length: batch }, (_, i) => i);
  const ms: number[] = [];
  const losses: number[] = [];
  for (let s = 0; s < warmup + steps; s++) {
    const t = performance.now();
    const loss = await engine.step(
      { pixels, ids, mask, batch, length, step: s },
      {
        balance: (c) => state.balancer.weights(Object.values(c)),
        tfjsLoss: () => {
          throw new Error('the contrastive loss runs in the graph');
        },
        graphFeeds: () => state.graph!.feeds({ batch, imageIds }),
      },
    );
    losses.push(loss);
    if (s >= warmup) ms.push(performance.now() - t);
    process.stderr.write(
      `${a.student} ${a.size} ${device} ${mode} step ${s + 1}/${warmup + steps}: ${(performance.now() - t).toFixed(0)} ms, loss ${loss.toFixed(5)}\n`,
    );
  }
  const tf = performance.now();
  await engine.flush(); // what a checkpoint costs: weights and moments read back
  const flushMs = performance.now() - tf;
  await engine.release();
  state.dispose();
  student.dispose();
  return { ms, losses, setupMs, flushMs, params: onnx.params.reduce((n, p) => n + p.length, 0) };
}

async function main(): Promise<void> {
  for (const mode of a.modes!.split(',')) {
    if (mode !== 'resident' && mode !== 'upload') throw new Error(`unknown mode ${mode} (resident, upload)`);
    const r = await run(mode);
    process.stdout.write(
      JSON.stringify({
        engine: `distill ${a.student}-${a.size} ${device} ${mode}`,
        batch,
        length,
        params: r.params,
        ms_per_step: Math.round(median(r.ms) * 100) / 100,
        ms_all: r.ms.map((t) => Math.round(t)),
        setup_ms: Math.round(r.setupMs),
        flush_ms: Math.round(r.flushMs),
        peak_rss_mib: Math.round(peakRssBytes() / 1024 ** 2),
        loss_first: r.losses[0],
        loss_last: r.losses[r.losses.length - 1],
      }) + '\n',
    );
  }
}

void main();
