import { initRuntime, tf, tfOps } from '@distill/core';
import { loadGlove, loadMobileNetV2 } from '@distill/pretrained';
import { beforeAll, describe, expect, it } from 'vitest';
import { GLOVE_OFFSET, gloveTokenizerJson, gloveVocabSize, gloveWordTable } from './glove-text.js';
import { mobilenetV2Tower } from './mobilenet.js';
import { OnnxStudentEngine, onnxSupport } from './onnx-engine.js';
import { countStudentParams, createStudent, getStudentWeights, resolveStudentConfig } from './student.js';
import { trainWordPieceTokenizer } from './tokenizer.js';

beforeAll(async () => {
  await initRuntime('cpu', { quiet: true });
});

const COMMON =
  'face heart red cat star car house dog sun moon arrow circle man woman person hand flag box donkey cupcake parachute'.split(
    ' ',
  );

describe('mobilenet-glove: a student that starts pretrained and keeps both pretrained parts frozen', () => {
  it('its tokenizer is the GloVe word list: common words and words never in a caption are one token each, with their GloVe row', () => {
    const s = createStudent('mobilenet-glove', { preset: 'tiny', embedDim: 16, seed: 0, maxLength: 16 });
    try {
      const g = loadGlove();
      expect(s.tokenizer!.vocabSize).toBe(gloveVocabSize());
      expect(gloveVocabSize()).toBe(GLOVE_OFFSET + g.words.length);
      const t = gloveWordTable();
      for (const w of COMMON) {
        const b = s.tokenize([w]);
        const ids = Array.from(b.ids.dataSync()).filter((_, i) => b.mask.dataSync()[i] === 1);
        expect(ids, w).toHaveLength(1);
        const row = g.words.indexOf(w);
        expect(ids[0], w).toBe(GLOVE_OFFSET + row);
        // the table row is the word's vector (int8 per row: within half a step of max|v| / 127)
        const v = g.vectors.subarray(row * g.dim, (row + 1) * g.dim);
        const step = Math.max(...Array.from(v, Math.abs)) / 127;
        for (let k = 0; k < g.dim; k++)
          expect(Math.abs(t.data[ids[0] * g.dim + k] - v[k])).toBeLessThanOrEqual(step / 2 + 1e-7);
      }
      for (let k = 0; k < GLOVE_OFFSET * g.dim; k++)
        if (t.data[k] !== 0) expect.fail(`special-token row value ${k} is not 0`);
    } finally {
      s.dispose();
    }
  });

  it('only the heads are parameters: the trunk and the word table are constants (never trained, never saved)', () => {
    const c = resolveStudentConfig('mobilenet-glove', { preset: 'tiny', embedDim: 256 });
    expect(c.image).toEqual({
      type: 'mobilenet-v2-frozen',
      config: { imageSize: 32, layer: 'block_12', numChannels: 3, frozen: true, hidden: 256 },
    });
    expect(c.preprocess).toMatchObject({ resize: 32, crop: 32, mean: [0, 0, 0], std: [1, 1, 1] });
    expect(resolveStudentConfig('mobilenet-glove', { preset: 'small', embedDim: 256 }).image.config).toMatchObject({
      imageSize: 64,
      hidden: 256,
    });
    // base is teacher v3's trunk and head widths, at its 96 px with no ImageNet-style resize
    const base = resolveStudentConfig('mobilenet-glove', { preset: 'base', embedDim: 256 });
    expect([base.image.config, base.preprocess.resize, base.text.config]).toMatchObject([
      { imageSize: 96, hidden: 512 },
      96,
      { hidden: 512 },
    ]);
    const n = countStudentParams(c);
    // image: LayerNorm(96) + 96 x 256 linear; text: attention scorer (100 x 64 + 64 + 64), LayerNorm(200), 200 x 256 linear
    expect(n.image).toBe(2 * 96 + 96 * 256 + 256);
    expect(n.text).toBe(100 * 64 + 64 + 64 + 2 * 200 + 200 * 256 + 256);
    const s = createStudent('mobilenet-glove', { preset: 'tiny', embedDim: 256, seed: 0 });
    try {
      const names = Object.keys(getStudentWeights(s));
      expect(names.filter((k) => k.startsWith('image.'))).toEqual([
        'image.pool_norm.weight',
        'image.pool_norm.bias',
        'image.pool_fc.weight',
        'image.pool_fc.bias',
      ]);
      expect(names.some((k) => k.includes('word_embeddings'))).toBe(false);
    } finally {
      s.dispose();
    }
  });

  it("the image feature is the head over the converted network's pooled block-12 feature (the asset's weights, unchanged)", () => {
    const s = createStudent('mobilenet-glove', {
      preset: 'tiny',
      embedDim: 8,
      seed: 1,
      overrides: { image: { imageSize: 32 } },
    });
    try {
      const { weights } = loadMobileNetV2();
      const w = getStudentWeights(s);
      tf.tidy(() => {
        const px = tf.tensor4d(
          Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.13)),
          [2, 3, 32, 32],
        );
        const trunkParams = Object.fromEntries(
          Object.entries(weights).map(([k, v]) => [k, tf.tensor(v.data, v.shape)]),
        );
        const pooled = mobilenetV2Tower(tfOps(), trunkParams, { imageSize: 32, layer: 'block_12', numChannels: 3 }, px)
          .features as tf.Tensor2D;
        const t = (k: string) => tf.tensor(w[k].data, w[k].shape);
        const mean = tf.mean(pooled, 1, true);
        const normed = tf.add(
          tf.mul(
            tf.div(tf.sub(pooled, mean), tf.sqrt(tf.add(tf.mean(tf.square(tf.sub(pooled, mean)), 1, true), 1e-5))),
            t('image.pool_norm.weight'),
          ),
          t('image.pool_norm.bias'),
        );
        const z = tf.add(tf.matMul(normed, t('image.pool_fc.weight') as tf.Tensor2D), t('image.pool_fc.bias'));
        const want = tf.mul(tf.mul(z, 0.5), tf.add(1, tf.erf(tf.div(z, Math.SQRT2)))).dataSync();
        const got = s.imageFeatures(px, false).dataSync();
        expect(got.length).toBe(2 * 256);
        let worst = 0;
        for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
        expect(worst).toBeLessThan(1e-4);
      });
    } finally {
      s.dispose();
    }
  });
});

