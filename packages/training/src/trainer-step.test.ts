import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createBalancer, register as registerBalancers } from '@distill/balancer';
import { createContainer, createLogger, registryByKind, type RegistryEntry } from '@distill/core';
import { register as registerData } from '@distill/data';
import { register as registerEval } from '@distill/eval';
import {
  FeatureQueue,
  register as registerLosses,
  resolveLossMethod,
  type LossMethod,
  type LossMethodOptions,
} from '@distill/losses';
import { register as registerStudents } from '@distill/student-architectures';
import { register as registerTeacherAdapters } from '@distill/teacher-adapters';
import { resolveConfig } from './config.js';
import { createTrainingContainer } from './registries.js';
import { train } from './trainer.js';
import { createTrainingContainer as builtinsContainer } from './registries.js';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

/**
 * The trainer's wiring, through train() only (the step engine, AdamW and the loop may change inside):
 * the feature queues the loss sees at each step hold exactly the teacher image (image queue) and
 * teacher text (text queue) features of the previous batches, in order, written after the step (a
 * batch is never its own negative); and the logged loss is sum(w * L) with the weights of an
 * independent balancer fed the same component values.
 *
 * The loss method 'dsmd' is wrapped in the run's container so that every step's graph feeds (the
 * teacher rows of the batch and the queue rows the loss reads) are copied out as the engine asks for them.
 */

interface Seen {
  teacherImage: Float32Array;
  teacherText: Float32Array;
  imageQueue: Float32Array;
  textQueue: Float32Array;
}

function recordingContainer(seen: Seen[]) {
  const builtin = registryByKind<LossMethodOptions, LossMethod>(createTrainingContainer(), 'loss').get('dsmd');
  const wrapper: RegistryEntry<LossMethodOptions, LossMethod> = {
    ...builtin,
    create: async (cfg, ctx) => {
      const inner = await builtin.create(cfg, ctx);
      return {
        ...inner,
        feeds(x) {
          if (!x.teacherImage || !x.teacherText || !x.imageQueue || !x.textQueue)
            throw new Error('dsmd feeds without teacher rows or queues');
          seen.push({
            teacherImage: x.teacherImage.slice(),
            teacherText: x.teacherText.slice(),
            imageQueue: x.imageQueue.slice(),
            textQueue: x.textQueue.slice(),
          });
          return inner.feeds(x);
        },
      };
    },
  };
  // the wrapper takes the name first; every package's register() then adds the rest (each skips a taken name)
  const container = createContainer();
  registryByKind<LossMethodOptions, LossMethod>(container, 'loss').add(wrapper);
  for (const r of [
    registerData,
    registerTeacherAdapters,
    registerStudents,
    registerLosses,
    registerBalancers,
    registerEval,
  ])
    r(container);
  expect(registryByKind(container, 'loss').get('dsmd')).toBe(wrapper);
  return container;
}

const quiet = createLogger({ sink: { write: () => {} } });

describe('trainer step wiring (train() on the default engine)', () => {
  it(
    "queues hold the previous batches' teacher features in order; logged loss = sum(w * L) with the balancer's weights",
    { timeout: 180_000 },
    async () => {
      const B = 16;
      const K = 64;
      const cfg = resolveConfig({
        container: builtins,
        preset: 'smoke',
        overrides: {
          losses: 'dsmd',
          backend: 'auto',
          maxSteps: 3,
          batchSize: B,
          dataset: { trainSubset: 64, evalSubset: 32 },
          lossOptions: { queueSize: K },
          schedule: { epochs: 1 },
          checkpointEvery: 100,
        },
      });
      const seen: Seen[] = [];
      const runDir = join(mkdtempSync(join(tmpdir(), 'distill-trainer-step-')), 'run');
      const r = await train(cfg, { runDir, logger: quiet, container: recordingContainer(seen) });
      expect(r.steps).toBe(3);
      expect(seen).toHaveLength(3);
      const D = seen[0].teacherImage.length / B;
      expect(seen[0].teacherImage).toHaveLength(B * D);
      expect(seen[0].imageQueue).toHaveLength(K * D);

      // the queues' seeded initial rows, made independently of the trainer
      const init = { image: new FeatureQueue(K, D, cfg.seed).rows, text: new FeatureQueue(K, D, cfg.seed + 1).rows };
      const rows = (a: Float32Array, from: number, to: number) => Array.from(a.subarray(from * D, to * D));
      for (const [q, key, tkey] of [
        ['image', 'imageQueue', 'teacherImage'],
        ['text', 'textQueue', 'teacherText'],
      ] as const) {
        // image and text teacher rows differ (so swapping them cannot pass)
        expect(rows(seen[0].teacherImage, 0, B)).not.toEqual(rows(seen[0].teacherText, 0, B));
        // step 1: only the initial rows (the batch itself is not yet enqueued)
        expect(rows(seen[0][key], 0, K)).toEqual(rows(init[q], 0, K));
        // step 2: batch 1 at rows [0, B), the rest initial
        expect(rows(seen[1][key], 0, B)).toEqual(rows(seen[0][tkey], 0, B));
        expect(rows(seen[1][key], B, K)).toEqual(rows(init[q], B, K));
        // step 3 (after two steps): batch 1 then batch 2, the rest initial
        expect(rows(seen[2][key], 0, B)).toEqual(rows(seen[0][tkey], 0, B));
        expect(rows(seen[2][key], B, 2 * B)).toEqual(rows(seen[1][tkey], 0, B));
        expect(rows(seen[2][key], 2 * B, K)).toEqual(rows(init[q], 2 * B, K));
      }

      // logged loss = sum(w * L): the components in the losses package's order, the weights of a fresh balancer of the method's default kind
      const steps = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"components"'))
        .map((l) => JSON.parse(l) as { loss: number; components: Record<string, number>; weights: number[] });
      expect(steps).toHaveLength(3);
      const lm = resolveLossMethod('dsmd', { temperature: cfg.lossOptions.temperature });
      const balancer = createBalancer(cfg.balancer ?? lm.defaultBalancer, cfg.balancerOptions ?? {});
      for (const s of steps) {
        expect(Object.keys(s.components)).toEqual(lm.components);
        const L = lm.components.map((n) => s.components[n]);
        for (const v of L) expect(v).toBeGreaterThan(0);
        const w = balancer.weights(L);
        expect(s.weights).toHaveLength(L.length);
        for (let i = 0; i < w.length; i++) expect(s.weights[i]).toBeCloseTo(w[i], 12);
        const want = L.reduce((a, l, i) => a + w[i] * l, 0);
        expect(Math.abs(s.loss - want)).toBeLessThanOrEqual(1e-6 * Math.abs(want));
      }
      // the weights move (the balancer is fed every step, not a fresh one each time)
      expect(steps[2].weights).not.toEqual(steps[0].weights);
    },
  );
});
