import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createContainer, initRuntime, registryOf, tf, TOKENS, type Student } from '@distill/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { register } from './index.js';
import { pairDef, PAIRS, PRESETS } from './presets.js';
import {
  countStudentParams,
  createStudent,
  createStudentFromConfig,
  getStudentWeights,
  resolveStudentConfig,
  setStudentWeights,
} from './student.js';
import { trainWordPieceTokenizer } from './tokenizer.js';

const captions = [
  'grinning face with big eyes',
  'red heart',
  'cat face with tears of joy',
  'smiling face with sunglasses',
  'thumbs up',
];
const tokenizer = trainWordPieceTokenizer(captions, { vocabSize: 150 });

beforeAll(async () => {
  await initRuntime('wasm', { quiet: true });
});

/** One forward + backward pass on a batch of 2; returns the loss and how many variables got a gradient. */
function step(s: Student, texts = captions.slice(0, 2)) {
  const B = texts.length;
  const S = s.preprocess.crop;
  return tf.tidy(() => {
    const px = tf.randomNormal([B, 3, S, S], 0, 1, 'float32', 7) as tf.Tensor4D;
    const batch = s.tokenize(texts);
    const vars = s.variables().map((v) => v.variable);
    const { value, grads } = tf.variableGrads(() => {
      const a = s.encodeImage(px, true);
      const b = s.encodeText(batch, true);
      return tf.neg(tf.sum(tf.mul(a, b))) as tf.Scalar; // -sum_i <s^I_i, s^T_i>
    }, vars);
    const withGrad = Object.values(grads).filter((g) => g && tf.any(tf.notEqual(g, 0)).dataSync()[0]).length;
    const img = s.encodeImage(px, false);
    const norms = tf.norm(img, 'euclidean', 1).dataSync();
    return { loss: value.dataSync()[0], withGrad, nVars: vars.length, imgShape: img.shape, norms: [...norms] };
  });
}

describe('student pairs', () => {
  for (const pair of PAIRS.map((p) => p.name)) {
    for (const preset of ['tiny', 'small'] as const) {
      it(`${pair} ${preset}: forward gives L2-normalised [B, embedDim], backward reaches every variable`, () => {
        const s = createStudent(pair, {
          preset,
          embedDim: 48,
          seed: 3,
          tokenizer: pairDef(pair)?.text === 'glove' ? undefined : tokenizer,
        });
        try {
          const r = step(s);
          expect(Number.isFinite(r.loss)).toBe(true);
          expect(r.imgShape).toEqual([2, 48]);
          for (const n of r.norms) expect(n).toBeCloseTo(1, 5);
          expect(r.withGrad).toBe(r.nVars);
          const c = s.parameterCount();
          expect(c).toEqual(countStudentParams(s.config));
          expect(c.total).toBe(c.image + c.text + c.head);
        } finally {
          s.dispose();
        }
      });
    }
  }

  it('every pair and preset reports a parameter count from shapes; base vit-bert is the paper size (~197M)', () => {
    for (const p of PAIRS) {
      for (const preset of PRESETS) {
        const c = countStudentParams(resolveStudentConfig(p.name, { preset, embedDim: 768 }));
        expect(c.total).toBeGreaterThan(0);
      }
    }
    const base = countStudentParams(resolveStudentConfig('vit-bert', { preset: 'base', embedDim: 768 }));
    // ViT-B/16 (85.80M) + BERT-base (109.48M) + two 768->768 projections (1.18M)
    expect(base).toEqual({ image: 85_798_656, text: 109_482_240, head: 1_181_184, total: 196_462_080 });
    expect(Math.abs(base.total - 197e6) / 197e6).toBeLessThan(0.01);
    const tiny = countStudentParams(
      resolveStudentConfig('vit-bert', { preset: 'tiny', embedDim: 768, vocabSize: 2000 }),
    );
    expect(tiny.image).toBeLessThan(500_000);
    expect(tiny.text).toBeLessThan(500_000);
  });

  it('the same seed gives the same weights; another seed does not', () => {
    const a = createStudent('vit-bert', { embedDim: 16, seed: 1, tokenizer });
    const b = createStudent('vit-bert', { embedDim: 16, seed: 1, tokenizer });
    const c = createStudent('vit-bert', { embedDim: 16, seed: 2, tokenizer });
    const w = (s: Student) => getStudentWeights(s)['image.encoder.layer.0.attention.attention.query.weight'].data;
    expect(w(a)).toEqual(w(b));
    expect(w(a)).not.toEqual(w(c));
    [a, b, c].forEach((s) => s.dispose());
  });

  it('checkpoint helpers round-trip and reject a missing or mis-shaped weight by name', () => {
    const a = createStudent('deit-albert', { embedDim: 16, seed: 1, tokenizer });
    const b = createStudentFromConfig(a.config, { seed: 9, tokenizer });
    const saved = getStudentWeights(a);
    setStudentWeights(b, saved);
    const px = tf.randomNormal([1, 3, 64, 64], 0, 1, 'float32', 1) as tf.Tensor4D;
    expect(b.encodeImage(px, false).dataSync()).toEqual(a.encodeImage(px, false).dataSync());

    const { ['text_proj.bias']: _dropped, ...missing } = saved;
    expect(() => setStudentWeights(b, missing)).toThrow(/missing 1: text_proj\.bias/);
    const bad = { ...saved, 'image_proj.weight': { shape: [3, 3], data: new Float32Array(9) } };
    expect(() => setStudentWeights(b, bad)).toThrow(
      /mis-shaped 1: image_proj\.weight \(expected \[64,16\], got \[3,3\]\)/,
    );
    [a, b].forEach((s) => s.dispose());
  });

  it('explains an unknown pair, an unknown preset and a missing tokenizer', () => {
    expect(() => createStudent('vit-gpt', { embedDim: 8, seed: 0 })).toThrow(
      /Unknown student pair 'vit-gpt'. Available: vit-bert/,
    );
    expect(() => createStudent('vit-bert', { embedDim: 8, seed: 0, preset: 'huge' as never })).toThrow(
      /Unknown preset 'huge'/,
    );
    const s = createStudent('vit-bert', { embedDim: 8, seed: 0 });
    expect(() => s.tokenize(['x'])).toThrow(/has no tokenizer/);
    s.dispose();
  });

  it('is registered under TOKENS.StudentRegistry by pair name', async () => {
    const container = createContainer();
    register(container);
    const reg = registryOf<Record<string, unknown>, Student>(container, TOKENS.StudentRegistry, 'student');
    expect(reg.names().sort()).toEqual(PAIRS.map((p) => p.name).sort());
    const s = await reg.create('resnet-textcnn', { embedDim: 8, tokenizer }, { container });
    expect(s.embedDim).toBe(8);
    s.dispose();
  });
});

