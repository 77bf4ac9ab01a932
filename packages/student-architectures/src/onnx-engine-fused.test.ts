import { initRuntime } from '@distill/core';
import { onnxOps as op } from '@distill/autodiff';
import { beforeAll, describe, expect, it } from 'vitest';
import { OnnxStudentEngine, type LossHead } from './onnx-engine.js';
import { createStudent } from './student.js';
import { B, L, ids, mask, relDiff } from './engine.test-util.js';

beforeAll(async () => {
  await initRuntime('cpu', { quiet: true });
});

// The 'fused' step (forward-only run, then forward + backward in one run) must train exactly as the
// 'split' step (forward run handing its activations to a backward run): same losses, same gradients.
describe("onnx engine: 'fused' steps equal 'split' steps", () => {
  const mk = () =>
    createStudent('vit-bert', {
      preset: 'tiny',
      embedDim: 16,
      seed: 5,
      vocabSize: 300,
      maxLength: 30,
      overrides: { image: { imageSize: 32 }, text: { hiddenDropout: 0.1 } },
    });

  it('with the loss in the graph (and dropout masks)', async () => {
    const head: LossHead = (g, e) => ({
      sim: op.reduceSum(op.mul(e.image, e.text), [0, 1]),
      sq: op.reduceMean(op.mul(e.image, e.image), [0, 1]),
    });
    const s = mk();
    const px = Float32Array.from({ length: B * 3 * s.preprocess.crop ** 2 }, (_, i) => Math.sin(i * 0.21));
    const split = new OnnxStudentEngine(s, { threads: 1, head, seed: 9 });
    const fused = new OnnxStudentEngine(s, { threads: 1, head, seed: 9, mode: 'fused' });
    const c1 = await split.forwardLoss(px, ids, mask, B, L, {}, { step: 3 });
    const c2 = await fused.forwardLoss(px, ids, mask, B, L, {}, { step: 3 });
    expect(c2.sim).toBeCloseTo(c1.sim, 5);
    expect(c2.sq).toBeCloseTo(c1.sq, 6);
    const g1 = await split.backwardLoss({ sim: -1, sq: 0.5 });
    const g2 = await fused.backwardLoss({ sim: -1, sq: 0.5 });
    expect(g2.size).toBe(g1.size);
    for (const [name, g] of g1) expect(relDiff(g2.get(name)!, g), name).toBeLessThan(1e-4);
    await expect(fused.backwardLoss({ sim: -1, sq: 0.5 })).rejects.toThrow(/backward before forward/);
    await Promise.all([split.release(), fused.release()]);
    s.dispose();
  });

  it('with the loss outside (embeddings out, dLoss/dEmbedding in)', async () => {
    const s = mk();
    const px = Float32Array.from({ length: B * 3 * s.preprocess.crop ** 2 }, (_, i) => Math.cos(i * 0.11));
    const split = new OnnxStudentEngine(s, { threads: 1 });
    const fused = new OnnxStudentEngine(s, { threads: 1, mode: 'fused' });
    const e1 = await split.forward(px, ids, mask, B, L, { step: 1 });
    const e2 = await fused.forward(px, ids, mask, B, L, { step: 1 });
    expect(relDiff(e2.image, e1.image)).toBeLessThan(1e-6);
    const dI = e1.text.map((v) => v * 0.3);
    const dT = e1.image.map((v) => -v);
    const g1 = await split.backward(dI, dT);
    const g2 = await fused.backward(dI, dT);
    for (const [name, g] of g1) expect(relDiff(g2.get(name)!, g), name).toBeLessThan(1e-4);
    await Promise.all([split.release(), fused.release()]);
    s.dispose();
  });

  it('plans report the activations each form holds, and inference matches the training forward', async () => {
    const s = mk();
    const split = new OnnxStudentEngine(s, { threads: 1 });
    const p = split.plan(8, L, false, 'split');
    const f = split.plan(8, L, false, 'fused');
    expect(p.savedFloats).toBeGreaterThan(0);
    expect(Math.abs(f.savedFloats - p.savedFloats) / p.savedFloats).toBeLessThan(0.01); // the same forward values (the split form also saves its outputs)
    expect(split.plan(16, L, false, 'split').savedFloats).toBeGreaterThan(1.9 * p.savedFloats); // activations scale with the batch
    split.dropPlans();
    const px = Float32Array.from({ length: B * 3 * s.preprocess.crop ** 2 }, (_, i) => Math.sin(i * 0.05));
    const e = await split.forward(px, ids, mask, B, L, { training: false });
    const img = await split.encodeImages(px, B);
    const txt = await split.encodeTexts(ids, mask, B, L);
    expect(relDiff(img, e.image)).toBeLessThan(1e-5);
    expect(relDiff(txt, e.text)).toBeLessThan(1e-5);
    // other weights (a saved student) without touching the engine's own
    const zero = split.params.map((x) => new Float32Array(x.length));
    const z = await split.encodeImages(px, B, zero);
    expect(Number.isNaN(z[0]) || Math.abs(z[0]) < 1e-3 || relDiff(z, img) > 1e-3).toBe(true);
    expect(relDiff(await split.encodeImages(px, B), img)).toBe(0);
    await split.release();
    s.dispose();
  });
});
