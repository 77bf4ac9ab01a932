import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, tf } from '@distill/core';
import { createReferenceModel, referenceStep } from './reference-model.js';
import { type DataParallel, startDataParallel } from './data-parallel.js';
import { shardRange } from './reference-task.js';

// The data-parallel step (2 worker_threads, gradients summed through a SharedArrayBuffer) must
// train exactly like the plain single-thread step: same losses and parameters within float tolerance.
const config = { layers: 2, batch: 5, seq: 9, dim: 16, heads: 2, mlp: 32 };
const opt = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };
const STEPS = 3;

describe('data-parallel reference step', () => {
  let dp: DataParallel;
  beforeAll(async () => {
    await initRuntime('wasm', { quiet: true });
    dp = await startDataParallel({
      workers: 2,
      taskModule: new URL('./reference-task.ts', import.meta.url),
      init: { config, seed: 4, opt },
      backend: 'wasm',
    });
  });
  afterAll(async () => {
    await dp?.close();
  });

  it('splits an odd batch into near-equal shards', () => {
    expect([0, 1].map((i) => shardRange(5, i, 2))).toEqual([
      [0, 3],
      [3, 5],
    ]);
    expect([0, 1, 2].map((i) => shardRange(32, i, 3))).toEqual([
      [0, 11],
      [11, 22],
      [22, 32],
    ]);
  });

  it('matches the plain step: losses and parameters after 3 AdamW steps; the plain step leaks no tensors', async () => {
    const before = tf.memory().numTensors;
    const plain = createReferenceModel(config, 4);
    const held = tf.memory().numTensors; // parameters, AdamW moments, the batch
    expect(held).toBeGreaterThan(before);
    const plainLosses = Array.from({ length: STEPS }, () => {
      const loss = referenceStep(plain, opt);
      expect(tf.memory().numTensors, 'tensors held after a step').toBe(held);
      return loss;
    });
    const dpLosses: number[] = [];
    for (let s = 0; s < STEPS; s++) dpLosses.push(await dp.step());
    for (let s = 0; s < STEPS; s++) expect(dpLosses[s]).toBeCloseTo(plainLosses[s], 5);
    expect(dpLosses[STEPS - 1]).toBeLessThan(dpLosses[0]);

    const [p0, p1] = await Promise.all([dp.params(0), dp.params(1)]);
    let maxDiff = 0;
    plain.params.forEach((p, j) => {
      const ref = p.dataSync();
      for (let i = 0; i < ref.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(ref[i] - p0[j][i]));
        // Replicas stay bit-identical: they apply the same summed gradients.
        expect(p1[j][i]).toBe(p0[j][i]);
      }
    });
    // AdamW moves each weight by ~lr per step; the paths differ only in float summation order.
    expect(maxDiff).toBeLessThan(1e-4);
    plain.dispose();
    expect(tf.memory().numTensors, 'tensors left after dispose').toBe(before);
  });
});