describe('mobilenet-glove on the onnx engine', () => {
  it('its embeddings and head gradients equal the tfjs towers; no gradient input exists for the trunk or the table', async () => {
    const s = createStudent('mobilenet-glove', {
      preset: 'tiny',
      embedDim: 16,
      seed: 2,
      maxLength: 8,
      overrides: { image: { imageSize: 32, hidden: 24 }, text: { hidden: 24 } },
    });
    expect(onnxSupport(s)).toBeUndefined();
    const engine = new OnnxStudentEngine(s, { threads: 1 });
    const vars = s.variables();
    expect(engine.params.length).toBe(vars.length);
    expect(vars.every((v) => v.variable.size < 100_000)).toBe(true); // no 3.2M-value table, no trunk among the weights
    const B = 2;
    const S = 32;
    const px = Float32Array.from({ length: B * 3 * S * S }, (_, i) => 0.5 + 0.5 * Math.sin(i * 0.37));
    const batch = s.tokenize(['red heart', 'a donkey with a parachute']);
    const L = batch.ids.shape[1];
    const got = await engine.forward(px, batch.ids.dataSync() as Int32Array, batch.mask.dataSync() as Int32Array, B, L);
    const wI = Float32Array.from({ length: B * 16 }, (_, i) => Math.cos(i * 0.91));
    const wT = Float32Array.from({ length: B * 16 }, (_, i) => Math.sin(i * 1.7 + 1));
    const grads = await engine.backward(wI, wT);
    tf.tidy(() => {
      const pixels = tf.tensor4d(px, [B, 3, S, S]);
      const close = (a: ArrayLike<number>, b: ArrayLike<number>, what: string) => {
        expect(a.length, what).toBe(b.length);
        let worst = 0;
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
        expect(worst, what).toBeLessThan(1e-5);
      };
      close(got.image, s.encodeImage(pixels, true).dataSync(), 'image embeddings');
      close(got.text, s.encodeText(batch, true).dataSync(), 'text embeddings');
      const { grads: ref } = tf.variableGrads(
        () =>
          tf.add(
            tf.sum(tf.mul(s.encodeImage(pixels, true), tf.tensor2d(wI, [B, 16]))),
            tf.sum(tf.mul(s.encodeText(batch, true), tf.tensor2d(wT, [B, 16]))),
          ) as tf.Scalar,
        vars.map((v) => v.variable),
      );
      for (const v of vars) {
        const w = ref[v.variable.name].dataSync();
        const g = grads.get(v.name)!;
        const scale = Math.max(1e-6, ...Array.from(w, Math.abs));
        let e = 0;
        for (let i = 0; i < w.length; i++) e = Math.max(e, Math.abs(g[i] - w[i]) / scale);
        expect(e, `gradient of ${v.name}`).toBeLessThan(1e-4);
      }
    });
    await engine.release();
    s.dispose();
  });

  it('says in one line what is wrong: an init for a frozen part, or a tokenizer that is not the GloVe word list', () => {
    expect(() => createStudent('mobilenet-glove', { embedDim: 8, seed: 0, textInit: 'glove' })).toThrow(
      /reads frozen GloVe word vectors already: it takes no --text-init/,
    );
    expect(() => createStudent('mobilenet-glove', { embedDim: 8, seed: 0, imageInit: '/some/hf/folder' })).toThrow(
      /frozen: it takes no --image-init/,
    );
    const small = trainWordPieceTokenizer(['red heart', 'cat face'], { vocabSize: 60 });
    expect(() => createStudent('vit-glove', { embedDim: 8, seed: 0, tokenizer: small })).toThrow(
      /use the word-level GloVe tokenizer/,
    );
    expect(gloveTokenizerJson(8)).toMatchObject({ truncation: { max_length: 8 } });
  });
});

