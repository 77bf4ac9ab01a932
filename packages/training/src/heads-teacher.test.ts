import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tokenizer } from '@huggingface/tokenizers';
import { initRuntime, l2NormalizeRows, tf, tfOps } from '@distill/core';
import { loadGlove, loadMobileNetV2 } from '@distill/pretrained';
import { mobilenetV2Specs, mobilenetV2Tower } from '@distill/student-architectures';
import { OnnxTeacher } from '@distill/teacher-adapters';
import { computeRecall, headline } from '@distill/eval';
import type { Dataset, SplitData } from '@distill/core';
import {
  exportHeadsTeacher,
  HEADS_TEACHER_DEFAULTS,
  headSpecs,
  imageHead,
  textEncoder,
  trainHeads,
  wordIds,
  type HeadsTeacherConfig,
} from './heads-teacher.js';
import { gloveWordTable as wordTable, wordTokenizerJson } from '@distill/student-architectures';

const glove = loadGlove();
const CAPTIONS = [
  'red heart',
  'A cat face with tears of joy!',
  'house with garden, outline',
  'man and woman holding hands',
  'qzxv unknownword star',
  'donkey cupcake parachute',
];

describe('teacher v3 tokenizer: words stay whole', () => {
  const json = wordTokenizerJson(glove.words, 32);
  const hf = new Tokenizer(json as never, {});

  it('every everyday word of issue 24 is one token (not [UNK], not pieces)', () => {
    for (const w of 'face heart red cat star car house dog sun moon arrow circle man woman person hand flag box donkey cupcake parachute'.split(
      ' ',
    )) {
      const ids = Array.from(hf.encode(w, { add_special_tokens: true }).ids as ArrayLike<number>);
      expect(ids, w).toEqual([5 + glove.index.get(w)!]);
    }
  });

  it('training tokenises as the shipped tokenizer.json does (Hugging Face tokenizers), unknown words as one [UNK]', () => {
    const { ids, mask } = wordIds(CAPTIONS, glove.index, 32);
    CAPTIONS.forEach((c, i) => {
      const want = Array.from(hf.encode(c, { add_special_tokens: true }).ids as ArrayLike<number>);
      const n = mask.subarray(i * 32, (i + 1) * 32).reduce((a, b) => a + b, 0);
      expect(Array.from(ids.subarray(i * 32, i * 32 + n)), c).toEqual(want);
    });
    expect(Array.from(hf.encode('qzxv', { add_special_tokens: true }).ids as ArrayLike<number>)).toEqual([1]);
  });
});

