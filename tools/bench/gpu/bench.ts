/**
 * The reference transformer's training step (tools/bench/src/reference-onnx.ts: forward,
 * backward and AdamW) on onnxruntime-node, on one execution provider, in two modes:
 *  - upload:   the engine as it is today (OnnxReferenceTrainer): parameters uploaded, gradients read
 *              back and AdamW run in JS every step;
 *  - resident: loss, gradients and AdamW as ONE graph; parameters and AdamW moments stay where the
 *              provider keeps them (preferredOutputLocation 'gpu-buffer' on webgpu) and are fed back
 *              as inputs; only the loss crosses to JS per step.
 * Prints one JSON line per mode. Bundled by tools/bench/gpu/build.sh for the GPU machine (no Node).
 *
 *   node --conditions=@distill/source --import tsx tools/bench/gpu/bench.ts --device cpu|webgpu [--layers 4 --batch 32 ...]
 */
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { Graph, onnxOps as op } from '@distill/autodiff';
import { OnnxReferenceTrainer, referenceLoss, referenceParamShapes } from '../src/reference-onnx.js';
import type { ReferenceConfig } from '../src/reference-model.js';
import { Rng } from '@distill/core';

const ADAMW = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

const { values: a } = parseArgs({
  options: {
    device: { type: 'string', default: 'webgpu' },
    modes: { type: 'string', default: 'resident,upload' },
    layers: { type: 'string', default: '4' },
    batch: { type: 'string', default: '32' },
    seq: { type: 'string', default: '65' },
    dim: { type: 'string', default: '256' },
    heads: { type: 'string', default: '4' },
    mlp: { type: 'string', default: '1024' },
    warmup: { type: 'string', default: '3' },
    steps: { type: 'string', default: '10' },
  },
});
const config: ReferenceConfig = {
  layers: Number(a.layers),
  batch: Number(a.batch),
  seq: Number(a.seq),
  dim: Number(a.dim),
  heads: Number(a.heads),
  mlp: Number(a.mlp),
};
const device = a.device!;
const warmup = Number(a.warmup);
const steps = Number(a.steps);
if (!['cpu', 'webgpu'].includes(device)) throw new Error(`--device must be cpu or webgpu, not ${device}`);

/** Parameters as tools/bench/reference_step.py initialises them (N(0, 0.02) weights, LayerNorm gains 1, biases 0), seeded. */
function init(): { params: Float32Array[]; x: Float32Array; target: Float32Array } {
  const rng = new Rng(1);
  const shapes = referenceParamShapes(config);
  const perLayer = 12;
  const params = shapes.map((s, i) => {
    const n = s.reduce((p, q) => p * q, 1);
    const k = i % perLayer;
    const isGain = i >= config.layers * perLayer ? i === config.layers * perLayer : k === 0 || k === 6;
    if (s.length === 2) return rng.normalArray(n, 0, 0.02);
    return isGain ? new Float32Array(n).fill(1) : new Float32Array(n);
  });
  return {
    params,
    x: rng.normalArray(config.batch * config.seq * config.dim),
    target: rng.normalArray(config.batch * config.dim),
  };
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];

async function uploadMode(): Promise<{ ms: number[]; losses: number[] }> {
  const t = await OnnxReferenceTrainer.create(config, init(), { executionProviders: [device] });
  const ms: number[] = [];
  const losses: number[] = [];
  for (let s = 0; s < warmup + steps; s++) {
    const t0 = performance.now();
    losses.push(await t.trainStep(ADAMW));
    if (s >= warmup) ms.push(performance.now() - t0);
  }
  await t.release();
  return { ms, losses };
}

