import { DistillError, graphOps, initRuntime, OnnxRunner, Rng, tf, tfOps, type TensorParams } from '@distill/core';
import { Graph, type Sym } from '@distill/autodiff';
import { beforeAll, describe, expect, it } from 'vitest';
import { bertTower, createBert } from './bert.js';
import { createVariables } from './params.js';
import { createVit } from './vit.js';

/** The drift the two tower definitions had, settled once: one tower, the same values on both engines. */
describe('towers: one definition, the same features on tfjs and on the onnx graph', () => {
  beforeAll(async () => {
    await initRuntime('wasm', { quiet: true });
  });

  it("BERT feature 'mean' divides by max(sum(mask), 1): an all-padding row gives 0 on both engines, not NaN", async () => {
    const enc = createBert({
      vocabSize: 40,
      hiddenSize: 16,
      numHiddenLayers: 1,
      numAttentionHeads: 2,
      intermediateSize: 32,
      maxPositionEmbeddings: 8,
      feature: 'mean',
      hiddenDropout: 0,
      attentionDropout: 0,
    });
    const c = enc.config as Parameters<typeof bertTower>[2];
    const vars = createVariables(enc.specs(), '', 'text', new Rng(4));
    const B = 3;
    const L = 5;
    const ids = Array.from({ length: B * L }, (_, i) => (i * 7 + 3) % 40);
    const mask = [1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]; // the last row is all padding
    const viaTf = tf.tidy(() => {
      const p = Object.fromEntries(vars.map((v) => [v.spec.name, v.variable as tf.Tensor]));
      return Array.from(
        bertTower(tfOps(), p, c, {
          ids: tf.tensor2d(ids, [B, L], 'int32'),
          mask: tf.tensor2d(mask, [B, L]),
        }).features.dataSync(),
      );
    });
    const g = new Graph();
    const p: TensorParams<Sym> = Object.fromEntries(
      vars.map((v, i) => [v.spec.name, g.input(`p${i}`, [...v.variable.shape])]),
    );
    const f = bertTower(graphOps(), p, c, {
      ids: g.input('ids', [B, L], { dtype: 'int64' }),
      mask: g.input('mask', [B, L]),
    }).features;
    const r = await OnnxRunner.create(g.encode([f], ['f']), { threads: 1 });
    const feeds: Record<string, { data: Float32Array | BigInt64Array; dims: number[] }> = {
      ids: { data: BigInt64Array.from(ids, BigInt), dims: [B, L] },
      mask: { data: Float32Array.from(mask), dims: [B, L] },
    };
    vars.forEach(
      (v, i) => (feeds[`p${i}`] = { data: v.variable.dataSync() as Float32Array, dims: [...v.variable.shape] }),
    );
    const viaGraph = Array.from((await r.run(feeds, ['f']))[0]);
    await r.release();
    vars.forEach((v) => v.variable.dispose());
    expect(viaGraph.slice(32)).toEqual(new Array(16).fill(0));
    expect(viaTf.slice(32)).toEqual(new Array(16).fill(0));
    expect(viaTf.slice(0, 32).some((v) => v !== 0)).toBe(true);
    viaTf.forEach((v, i) => expect(Math.abs(v - viaGraph[i]), `feature ${i}`).toBeLessThan(1e-5));
  });

  it('say what is wrong with the input or the config in one line (DistillError)', () => {
    const vit = createVit({
      imageSize: 16,
      patchSize: 8,
      hiddenSize: 8,
      numHiddenLayers: 1,
      numAttentionHeads: 2,
      intermediateSize: 16,
    });
    const vars = createVariables(vit.specs(), '', 'image', new Rng(1));
    const p = Object.fromEntries(vars.map((v) => [v.spec.name, v.variable as tf.Tensor]));
    expect(() => vit.forward(p, tf.zeros([1, 3, 8, 8]) as tf.Tensor4D, false)).toThrow(DistillError);
    expect(() => vit.forward(p, tf.zeros([1, 3, 8, 8]) as tf.Tensor4D, false)).toThrow(
      /ViT expects pixels \[B, 3, 16, 16\], got \[1, 3, 8, 8\]/,
    );
    vars.forEach((v) => v.variable.dispose());
    expect(() => createVit({ hiddenSize: 10, numAttentionHeads: 4 })).toThrow(
      /hiddenSize 10 is not a multiple of numAttentionHeads 4/,
    );
    expect(() => createVit({ feature: 'cls-dist' })).toThrow(/'cls-dist' needs the distillation token/);
  });
});
