import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, tf } from '@distill/core';
import {
  REFERENCE_CONFIG,
  createReferenceModel,
  paramCount,
  referenceGrads,
  referenceStep,
  stepFlops,
} from './reference-model.js';

const tiny = { layers: 2, batch: 3, seq: 9, dim: 16, heads: 2, mlp: 32 };

describe('reference training step (bench model)', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  it('counts the benchmark size: 3,159,552 params and ~40 GFLOP per step', () => {
    expect(paramCount(REFERENCE_CONFIG)).toBe(3_159_552);
    const f = stepFlops(REFERENCE_CONFIG);
    expect(f.forward / 1e9).toBeCloseTo(13.64, 1);
    expect(f.total / 1e9).toBeGreaterThan(39);
    expect(f.total / 1e9).toBeLessThan(41);
  });

  it('has one variable per parameter tensor, matching paramCount', () => {
    const model = createReferenceModel(tiny, 3);
    expect(model.params.reduce((n, p) => n + p.size, 0)).toBe(paramCount(tiny));
    model.dispose();
  });

  it('gives finite, non-zero gradients for every parameter', () => {
    const model = createReferenceModel(tiny, 3);
    const { loss, grads } = referenceGrads(model);
    expect(Number.isFinite(loss.dataSync()[0])).toBe(true);
    expect(grads).toHaveLength(model.params.length);
    for (const g of grads) {
      const v = g.dataSync();
      expect(v.every(Number.isFinite)).toBe(true);
      expect(v.some((x) => x !== 0)).toBe(true);
    }
    tf.dispose([loss, ...grads]);
    model.dispose();
  });

  it('lowers the loss with AdamW and leaks no tensors', () => {
    const model = createReferenceModel(tiny, 3);
    const before = tf.memory().numTensors;
    const losses = Array.from({ length: 8 }, () =>
      referenceStep(model, { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 }),
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(losses[7]).toBeLessThan(losses[0] * 0.9);
    model.dispose();
  });
});
