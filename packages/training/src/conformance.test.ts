import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, registryByKind, tf, type Balancer } from '@distill/core';
import { resolveConfig } from './config.js';
import { methodFor } from './method-registry.js';
import { createTrainingContainer } from './registries.js';
import { TfjsStepEngine } from './step-engine.js';
import { createStudentFor } from './trainer.js';
import { createTrainingContainer as builtinsContainer } from './registries.js';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

// Conformance over the registries (as timm's tests run over list_models()): every registered student,
// loss and balancer is exercised here by name, so a new entry is tested without editing a list.
// Tiny sizes and one step each: a few seconds in all.
const container = createTrainingContainer();
const B = 4;
const D = 16;
const L = 6;
const rnd = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7 + k));
const unit = (x: Float32Array, rows: number) => {
  const t = tf.tensor2d(x, [rows, x.length / rows]);
  return tf.tidy(() => t.div(t.norm('euclidean', 1, true))) as tf.Tensor2D;
};

beforeAll(async () => {
  await initRuntime('cpu', { quiet: true });
});

describe('every registered student pair', () => {
  for (const pair of registryByKind(container, 'student').names()) {
    it(`${pair}: tiny, built by name, one tfjs AdamW step moves its weights and keeps them finite`, async () => {
      const cfg = resolveConfig({ container: builtins, preset: 'smoke', overrides: { losses: 'none', batchSize: B } });
      const student = await createStudentFor(
        { ...cfg.student, pair, preset: 'tiny', maxLength: 16 },
        { embedDim: D, seed: 1, container },
      );
      const method = await methodFor(cfg, container);
      const state = method.createState(D, cfg);
      const engine = new TfjsStepEngine(
        student,
        { lr: 1e-3, weightDecay: 0.01, betas: [0.9, 0.999], eps: 1e-8 },
        'cpu',
      );
      const { crop } = student.preprocess;
      const before = engine.state().weights;
      const loss = await engine.step(
        {
          pixels: rnd(B * 3 * crop * crop, 1),
          ids: Int32Array.from({ length: B * L }, (_, i) => 5 + ((i * 7) % 50)),
          mask: Int32Array.from({ length: B * L }, (_, i) => (i % L < 3 + (i % 2) ? 1 : 0)),
          batch: B,
          length: L,
          step: 0,
        },
        {
          balance: (c) => state.balancer.weights(Object.values(c)),
          tfjsLoss: (sI, sT) => {
            const c = method.loss(
              { studentImage: sI, studentText: sT, imageIds: Int32Array.from({ length: B }, (_, i) => i) },
              state,
            );
            return Object.values(c).reduce((a, b) => a.add(b)) as tf.Scalar;
          },
          graphFeeds: () => ({}),
        },
      );
      expect(Number.isFinite(loss)).toBe(true);
      const after = engine.state().weights;
      let moved = 0;
      for (const [k, w] of Object.entries(after)) {
        expect(w.data.every(Number.isFinite), k).toBe(true);
        w.data.forEach((x, i) => (moved = Math.max(moved, Math.abs(x - before[k].data[i]))));
      }
      expect(moved).toBeGreaterThan(0);
      await engine.release();
      state.dispose();
      student.dispose();
    }, 60_000);
  }
});

describe('every registered loss method', () => {
  const N = 8; // DCD scores topK = 8 candidates per row by default
  for (const name of registryByKind(container, 'loss').names()) {
    it(`${name}: chosen by name with its default balancer, finite components with finite gradients, graph feeds for a batch`, async () => {
      const cfg = resolveConfig({
        container: builtins,
        preset: 'smoke',
        overrides: { losses: name, batchSize: N, lossOptions: { queueSize: 16 } },
      });
      const method = await methodFor(cfg, container);
      const state = method.createState(D, cfg);
      const teacherImage = rnd(N * D, 2);
      const teacherText = rnd(N * D, 3);
      const imageIds = Int32Array.of(0, 1, 1, 2, 3, 4, 5, 6);
      const sI = tf.variable(unit(rnd(N * D, 4), N));
      const sT = tf.variable(unit(rnd(N * D, 5), N));
      const names: string[] = [];
      const { value, grads } = tf.variableGrads(() => {
        const c = method.loss(
          {
            studentImage: sI,
            studentText: sT,
            teacherImage: unit(teacherImage, N),
            teacherText: unit(teacherText, N),
            imageIds,
          },
          state,
        );
        names.push(...Object.keys(c));
        for (const [k, v] of Object.entries(c)) expect(Number.isFinite(v.dataSync()[0]), k).toBe(true);
        return Object.values(c).reduce((a, b) => a.add(b)) as tf.Scalar;
      }, [sI, sT]);
      expect(names.length).toBeGreaterThan(0);
      expect(Number.isFinite(value.dataSync()[0])).toBe(true);
      for (const g of Object.values(grads)) expect((g.dataSync() as Float32Array).every(Number.isFinite)).toBe(true);
      const feeds = state.graph.feeds({ batch: N, teacherImage, teacherText, imageIds });
      expect(Object.keys(feeds).length).toBeGreaterThan(0);
      expect(state.balancer.weights(names.map((_, i) => 1 + i)).length).toBe(names.length);
      tf.dispose([value, sI, sT, ...Object.values(grads)]);
      state.dispose();
    });
  }
});

describe('every registered balancer', () => {
  for (const name of registryByKind(container, 'balancer').names()) {
    it(`${name}: chosen by name, finite weights per loss, and a saved state resumes to the same weights`, async () => {
      const reg = registryByKind<Record<string, unknown>, Balancer>(container, 'balancer');
      const a = await reg.create(name, {}, { container });
      const steps = [
        [3, 2, 1],
        [2.5, 1.5, 0.9],
        [2, 1.4, 0.8],
      ];
      for (const s of steps.slice(0, 2)) {
        const w = a.weights(s);
        expect(w).toHaveLength(3);
        expect(w.every(Number.isFinite)).toBe(true);
      }
      const b = await reg.create(name, {}, { container });
      b.load(JSON.parse(JSON.stringify(a.state())));
      expect(b.weights(steps[2])).toEqual(a.weights(steps[2]));
    });
  }
});
