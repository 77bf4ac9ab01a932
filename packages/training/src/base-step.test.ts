import { describe, expect, it } from 'vitest';
import { totalmem } from 'node:os';
import { initRuntime, tf } from '@distill/core';
import { createStudent, OnnxStudentEngine, PAIRS } from '@distill/student-architectures';
import { resolveConfig } from './config.js';
import { methodFor } from './method-registry.js';
import { OnnxStepEngine, planOnnxStep, type StepHooks } from './step-engine.js';
import { createTrainingContainer as builtinsContainer } from './registries.js';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

// Slow (about a minute per pair on 2 cores): one optimisation step of every student pair at the
// paper's size (`base`, 100-200M parameters) on the onnx engine, batch 2. Before the step engine the
// weights, gradients and AdamW moments lived in the tfjs-wasm heap and `base` aborted there.
const B = 2;
const L = 12;
const DIM = 64;

async function oneStep(pair: string, losses: string) {
  await initRuntime('wasm', { quiet: true });
  const student = createStudent(pair, { preset: 'base', embedDim: DIM, seed: 1, maxLength: 16 });
  const cfg = resolveConfig({
    container: builtins,
    preset: 'smoke',
    overrides: { losses, batchSize: B, lossOptions: { queueSize: 8 } },
  });
  const method = await methodFor(cfg, builtins);
  const state = method.createState(DIM, cfg);
  const onnx = new OnnxStudentEngine(student, { seed: 1, head: state.graph?.head });
  const plan = planOnnxStep(onnx, {
    params: student.parameterCount().total,
    batchSize: B,
    textLength: L,
    size: 'base',
  });
  expect(plan.estimate.bytes).toBeLessThan(totalmem());
  const engine = new OnnxStepEngine(student, onnx, { lr: 1e-4, weightDecay: 1e-4, betas: [0.9, 0.999], eps: 1e-8 });
  const { crop } = student.preprocess;
  const pixels = Float32Array.from({ length: B * 3 * crop * crop }, (_, i) => Math.sin(i * 0.01));
  const ids = Int32Array.from({ length: B * L }, (_, i) => (i * 131 + 7) % 1000);
  const mask = Int32Array.from({ length: B * L }, (_, i) => (i % L < 8 + (i >= L ? 4 : 0) ? 1 : 0));
  const teacherImage = Float32Array.from({ length: B * DIM }, (_, i) => Math.cos(i));
  const teacherText = Float32Array.from({ length: B * DIM }, (_, i) => Math.sin(i * 3));
  const imageIds = Int32Array.of(0, 1);
  const before = engine.state().weights;
  const probe = Object.keys(before).find((k) => k.startsWith('image_proj.weight'))!;
  const w0 = Float32Array.from(before[probe].data);
  let comps: Record<string, number> = {};
  const hooks: StepHooks = {
    balance: (c) => {
      comps = c;
      return state.balancer.weights(Object.values(c));
    },
    tfjsLoss: (sI, sT) => {
      const c = method.loss(
        {
          studentImage: sI,
          studentText: sT,
          teacherImage: tf.tensor2d(teacherImage, [B, DIM]),
          teacherText: tf.tensor2d(teacherText, [B, DIM]),
          imageIds,
        },
        state,
      );
      const names = Object.keys(c);
      const w = hooks.balance(Object.fromEntries(names.map((n) => [n, c[n].dataSync()[0]])));
      return names.map((n, i) => c[n].mul(w[i])).reduce((a, b) => a.add(b)) as tf.Scalar;
    },
    graphFeeds: () => state.graph.feeds({ batch: B, teacherImage, teacherText, imageIds }),
  };
  const loss = await engine.step({ pixels, ids, mask, batch: B, length: L, step: 0 }, hooks);
  expect(Number.isFinite(loss)).toBe(true);
  expect(Object.keys(comps).length).toBeGreaterThan(0);
  const w1 = engine.state().weights[probe].data;
  let moved = 0;
  for (let i = 0; i < w0.length; i++) moved = Math.max(moved, Math.abs(w1[i] - w0[i]));
  expect(moved).toBeGreaterThan(0); // AdamW moved the head (first step: ~lr per weight)
  expect(moved).toBeLessThan(1e-3);
  expect(engine.state().optimizer.step).toBe(1);
  await engine.release();
  state.dispose();
  student.dispose();
  return { loss, mode: plan.mode };
}

describe('base-size students train on the onnx engine (slow)', () => {
  for (const pair of PAIRS.map((p) => p.name)) {
    it(`${pair} base: one dsmd step at batch ${B}`, async () => {
      await oneStep(pair, 'dsmd-official');
    }, 600_000);
  }
  it(`vit-bert base: one 'kd' step (its graph form in the onnx step)`, async () => {
    await oneStep('vit-bert', 'kd');
  }, 600_000);
});