describe('teacher v3 export: the ONNX folder computes what the heads compute (any batch)', () => {
  const c: HeadsTeacherConfig = {
    ...HEADS_TEACHER_DEFAULTS,
    imageSize: 64,
    layer: 'block_6',
    hidden: 32,
    dim: 16,
    maxTextLength: 12,
  };
  let dir: string;
  let params: Record<string, { shape: number[]; data: Float32Array }>;
  beforeAll(async () => {
    await initRuntime('wasm', { quiet: true });
    dir = mkdtempSync(join(tmpdir(), 'distill-heads-'));
    let seed = 3;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
    params = Object.fromEntries(
      headSpecs(c, 64, 100).map((s) => [
        s.name,
        { shape: s.shape, data: Float32Array.from({ length: s.shape.reduce((a, b) => a * b, 1) }, () => 0.3 * rnd()) },
      ]),
    );
    exportHeadsTeacher(join(dir, 't'), c, params, { name: 'test-v3' });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('image.onnx and text.onnx = the tfjs forward of the same definitions, at batch 1 and 3', async () => {
    const t = await OnnxTeacher.load(join(dir, 't'), { threads: 1 });
    expect(t.preprocess).toMatchObject({ crop: 64, mean: [0, 0, 0], std: [1, 1, 1] });
    const px = Float32Array.from({ length: 3 * 3 * 64 * 64 }, (_, i) => ((i * 7919) % 255) / 255);
    const tfp = (ps: Record<string, { shape: number[]; data: Float32Array }>) =>
      Object.fromEntries(Object.entries(ps).map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
    const { weights } = loadMobileNetV2();
    const want = tf.tidy(() => {
      const o = tfOps();
      const trunk = tfp(
        Object.fromEntries(
          mobilenetV2Specs({ imageSize: 64, layer: c.layer, numChannels: 3 }).map((s) => [s.name, weights[s.name]]),
        ),
      );
      const f = mobilenetV2Tower(
        o,
        trunk,
        { imageSize: 64, layer: c.layer, numChannels: 3 },
        tf.tensor(px, [3, 3, 64, 64]),
      ).features;
      const img = imageHead(o, tfp(params), c, f).dataSync() as Float32Array;
      const { ids, mask } = wordIds(CAPTIONS, glove.index, 12);
      const wt = wordTable();
      const txt = textEncoder(
        o,
        tfp(params),
        c,
        tf.tensor(wt.data, wt.shape),
        tf.tensor2d(ids, [CAPTIONS.length, 12], 'int32'),
        tf.tensor2d(mask, [CAPTIONS.length, 12]),
      ).dataSync() as Float32Array;
      return { img: l2NormalizeRows(img.slice(), 16), txt: l2NormalizeRows(txt.slice(), 16) };
    });
    const gotImg3 = await t.encodeImages(px, 3);
    const gotImg1 = await t.encodeImages(px.subarray(0, 3 * 64 * 64), 1);
    const gotTxt = await t.encodeTexts(CAPTIONS);
    const gotTxt1 = await t.encodeTexts(CAPTIONS.slice(0, 1));
    await t.dispose();
    const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
    expect(maxDiff(gotImg3, want.img)).toBeLessThan(1e-4);
    expect(maxDiff(gotImg1, want.img.subarray(0, 16))).toBeLessThan(1e-4);
    expect(maxDiff(gotTxt, want.txt)).toBeLessThan(1e-4);
    expect(maxDiff(gotTxt1, want.txt.subarray(0, 16))).toBeLessThan(1e-4);
  });
});

describe('teacher v3 pretrain: the val/test recall it records is the one distill evaluates the teacher with', () => {
  // The ONNX teacher adapter L2-normalises embeddings and @distill/eval ranks by dot products; pretrain's
  // own figures must do the same (they once ranked raw head outputs: glyphs v3 recorded test RSUM 88.66
  // where the shipped folder evaluates to 176.08).
  const WORDS = 'red heart car house cat dog blue tree sun moon star fish green hand flag box'.split(' ');
  const split = (n: number, seed: number): SplitData => {
    let s = seed;
    const r = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
    const images = Array.from({ length: n }, (_, i) => ({ id: `i${seed}-${i}`, path: `x${i}.png` }));
    const captions = images.flatMap((_, i) =>
      [0, 1].map(() => ({
        text: Array.from({ length: 1 + Math.floor(r() * 4) }, () => WORDS[Math.floor(r() * WORDS.length)]).join(' '),
        image: i,
      })),
    );
    return { images, captions } as SplitData;
  };
  const feats = (n: number, seed: number) => {
    let s = seed;
    return Float32Array.from(
      { length: n * 24 },
      () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 4 - 2,
    );
  };

  it('trainHeads reports test recall over L2-normalised embeddings of its best heads', async () => {
    await initRuntime('wasm', { quiet: true });
    const dataset = {
      name: 'tiny',
      manifestHash: 'x',
      imageRoot: '/nonexistent',
      splits: { train: split(16, 1), val: split(40, 2), test: split(40, 3) },
    } as unknown as Dataset;
    const c: Partial<HeadsTeacherConfig> = { hidden: 16, dim: 8, maxTextLength: 4, epochs: 1, batchSize: 8, seed: 5 };
    const r = await trainHeads(dataset, { train: feats(16, 11), val: feats(40, 12), test: feats(40, 13) }, c, {});
    const cfg = { ...HEADS_TEACHER_DEFAULTS, ...c };
    const test = dataset.splits.test;
    const { ids, mask } = wordIds(
      test.captions.map((x) => x.text),
      glove.index,
      cfg.maxTextLength,
    );
    const wt = wordTable();
    const [images, texts] = tf.tidy(() => {
      const p = Object.fromEntries(Object.entries(r.params).map(([k, v]) => [k, tf.tensor(v.data, v.shape)]));
      const o = tfOps();
      const im = imageHead(o, p, cfg, tf.tensor2d(feats(40, 13), [40, 24]));
      const tx = textEncoder(
        o,
        p,
        cfg,
        tf.tensor2d(wt.data, wt.shape),
        tf.tensor2d(ids, [test.captions.length, cfg.maxTextLength], 'int32'),
        tf.tensor2d(mask, [test.captions.length, cfg.maxTextLength]),
      );
      return [im.dataSync() as Float32Array, tx.dataSync() as Float32Array];
    });
    const t2i = test.captions.map((x) => x.image);
    const want = headline(
      computeRecall(l2NormalizeRows(images, 8), l2NormalizeRows(texts, 8), 8, t2i, { engine: 'js' }),
    );
    const raw = headline(computeRecall(images, texts, 8, t2i, { engine: 'js' }));
    expect(raw.rsum, 'the fixture must tell normalised from raw ranking apart').not.toBeCloseTo(want.rsum, 3);
    for (const k of Object.keys(want) as (keyof typeof want)[]) expect(r.test![k], k).toBeCloseTo(want[k], 6);
  }, 60_000);
});