describe("imageInput 'features': the frozen trunk once per image, the steps on its outputs", () => {
  it('trunkFeatures + a features step give the embeddings and gradients of a pixels step', async () => {
    const s = createStudent('mobilenet-glove', {
      preset: 'tiny',
      embedDim: 16,
      seed: 4,
      maxLength: 8,
      overrides: { image: { imageSize: 32, hidden: 24 }, text: { hidden: 24 } },
    });
    const onPixels = new OnnxStudentEngine(s, { threads: 1 });
    const onFeatures = new OnnxStudentEngine(s, { threads: 1, imageInput: 'features' });
    const B = 3;
    const S = 32;
    const px = Float32Array.from({ length: B * 3 * S * S }, (_, i) => 0.5 + 0.5 * Math.cos(i * 0.21));
    const feats = await onFeatures.trunkFeatures(
      B,
      async (idx) => px.slice(idx[0] * 3 * S * S, (idx[idx.length - 1] + 1) * 3 * S * S),
      { batch: 2 },
    );
    expect(feats.length).toBe(B * 96);
    const batch = s.tokenize(['red heart', 'a donkey', 'moon and star']);
    const L = batch.ids.shape[1];
    const ids = batch.ids.dataSync() as Int32Array;
    const mask = batch.mask.dataSync() as Int32Array;
    const a = await onPixels.forward(px, ids, mask, B, L);
    const b = await onFeatures.forward(feats, ids, mask, B, L);
    const wI = Float32Array.from({ length: B * 16 }, (_, i) => Math.cos(i * 0.5));
    const wT = Float32Array.from({ length: B * 16 }, (_, i) => Math.sin(i * 0.3));
    const ga = await onPixels.backward(wI, wT);
    const gb = await onFeatures.backward(wI, wT);
    const worst = (x: ArrayLike<number>, y: ArrayLike<number>) =>
      Array.from(x).reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
    expect(worst(a.image, b.image)).toBeLessThan(1e-5);
    expect(worst(a.text, b.text)).toBe(0);
    for (const v of s.variables()) expect(worst(ga.get(v.name)!, gb.get(v.name)!), v.name).toBeLessThan(1e-5);
    await expect(
      new OnnxStudentEngine(createStudent('vit-glove', { embedDim: 8, seed: 0 }), {
        imageInput: 'features',
      }).trunkFeatures(1, async () => new Float32Array(3 * 64 * 64)),
    ).rejects.toThrow(/needs an image tower with a frozen trunk/);
    await onPixels.release();
    await onFeatures.release();
    s.dispose();
  });
});
