import { initRuntime, tf } from '@distill/core';
import { onnxOps as op } from '@distill/autodiff';
import { beforeAll, describe, expect, it } from 'vitest';
import { OnnxStudentEngine, onnxSupport, type LossHead } from './onnx-engine.js';
import { createStudent } from './student.js';
import { B, L, ids, mask, relDiff } from './engine.test-util.js';

beforeAll(async () => {
  await initRuntime('cpu', { quiet: true });
});

describe('onnx engine for students: same embeddings and gradients as the tfjs towers', () => {
  for (const pair of ['vit-bert', 'deit-albert', 'resnet-bert', 'vit-textcnn', 'resnet-textcnn', 'mobilenet-bert']) {
    it(`${pair} tiny`, async () => {
      const s = createStudent(pair, {
        preset: 'tiny',
        embedDim: 24,
        seed: 3,
        vocabSize: 300,
        maxLength: 30,
        overrides: { image: { imageSize: 32 } },
      });
      expect(onnxSupport(s)).toBeUndefined();
      const S = s.preprocess.crop;
      const px = Float32Array.from({ length: B * 3 * S * S }, (_, i) => Math.sin(i * 0.37));
      const wI = Float32Array.from({ length: B * 24 }, (_, i) => Math.cos(i * 0.91));
      const wT = Float32Array.from({ length: B * 24 }, (_, i) => Math.sin(i * 1.7 + 1));

      const engine = new OnnxStudentEngine(s, { threads: 1 });
      const got = await engine.forward(px, ids, mask, B, L);
      const grads = await engine.backward(wI, wT); // d/dθ of sum(sI wI) + sum(sT wT)
      expect(engine.compiledShapes).toBe(1);

      const vars = s.variables();
      tf.tidy(() => {
        const pixels = tf.tensor4d(px, [B, 3, S, S]);
        const tok = { ids: tf.tensor2d(ids, [B, L], 'int32'), mask: tf.tensor2d(mask, [B, L], 'int32') };
        expect(relDiff(got.image, s.encodeImage(pixels, true).dataSync()), 'image embeddings').toBeLessThan(1e-5);
        expect(relDiff(got.text, s.encodeText(tok, true).dataSync()), 'text embeddings').toBeLessThan(1e-5);
        const { grads: ref } = tf.variableGrads(
          () =>
            tf.add(
              tf.sum(tf.mul(s.encodeImage(pixels, true), tf.tensor2d(wI, [B, 24]))),
              tf.sum(tf.mul(s.encodeText(tok, true), tf.tensor2d(wT, [B, 24]))),
            ) as tf.Scalar,
          vars.map((v) => v.variable),
        );
        for (const v of vars) {
          const want = ref[v.variable.name].dataSync();
          expect(relDiff(grads.get(v.name)!, want), `gradient of ${v.name}`).toBeLessThan(1e-4);
        }
      });
      await engine.release();
      s.dispose();
    });
  }

  it('dropout: seeded masks per step, off when not training, gradients equal finite differences of the same masks', async () => {
    const drop = { hiddenDropout: 0.2, attentionDropout: 0.1 };
    const s = createStudent('vit-bert', {
      preset: 'tiny',
      embedDim: 16,
      seed: 1,
      vocabSize: 300,
      maxLength: 30,
      overrides: { image: { imageSize: 32, ...drop }, text: drop },
    });
    const S = s.preprocess.crop;
    const px = Float32Array.from({ length: B * 3 * S * S }, (_, i) => Math.cos(i * 0.21));
    const run = async (seed: number, step: number, training = true) => {
      const e = new OnnxStudentEngine(s, { threads: 1, seed });
      const out = await e.forward(px, ids, mask, B, L, { step, training });
      const g = await e.backward(new Float32Array(B * 16).fill(1), new Float32Array(B * 16).fill(1));
      await e.release();
      return { ...out, g };
    };
    const a = await run(5, 3);
    const b = await run(5, 3);
    const c = await run(5, 4);
    expect(Array.from(a.image)).toEqual(Array.from(b.image)); // same seed and step: same masks
    expect(Array.from(a.text)).toEqual(Array.from(b.text));
    expect(relDiff(c.image, a.image)).toBeGreaterThan(1e-3); // another step: other masks
    // training: false equals the tfjs towers in inference mode
    const off = await run(5, 3, false);
    tf.tidy(() => {
      const pixels = tf.tensor4d(px, [B, 3, S, S]);
      const tok = { ids: tf.tensor2d(ids, [B, L], 'int32'), mask: tf.tensor2d(mask, [B, L], 'int32') };
      expect(relDiff(off.image, s.encodeImage(pixels, false).dataSync())).toBeLessThan(1e-5);
      expect(relDiff(off.text, s.encodeText(tok, false).dataSync())).toBeLessThan(1e-5);
    });
    expect(relDiff(a.image, off.image)).toBeGreaterThan(1e-3);

    // Gradients with dropout on: central finite differences of the same step (same masks) at the
    // largest-gradient entry of every weight. L = sum(sI wI) + sum(sT wT), in float64 from the outputs.
    // Measured: worst 0.4% off over 71 weights; differences taken at another step's masks are 120-150% off.
    const e = new OnnxStudentEngine(s, { threads: 1, seed: 5 });
    const wI = Float32Array.from({ length: B * 16 }, (_, i) => Math.cos(i * 0.91));
    const wT = Float32Array.from({ length: B * 16 }, (_, i) => Math.sin(i * 1.7 + 1));
    const loss = async () => {
      const o = await e.forward(px, ids, mask, B, L, { step: 3, training: true });
      let l = 0;
      for (let i = 0; i < B * 16; i++) l += o.image[i] * wI[i] + o.text[i] * wT[i];
      return l;
    };
    await loss();
    const grads = await e.backward(wI, wT);
    const h = 1e-3;
    let checked = 0;
    for (const [i, v] of s.variables().entries()) {
      const g = grads.get(v.name)!;
      let k = 0;
      for (let j = 1; j < g.length; j++) if (Math.abs(g[j]) > Math.abs(g[k])) k = j;
      if (Math.abs(g[k]) < 1e-2) continue; // too small to resolve with float32 differences
      const p = e.params[i];
      const x0 = p[k];
      p[k] = x0 + h;
      const up = await loss();
      p[k] = x0 - h;
      const down = await loss();
      p[k] = x0;
      expect(
        Math.abs((up - down) / (2 * h) - g[k]),
        `d/d ${v.name}[${k}]: analytic ${g[k]}, differences ${(up - down) / (2 * h)}`,
      ).toBeLessThan(0.03 * Math.abs(g[k]) + 2e-3);
      checked++;
    }
    expect(checked).toBeGreaterThan(20);
    await e.release();
    s.dispose();
  });

  it('a loss head runs in the graph: components out, their weighted sum trained (= embeddings + dLoss/dEmbedding)', async () => {
    const s = createStudent('vit-bert', {
      preset: 'tiny',
      embedDim: 16,
      seed: 2,
      vocabSize: 300,
      maxLength: 30,
      overrides: { image: { imageSize: 32 } },
    });
    const S = s.preprocess.crop;
    const px = Float32Array.from({ length: B * 3 * S * S }, (_, i) => Math.sin(i * 0.13));
    const t = Float32Array.from({ length: B * 16 }, (_, i) => Math.cos(i * 0.7));
    // dot = sum(sI * t) (fed as an input), sq = mean(sT^2) (= 1/16: rows are unit length)
    const head: LossHead = (g, e) => {
      const target = g.input('target', [B, 16]);
      return { dot: op.reduceSum(op.mul(e.image, target), [0, 1]), sq: op.reduceMean(op.mul(e.text, e.text), [0, 1]) };
    };
    const engine = new OnnxStudentEngine(s, { threads: 1, head });
    const comps = await engine.forwardLoss(px, ids, mask, B, L, { target: { data: t, dims: [B, 16] } });
    expect(Object.keys(comps)).toEqual(['dot', 'sq']);
    const weights = { dot: 0.7, sq: 3 };
    const grads = await engine.backwardLoss(weights);
    await expect(engine.backwardLoss({ dot: 1 })).rejects.toThrow(/no weight for the loss component 'sq'/);

    // The same through the embedding graphs: loss and dLoss/dEmbedding by hand.
    const emb = await engine.forward(px, ids, mask, B, L);
    let dot = 0;
    let sq = 0;
    for (let i = 0; i < B * 16; i++) {
      dot += emb.image[i] * t[i];
      sq += emb.text[i] ** 2 / (B * 16);
    }
    expect(comps.dot).toBeCloseTo(dot, 5);
    expect(comps.sq).toBeCloseTo(sq, 6);
    expect(comps.sq).toBeCloseTo(1 / 16, 5);
    const ref = await engine.backward(
      t.map((v) => v * weights.dot),
      emb.text.map((v) => (2 * v * weights.sq) / (B * 16)),
    );
    expect(engine.compiledShapes).toBe(2); // the embedding graphs and the loss graphs of one shape
    for (const [name, g] of ref) expect(relDiff(grads.get(name)!, g), name).toBeLessThan(1e-4);
    await engine.release();
    await expect(new OnnxStudentEngine(s).forwardLoss(px, ids, mask, B, L, {})).rejects.toThrow(/without a loss head/);
    s.dispose();
  });

  it('names the tower it cannot run', () => {
    const s = createStudent('vit-bert', { preset: 'tiny', embedDim: 8, seed: 0, vocabSize: 50 });
    const forged = { config: { ...s.config, image: { ...s.config.image, type: 'convnext' } } } as unknown as typeof s;
    expect(onnxSupport(forged)).toBe("the 'convnext' image tower is not written for the onnx engine");
    expect(() => new OnnxStudentEngine(forged)).toThrow(/cannot use the onnx engine: the 'convnext' image tower/);
    s.dispose();
  });
});