/** In-repo copies of shared/parity/hf-tiny/<model>. */
const hfTiny = (m: string) => fileURLToPath(new URL(`./fixtures/hf-tiny/${m}`, import.meta.url));
describe('students from Hugging Face checkpoints', () => {
  it('imageInit/textInit load the towers: features equal the PyTorch reference CLS and pooler', async () => {
    const dir = hfTiny;
    const s = createStudent('vit-bert', { embedDim: 8, seed: 0, imageInit: dir('vit'), textInit: dir('bert') });
    const { readFileSync } = await import('node:fs');
    const vref = JSON.parse(readFileSync(join(dir('vit'), 'reference.json'), 'utf8'));
    const bref = JSON.parse(readFileSync(join(dir('bert'), 'reference.json'), 'utf8'));
    const img = s.imageFeatures(tf.tensor4d(vref.inputs.pixel_values), false).arraySync();
    const txt = s
      .textFeatures(
        {
          ids: tf.tensor2d(bref.inputs.input_ids, undefined, 'int32'),
          mask: tf.tensor2d(bref.inputs.attention_mask, undefined, 'int32'),
        },
        false,
      )
      .arraySync();
    const maxDiff = (a: number[][], b: number[][]) =>
      Math.max(...a.flatMap((r, i) => r.map((v, j) => Math.abs(v - b[i][j]))));
    expect(
      maxDiff(
        img,
        vref.outputs.last_hidden_state.map((seq: number[][]) => seq[0]),
      ),
    ).toBeLessThan(1e-4);
    expect(maxDiff(txt, bref.outputs.pooler_output)).toBeLessThan(1e-4);
    expect(s.config.image.config).toMatchObject({ imageSize: 16, hiddenSize: 32 });
    s.dispose();
  });

  it('refuses a checkpoint of the wrong architecture for the pair', () => {
    const dir = hfTiny;
    expect(() => createStudent('vit-bert', { embedDim: 8, seed: 0, textInit: dir('albert') })).toThrow(
      /'albert' checkpoint, but pair 'vit-bert' needs 'bert'/,
    );
  });
});

describe('training', () => {
  it('vit-bert tiny learns to match 8 image-text pairs (contrastive loss falls with Adam)', () => {
    const texts = ['red heart', 'blue heart', 'cat face', 'dog face', 'thumbs up', 'thumbs down', 'sun', 'moon'];
    const s = createStudent('vit-bert', {
      embedDim: 32,
      seed: 5,
      tokenizer: trainWordPieceTokenizer(texts, { vocabSize: 60 }),
    });
    const px = tf.randomNormal([8, 3, 64, 64], 0, 1, 'float32', 11) as tf.Tensor4D;
    const batch = s.tokenize(texts);
    const labels = tf.oneHot(tf.range(0, 8, 1, 'int32'), 8);
    const opt = tf.train.adam(3e-3);
    const vars = s.variables().map((v) => v.variable);
    const losses: number[] = [];
    for (let i = 0; i < 25; i++) {
      // InfoNCE: CE(softmax(s^I s^T^T / 0.1), identity)
      const l = opt.minimize(
        () =>
          tf.losses.softmaxCrossEntropy(
            labels,
            tf.mul(tf.matMul(s.encodeImage(px, true), s.encodeText(batch, true), false, true), 10),
          ) as tf.Scalar,
        true,
        vars,
      )!;
      losses.push(l.dataSync()[0]);
      l.dispose();
    }
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.5);
    s.dispose();
  });
});
