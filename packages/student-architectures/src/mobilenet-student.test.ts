import { initRuntime, tf } from '@distill/core';
import { loadMobileNetV2 } from '@distill/pretrained';
import { beforeAll, describe, expect, it } from 'vitest';
import { OnnxStudentEngine, onnxSupport } from './onnx-engine.js';
import { countStudentParams, createStudent, getStudentWeights, resolveStudentConfig } from './student.js';
import { trainWordPieceTokenizer } from './tokenizer.js';

const tokenizer = trainWordPieceTokenizer(['red heart', 'cat face with tears of joy', 'thumbs up'], { vocabSize: 80 });

beforeAll(async () => {
  await initRuntime('cpu', { quiet: true });
});

describe('mobilenet-bert: a MobileNetV2 image tower that can start from the converted ImageNet weights', () => {
  it('tiny and small: MobileNetV2 cut after blocks 5 / 9 at 64 / 96 px, pixels in [-1, 1], BERT text tower of the preset', () => {
    const tiny = resolveStudentConfig('mobilenet-bert', { preset: 'tiny', embedDim: 32 });
    expect(tiny.image).toEqual({ type: 'mobilenet-v2', config: { imageSize: 64, layer: 'block_5', numChannels: 3 } });
    expect(tiny.preprocess).toMatchObject({ crop: 64, resize: 64, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    expect(tiny.text.type).toBe('bert');
    const small = resolveStudentConfig('mobilenet-bert', { preset: 'small', embedDim: 32 });
    expect(small.image.config).toMatchObject({ imageSize: 96, layer: 'block_9' });
    const t = countStudentParams(tiny);
    const s = countStudentParams(small);
    expect(t.image).toBeGreaterThan(20_000);
    expect(s.image).toBeGreaterThan(t.image);
  });

  it("--image-init mobilenetv2: every image weight is the asset's, the rest as from scratch; from scratch differs", () => {
    const { weights } = loadMobileNetV2();
    const pre = createStudent('mobilenet-bert', {
      preset: 'tiny',
      embedDim: 16,
      seed: 2,
      tokenizer,
      imageInit: 'mobilenetv2',
    });
    const scratch = createStudent('mobilenet-bert', { preset: 'tiny', embedDim: 16, seed: 2, tokenizer });
    try {
      const a = getStudentWeights(pre);
      const b = getStudentWeights(scratch);
      const image = Object.keys(a).filter((k) => k.startsWith('image.'));
      expect(image).toContain('image.blocks.5.project.weight');
      expect(image).not.toContain('image.blocks.6.project.weight'); // cut after block 5
      for (const k of image)
        expect(Array.from(a[k].data), k).toEqual(Array.from(weights[k.slice('image.'.length)].data));
      expect(Array.from(b['image.blocks.3.depthwise.weight'].data)).not.toEqual(
        Array.from(a['image.blocks.3.depthwise.weight'].data),
      );
      for (const k of Object.keys(a).filter((k) => !k.startsWith('image.')))
        expect(Array.from(a[k].data), k).toEqual(Array.from(b[k].data));
    } finally {
      pre.dispose();
      scratch.dispose();
    }
  });

  it('on the onnx engine: the graph holds the pretrained weights, and its embeddings and gradients equal the tfjs towers', async () => {
    const { weights } = loadMobileNetV2();
    const s = createStudent('mobilenet-bert', {
      preset: 'tiny',
      embedDim: 16,
      seed: 2,
      tokenizer,
      maxLength: 8,
      imageInit: 'mobilenetv2',
      overrides: { image: { imageSize: 32 } },
    });
    expect(onnxSupport(s)).toBeUndefined();
    const engine = new OnnxStudentEngine(s, { threads: 1 });
    const names = s.variables().map((v) => v.name);
    const at = names.indexOf('image.blocks.2.depthwise.weight');
    expect(Array.from(engine.params[at])).toEqual(Array.from(weights['blocks.2.depthwise.weight'].data));
    const B = 2;
    const S = 32;
    const px = Float32Array.from({ length: B * 3 * S * S }, (_, i) => Math.sin(i * 0.37));
    const batch = s.tokenize(['red heart', 'thumbs up']);
    const L = batch.ids.shape[1];
    const ids = batch.ids.dataSync() as Int32Array;
    const mask = batch.mask.dataSync() as Int32Array;
    const got = await engine.forward(px, ids, mask, B, L);
    const wI = Float32Array.from({ length: B * 16 }, (_, i) => Math.cos(i * 0.91));
    const wT = Float32Array.from({ length: B * 16 }, (_, i) => Math.sin(i * 1.7 + 1));
    const grads = await engine.backward(wI, wT);
    tf.tidy(() => {
      const pixels = tf.tensor4d(px, [B, 3, S, S]);
      const want = s.encodeImage(pixels, true).dataSync();
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got.image[i] - want[i]));
      expect(worst).toBeLessThan(1e-5);
      const vars = s.variables();
      const { grads: ref } = tf.variableGrads(
        () =>
          tf.add(
            tf.sum(tf.mul(s.encodeImage(pixels, true), tf.tensor2d(wI, [B, 16]))),
            tf.sum(tf.mul(s.encodeText(batch, true), tf.tensor2d(wT, [B, 16]))),
          ) as tf.Scalar,
        vars.map((v) => v.variable),
      );
      for (const v of vars.filter((x) => x.name.startsWith('image.'))) {
        const w = ref[v.variable.name].dataSync();
        const g = grads.get(v.name)!;
        expect(g.length, v.name).toBe(w.length);
        const scale = Math.max(1e-6, ...Array.from(w, Math.abs));
        let e = 0;
        for (let i = 0; i < w.length; i++) e = Math.max(e, Math.abs(g[i] - w[i]) / scale);
        expect(e, `gradient of ${v.name}`).toBeLessThan(1e-4);
      }
    });
    await engine.release();
    s.dispose();
  });

  it('refuses --image-init mobilenetv2 for another image tower', () => {
    expect(() =>
      createStudent('vit-bert', { preset: 'tiny', embedDim: 16, seed: 2, tokenizer, imageInit: 'mobilenetv2' }),
    ).toThrow(/use --student mobilenet-bert/);
  });
});
