import { totalmem } from 'node:os';
import { describe, expect, it } from 'vitest';
import { checkMemory, estimateStepMemory } from './step-engine.js';

const GB = 1024 ** 3;

describe('step memory plan', () => {
  it('counts weights, gradients, moments and the activations of each step form', () => {
    const plan = { savedFloats: 2.5e9 / 4, largestFloats: 1e6, maskFloats: 0 };
    const split = estimateStepMemory({ engine: 'onnx', params: 1e8, plan, mode: 'split' });
    const fused = estimateStepMemory({ engine: 'onnx', params: 1e8, plan, mode: 'fused' });
    // 6 copies of 0.4 GB of weights + activations (x3 split, x1 fused) + 16 MB working set + 0.5 GB
    expect(fused.bytes).toBeCloseTo(6 * 4e8 + 2.5e9 + 1.6e7 + 0.5 * GB, -3);
    expect(split.bytes - fused.bytes).toBeCloseTo(5e9, -3);
    expect(fused.detail).toMatch(/activations for the backward 2\.3 GB, /);
  });

  it('refuses, before any work, a step that cannot fit, saying what to change', () => {
    const huge = estimateStepMemory({
      engine: 'onnx',
      params: 2e8,
      plan: { savedFloats: totalmem() / 4, largestFloats: 0, maskFloats: 0 },
      mode: 'fused',
    });
    expect(() => checkMemory(huge, { engine: 'onnx', batchSize: 512, size: 'base' })).toThrow(
      /'base' student at batch 512 needs about .* GB .*this machine has .* Lower --batch-size/,
    );
    const ok = estimateStepMemory({
      engine: 'onnx',
      params: 1e6,
      plan: { savedFloats: 1e6, largestFloats: 1e5, maskFloats: 0 },
      mode: 'split',
    });
    expect(checkMemory(ok, { engine: 'onnx', batchSize: 8, size: 'tiny' })).toBeUndefined();
  });

  it('refuses the tfjs engine for a student whose weights, gradients and moments outgrow the wasm heap', () => {
    expect(() =>
      checkMemory(estimateStepMemory({ engine: 'tfjs', params: 174e6 }), {
        engine: 'tfjs',
        batchSize: 2,
        size: 'base',
      }),
    ).toThrow(/does not fit the tfjs engine: .*Use --backend onnx/);
    expect(
      checkMemory(estimateStepMemory({ engine: 'tfjs', params: 7.2e6 }), {
        engine: 'tfjs',
        batchSize: 64,
        size: 'small',
      }),
    ).toBeUndefined();
  });
});
