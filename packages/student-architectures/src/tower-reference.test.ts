import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { graphOps, initRuntime, OnnxRunner, tf, type TensorParams, readSafetensors } from '@distill/core';
import { Graph, type Sym } from '@distill/autodiff';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxStudentEngine } from './onnx-engine.js';
import { resnetTower, type ResNetConfig } from './resnet.js';
import { createStudentFromConfig, setStudentWeights, type DualEncoderStudent, type StudentConfig } from './student.js';
import { textCnnTower, type TextCnnConfig } from './textcnn.js';

/**
 * The ResNet and TextCNN towers against PyTorch: fixtures/towers holds a tiny resnet-textcnn student
 * (every weight seeded, exported by tools/parity/export_towers_fixture.ts), fixed inputs, and the
 * outputs of PyTorch modules written from the towers' documented architecture
 * (tools/parity/towers_reference.py, float64). Both engines must reproduce them.
 */

const fixture = (f: string) => new URL(`./fixtures/towers/${f}`, import.meta.url);
type Spec = { shape: number[]; data: number[] };
const config = JSON.parse(readFileSync(fixture('student.json'), 'utf8')) as StudentConfig;
const inputs = JSON.parse(readFileSync(fixture('inputs.json'), 'utf8')) as { pixels: Spec; ids: Spec; mask: Spec };
const ref = JSON.parse(readFileSync(fixture('reference.json'), 'utf8')).outputs as Record<
  'image_features' | 'text_features' | 'image_embeds' | 'text_embeds',
  number[][]
>;
const [B, , S] = inputs.pixels.shape;
const L = inputs.ids.shape[1];
const pixels = Float32Array.from(inputs.pixels.data);
const ids = Int32Array.from(inputs.ids.data);
const mask = Int32Array.from(inputs.mask.data);

const TOL = 1e-5;
/** max |got - want| over the reference, after checking the shape. */
function maxAbsDiff(got: ArrayLike<number>, want: number[][]): number {
  expect(got.length).toBe(want.length * want[0].length);
  return want.flat().reduce((m, v, i) => Math.max(m, Math.abs(v - got[i])), 0);
}

let student: DualEncoderStudent;
beforeAll(async () => {
  await initRuntime('cpu', { quiet: true });
  student = createStudentFromConfig(config, { seed: 99 }); // the seed's init is overwritten by the checkpoint
  const weights: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [k, t] of readSafetensors(fileURLToPath(fixture('model.safetensors'))))
    weights[k] = { shape: t.shape, data: t.data };
  setStudentWeights(student, weights);
});
afterAll(() => student?.dispose());

describe('ResNet and TextCNN towers match the PyTorch reference (fixtures/towers)', () => {
  it('the fixture covers what it should: projection and identity shortcuts, odd sizes, even widths, short captions', () => {
    expect(config.image.type).toBe('resnet');
    expect(config.text.type).toBe('textcnn');
    const names = student.variables().map((v) => v.name);
    expect(names.filter((n) => n.endsWith('shortcut.weight'))).toEqual([
      'image.stages.0.blocks.0.shortcut.weight',
      'image.stages.1.blocks.0.shortcut.weight',
      'image.stages.2.blocks.0.shortcut.weight',
    ]);
    expect(names).toContain('image.stages.1.blocks.1.conv1.weight'); // an identity-shortcut block
    expect((config.text.config as TextCnnConfig).kernelWidths).toEqual([1, 2, 3, 4]);
    const lengths = Array.from({ length: B }, (_, b) =>
      inputs.mask.data.slice(b * L, (b + 1) * L).reduce((a, x) => a + x, 0),
    );
    expect(lengths).toEqual([9, 5, 1]);
    expect(ref.image_features[0]).toHaveLength(8);
    expect(ref.text_features[0]).toHaveLength(20);
  });

  it('tfjs: tower features and projected embeddings to 1e-5', () => {
    tf.tidy(() => {
      const px = tf.tensor4d(pixels, [B, 3, S, S]);
      const tok = { ids: tf.tensor2d(ids, [B, L], 'int32'), mask: tf.tensor2d(mask, [B, L], 'int32') };
      expect(
        maxAbsDiff(student.imageFeatures(px, false).dataSync(), ref.image_features),
        'image features',
      ).toBeLessThan(TOL);
      expect(maxAbsDiff(student.textFeatures(tok, false).dataSync(), ref.text_features), 'text features').toBeLessThan(
        TOL,
      );
      expect(maxAbsDiff(student.encodeImage(px, false).dataSync(), ref.image_embeds), 'image embeddings').toBeLessThan(
        TOL,
      );
      expect(maxAbsDiff(student.encodeText(tok, false).dataSync(), ref.text_embeds), 'text embeddings').toBeLessThan(
        TOL,
      );
    });
  });

  it('onnx graphs: tower features to 1e-5', async () => {
    const g = new Graph();
    const vars = student.variables();
    const feeds: Record<string, { data: Float32Array | BigInt64Array; dims: number[] }> = {};
    const tower = (prefix: string): TensorParams<Sym> =>
      Object.fromEntries(
        vars.flatMap((v, i) => {
          if (!v.name.startsWith(prefix)) return [];
          feeds[`p${i}`] = { data: v.variable.dataSync() as Float32Array, dims: [...v.variable.shape] };
          return [[v.name.slice(prefix.length), g.input(`p${i}`, [...v.variable.shape])]];
        }),
      );
    const o = graphOps();
    const image = resnetTower(
      o,
      tower('image.'),
      config.image.config as ResNetConfig,
      g.input('pixels', [B, 3, S, S]),
    ).features;
    const text = textCnnTower(o, tower('text.'), config.text.config as TextCnnConfig, {
      ids: g.input('ids', [B, L], { dtype: 'int64' }),
      mask: g.input('mask', [B, L]),
    }).features;
    feeds.pixels = { data: pixels, dims: [B, 3, S, S] };
    feeds.ids = { data: BigInt64Array.from(inputs.ids.data, (x) => BigInt(x)), dims: [B, L] };
    feeds.mask = { data: Float32Array.from(inputs.mask.data), dims: [B, L] };
    const r = await OnnxRunner.create(g.encode([image, text], ['image', 'text']), { threads: 1 });
    try {
      const out = await r.run(feeds, ['image', 'text']);
      expect(maxAbsDiff(out[0], ref.image_features), 'image features').toBeLessThan(TOL);
      expect(maxAbsDiff(out[1], ref.text_features), 'text features').toBeLessThan(TOL);
    } finally {
      await r.release();
    }
  });

  it("onnx engine (the training step's forward, text padded to its length bucket): embeddings to 1e-5", async () => {
    const engine = new OnnxStudentEngine(student, { threads: 1 });
    try {
      const got = await engine.forward(pixels, ids, mask, B, L, { training: false });
      expect(maxAbsDiff(got.image, ref.image_embeds), 'image embeddings').toBeLessThan(TOL);
      expect(maxAbsDiff(got.text, ref.text_embeds), 'text embeddings').toBeLessThan(TOL);
    } finally {
      await engine.release();
    }
  });
});
