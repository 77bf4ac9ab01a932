import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime } from '@distill/core';
import { createReferenceModel, referenceGrads, referenceStep } from './reference-model.js';
import { OnnxReferenceTrainer } from './reference-onnx.js';

const tiny = { layers: 2, batch: 3, seq: 9, dim: 16, heads: 2, mlp: 32 };

/** Largest |a - b| relative to the largest |b|. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let s = 1e-12;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / s;
}

describe('onnx engine: the reference step equals the tfjs step', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  const start = () => {
    const ref = createReferenceModel(tiny, 5);
    const init = {
      params: ref.params.map((p) => Float32Array.from(p.dataSync())),
      x: Float32Array.from(ref.x.dataSync()),
      target: Float32Array.from(ref.target.dataSync()),
    };
    return { ref, init };
  };

  it('gives the same loss and gradients (float tolerance)', async () => {
    const { ref, init } = start();
    const onnx = await OnnxReferenceTrainer.create(tiny, init, { threads: 1 });
    const { loss, grads } = referenceGrads(ref);
    const got = await onnx.grads();
    expect(got.loss).toBeCloseTo(loss.dataSync()[0], 6);
    grads.forEach((g, i) =>
      expect(relDiff(got.grads[i], g.dataSync()), `gradient ${i} (${ref.params[i].name})`).toBeLessThan(1e-5),
    );
    await onnx.release();
    ref.dispose();
  });

  it('trains to the same losses and parameters over 5 AdamW steps', async () => {
    const { ref, init } = start();
    const onnx = await OnnxReferenceTrainer.create(tiny, init, { threads: 2 });
    for (let s = 0; s < 5; s++) {
      const want = referenceStep(ref);
      const got = await onnx.trainStep();
      expect(Math.abs(got - want) / want, `loss at step ${s}`).toBeLessThan(1e-5);
    }
    ref.params.forEach((p, i) => expect(relDiff(onnx.params[i], p.dataSync()), `parameter ${i}`).toBeLessThan(1e-4));
    await onnx.release();
    ref.dispose();
  });
});
