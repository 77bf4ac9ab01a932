import { graphOps, initRuntime, tf, tfOps, type Ops } from '@distill/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { OnnxStudentEngine, type LossHead } from './onnx-engine.js';
import { createStudent } from './student.js';
import { B, L, ids, mask, relDiff } from './engine.test-util.js';

beforeAll(async () => {
  await initRuntime('cpu', { quiet: true });
});

const D = 16;
const TAU = 0.5;

/**
 * A small loss written once over Ops<T>, as the losses package writes its own: an in-batch InfoNCE
 * (mean_i logsumexp_j(s_i.t_j / tau) - s_i.t_i / tau) and an L1 of both towers' features to a target.
 * Both depend on the features' scale, so they tell normalised from unnormalised features.
 */
function toyLoss<T>(o: Ops<T>, image: T, text: T, target: T): { nce: T; l1: T } {
  const logits = o.scale(o.matmulT(image, text), 1 / TAU);
  const m = o.reduceMaxConst(logits, [1], true);
  const lse = o.add(o.log(o.reduceSum(o.exp(o.sub(logits, m)), [1], true)), m);
  const pos = o.scale(o.reduceSum(o.mul(image, text), [1], true), 1 / TAU);
  const l1 = o.add(o.reduceMean(o.abs(o.sub(image, target)), [0, 1]), o.reduceMean(o.abs(o.sub(text, target)), [0, 1]));
  return { nce: o.reduceMean(o.sub(lse, pos), [0, 1]), l1 };
}

const head: LossHead = (g, e) => toyLoss(graphOps(), e.image, e.text, g.input('target', [B, D]));
const weights = { nce: 1, l1: 0.5 };

function rowNorms(x: Float32Array): number[] {
  return Array.from({ length: x.length / D }, (_, r) => Math.hypot(...x.subarray(r * D, (r + 1) * D)));
}

describe('student.normalizeInTraining (config student.normalize, Table 6)', () => {
  it('false: the onnx graph and tfjs give the same losses and gradients on the unnormalised projections; inference still normalises', async () => {
    const s = createStudent('vit-bert', {
      preset: 'tiny',
      embedDim: D,
      seed: 4,
      vocabSize: 300,
      maxLength: 30,
      overrides: { image: { imageSize: 32 } },
    });
    const S = s.preprocess.crop;
    const px = Float32Array.from({ length: B * 3 * S * S }, (_, i) => Math.sin(i * 0.29));
    const target = Float32Array.from({ length: B * D }, (_, i) => Math.cos(i * 0.53));
    const feeds = { target: { data: target, dims: [B, D] } };

    // today's behaviour first (normalised), then the switch off: the same weights, other losses
    const normed = new OnnxStudentEngine(s, { threads: 1, head });
    const withNorm = await normed.forwardLoss(px, ids, mask, B, L, feeds);
    await normed.release();
    s.normalizeInTraining = false;
    const engine = new OnnxStudentEngine(s, { threads: 1, head });
    const comps = await engine.forwardLoss(px, ids, mask, B, L, feeds);
    const grads = await engine.backwardLoss(weights);
    expect(Math.abs(comps.l1 - withNorm.l1)).toBeGreaterThan(0.05);
    expect(Math.abs(comps.nce - withNorm.nce)).toBeGreaterThan(0.05);

    const vars = s.variables();
    tf.tidy(() => {
      const pixels = tf.tensor4d(px, [B, 3, S, S]);
      const tok = { ids: tf.tensor2d(ids, [B, L], 'int32'), mask: tf.tensor2d(mask, [B, L], 'int32') };
      const t = tf.tensor2d(target, [B, D]);
      const trainImage = s.encodeImage(pixels, true).dataSync() as Float32Array;
      // unnormalised: the projections' own lengths (far from 1 at this init)
      expect(Math.max(...rowNorms(trainImage).map((n) => Math.abs(n - 1)))).toBeGreaterThan(0.1);
      const ref = toyLoss(tfOps(), s.encodeImage(pixels, true), s.encodeText(tok, true), t);
      expect(Math.abs(comps.nce - ref.nce.dataSync()[0]) / Math.abs(ref.nce.dataSync()[0]), 'nce').toBeLessThan(1e-5);
      expect(Math.abs(comps.l1 - ref.l1.dataSync()[0]) / Math.abs(ref.l1.dataSync()[0]), 'l1').toBeLessThan(1e-5);
      const { grads: want } = tf.variableGrads(
        () => {
          const l = toyLoss(tfOps(), s.encodeImage(pixels, true), s.encodeText(tok, true), t);
          return tf.add(tf.mul(l.nce, weights.nce), tf.mul(l.l1, weights.l1)) as tf.Scalar;
        },
        vars.map((v) => v.variable),
      );
      for (const v of vars)
        expect(relDiff(grads.get(v.name)!, want[v.variable.name].dataSync()), `gradient of ${v.name}`).toBeLessThan(
          1e-4,
        );
      // evaluation (training false) keeps the L2 normalisation on tfjs ...
      for (const n of rowNorms(s.encodeImage(pixels, false).dataSync() as Float32Array)) expect(n).toBeCloseTo(1, 5);
      for (const n of rowNorms(s.encodeText(tok, false).dataSync() as Float32Array)) expect(n).toBeCloseTo(1, 5);
    });
    // ... and on the onnx engine's inference graphs
    for (const n of rowNorms(await engine.encodeImages(px, B))) expect(n).toBeCloseTo(1, 5);
    await engine.release();
    s.dispose();
  });
});