/** Loss, gradients and AdamW in one graph: (p, m, v, x, target, lr_t, bc2) -> (loss, p', m', v'). */
function residentGraph(): { model: Uint8Array; n: number } {
  const g = new Graph();
  const { params, loss } = referenceLoss(g, config);
  const grads = g.gradients([loss], [g.scalar(1)], params);
  const lrT = g.input('lr_t', []); // lr / (1 - beta1^t)
  const bc2 = g.input('bc2', []); // 1 - beta2^t
  const outs = [loss];
  const newP = [];
  const newM = [];
  const newV = [];
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    const m = g.input(`m${i}`, [...p.shape]);
    const v = g.input(`v${i}`, [...p.shape]);
    const gr = grads[i];
    const m2 = op.add(op.scale(m, ADAMW.beta1), op.scale(gr, 1 - ADAMW.beta1));
    const v2 = op.add(op.scale(v, ADAMW.beta2), op.scale(op.mul(gr, gr), 1 - ADAMW.beta2));
    const denom = op.add(op.sqrt(op.div(v2, bc2)), g.scalar(ADAMW.eps));
    newP.push(op.sub(op.scale(p, 1 - ADAMW.lr * ADAMW.weightDecay), op.div(op.mul(m2, lrT), denom)));
    newM.push(m2);
    newV.push(v2);
  }
  outs.push(...newP, ...newM, ...newV);
  const n = params.length;
  const names = ['loss', ...['p', 'm', 'v'].flatMap((k) => Array.from({ length: n }, (_, i) => `${k}${i}_out`))];
  return { model: g.encode(outs, names), n };
}

async function residentMode(): Promise<{ ms: number[]; losses: number[] }> {
  const { model, n } = residentGraph();
  const stateNames = [
    ...Array.from({ length: n }, (_, i) => `p${i}`),
    ...Array.from({ length: n }, (_, i) => `m${i}`),
    ...Array.from({ length: n }, (_, i) => `v${i}`),
  ];
  const outNames = stateNames.map((s) => `${s}_out`);
  const location = device === 'webgpu' ? 'gpu-buffer' : 'cpu';
  const session = await ort.InferenceSession.create(model, {
    executionProviders: [device],
    graphOptimizationLevel: 'all',
    preferredOutputLocation: { loss: 'cpu', ...Object.fromEntries(outNames.map((o) => [o, location])) },
  });
  const shapes = referenceParamShapes(config);
  const { params, x, target } = init();
  let state: Record<string, ort.Tensor> = {};
  params.forEach((p, i) => {
    state[`p${i}`] = new ort.Tensor('float32', p, shapes[i]);
    state[`m${i}`] = new ort.Tensor('float32', new Float32Array(p.length), shapes[i]);
    state[`v${i}`] = new ort.Tensor('float32', new Float32Array(p.length), shapes[i]);
  });
  const xt = new ort.Tensor('float32', x, [config.batch, config.seq, config.dim]);
  const tt = new ort.Tensor('float32', target, [config.batch, config.dim]);
  const ms: number[] = [];
  const losses: number[] = [];
  for (let s = 0; s < warmup + steps; s++) {
    const t0 = performance.now();
    const t = s + 1;
    const res = await session.run({
      ...state,
      x: xt,
      target: tt,
      lr_t: new ort.Tensor('float32', Float32Array.of(ADAMW.lr / (1 - ADAMW.beta1 ** t)), []),
      bc2: new ort.Tensor('float32', Float32Array.of(1 - ADAMW.beta2 ** t), []),
    });
    losses.push((res.loss.data as Float32Array)[0]);
    const next: Record<string, ort.Tensor> = {};
    stateNames.forEach((k, i) => (next[k] = res[outNames[i]]));
    if (s > 0 && location === 'gpu-buffer') for (const k of stateNames) state[k].dispose();
    state = next;
    if (s >= warmup) ms.push(performance.now() - t0);
  }
  if (location === 'gpu-buffer') for (const k of stateNames) state[k].dispose();
  await session.release();
  return { ms, losses };
}

async function main(): Promise<void> {
  for (const mode of a.modes!.split(',')) {
    const r = mode === 'resident' ? await residentMode() : mode === 'upload' ? await uploadMode() : undefined;
    if (!r) throw new Error(`unknown mode ${mode} (resident, upload)`);
    process.stdout.write(
      JSON.stringify({
        engine: `onnxruntime-node ${ort.env.versions.node} ${device} ${mode}`,
        config,
        ms_per_step: Math.round(median(r.ms) * 100) / 100,
        ms_all: r.ms.map((t) => Math.round(t * 10) / 10),
        loss_first: r.losses[0],
        loss_last: r.losses[r.losses.length - 1],
      }) + '\n',
    );
  }
}

void main();
