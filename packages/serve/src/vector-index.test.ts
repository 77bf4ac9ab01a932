import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initRuntime } from '@distill/core';
import { loadEmoji } from '@distill/data';
import { createStudent, trainWordPieceTokenizer, saveStudent } from '@distill/student-architectures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportStudent } from './export.js';
import { OnnxModel } from './model.js';
import { folderCollection, VectorIndex, type Collection } from './vector-index.js';

const emoji = loadEmoji().splits.test;
const tokenizer = trainWordPieceTokenizer(
  emoji.captions.map((c) => c.text),
  { vocabSize: 300 },
);
let root: string;
let models: OnnxModel[];

async function exported(seed: number): Promise<OnnxModel> {
  const student = createStudent('vit-bert', { preset: 'tiny', embedDim: 16, seed, tokenizer, maxLength: 12 });
  const dir = join(root, `student-${seed}`);
  saveStudent(dir, student);
  student.dispose();
  await exportStudent(dir, join(root, `model-${seed}`));
  return OnnxModel.load(join(root, `model-${seed}`), { threads: 1 });
}

const part = (from: number, to: number): Collection => ({
  source: `emoji:test[${from}:${to}]`,
  images: emoji.images.slice(from, to),
  captions: emoji.captions
    .filter((c) => c.image >= from && c.image < to)
    .map((c) => ({ text: c.text, image: c.image - from })),
});

beforeAll(async () => {
  await initRuntime('auto', { quiet: true });
  root = mkdtempSync(join(tmpdir(), 'distill-index-'));
  models = [await exported(1), await exported(2)];
});
afterAll(async () => {
  for (const m of models) await m.dispose();
});

describe('VectorIndex (usearch HNSW, cosine)', () => {
  it("an image's own embedding finds it first; a caption finds the captions' image among the scores the model gives", async () => {
    const [model] = models;
    const dir = join(root, 'idx-a');
    const index = VectorIndex.create(dir, model);
    const added = await index.add(model, part(0, 40));
    expect(added.images).toBe(40);
    expect(added.texts).toBe(part(0, 40).captions.length);
    index.save();
    const again = VectorIndex.open(dir);
    const { ImageLoader } = await import('@distill/data');
    const px = await new ImageLoader({ imageRoot: '/', splits: {} }, model.preprocess).load([emoji.images[7]]);
    const hits = again.searchVector(await model.encodeImages(px, 1), 3, 'images');
    expect(hits[0]).toMatchObject({ rank: 1, name: emoji.images[7].id });
    expect(hits[0].score).toBeCloseTo(1, 4);
    // text -> images: scores are the cosine similarities the model computes, in descending order
    const r = await again.search(model, { text: 'red heart' }, 5);
    expect(r.results).toHaveLength(5);
    const q = await model.encodeTexts(['red heart']);
    for (const h of r.results) {
      const row = again.meta.images.findIndex((im) => im.id === h.id);
      expect(again.meta.images[row].name).toBe(emoji.images[row].id);
      const px1 = await new ImageLoader({ imageRoot: '/', splits: {} }, model.preprocess).load([emoji.images[row]]);
      const v = await model.encodeImages(px1, 1);
      expect(h.score).toBeCloseTo(
        q.reduce((s, x, i) => s + x * v[i], 0),
        4,
      );
    }
    expect(r.results.map((h) => h.score)).toEqual([...r.results.map((h) => h.score)].sort((a, b) => b - a));
  });

  it('adds incrementally (known ids skipped) and refuses another model', async () => {
    const [model, other] = models;
    const dir = join(root, 'idx-b');
    const index = VectorIndex.create(dir, model);
    await index.add(model, part(0, 10));
    index.save();
    const reopened = VectorIndex.open(dir);
    const added = await reopened.add(model, part(5, 20)); // 5..9 are already there
    expect(added.images).toBe(10);
    reopened.save();
    const last = VectorIndex.open(dir);
    expect(last.meta.images.map((im) => im.name)).toEqual(emoji.images.slice(0, 20).map((im) => im.id));
    expect(new Set(last.meta.images.map((im) => im.id)).size).toBe(20);
    expect(last.meta.sources).toEqual(['emoji:test[0:10]', 'emoji:test[5:20]']);
    await expect(last.add(other, part(20, 25))).rejects.toThrow(/was built with the model .*model-1.*not .*model-2/);
    await expect(last.loadModel(other.dir)).rejects.toThrow(/cannot be compared with another model/);
    await expect(last.search(model, { text: 'x' }, 0)).rejects.toThrow(/k must be a positive integer/);
  });

  it('indexes a folder of images with <name>.txt captions; an image query finds captions', async () => {
    const [model] = models;
    const folder = join(root, 'photos');
    mkdirSync(join(folder, 'sub'), { recursive: true });
    const picks = [0, 1, 2].map((i) => emoji.images[i]);
    copyFileSync(picks[0].path, join(folder, 'a.png'));
    copyFileSync(picks[1].path, join(folder, 'sub', 'b.png'));
    copyFileSync(picks[2].path, join(folder, 'c.png'));
    writeFileSync(join(folder, 'a.png.txt'), 'ignored: not <name>.txt');
    writeFileSync(join(folder, 'a.txt'), 'first caption\nsecond caption\n');
    const c = folderCollection(folder);
    expect(c.images.map((i) => i.id)).toEqual(['a.png', 'c.png', 'sub/b.png']);
    expect(c.captions).toEqual([
      { text: 'first caption', image: 0 },
      { text: 'second caption', image: 0 },
    ]);
    const index = VectorIndex.create(join(root, 'idx-c'), model);
    await index.add(model, c);
    const r = await index.search(model, { image: join(folder, 'a.png') }, 2);
    expect(r.target).toBe('texts');
    expect(r.results.map((h) => h.name)).toEqual(['a.png', 'a.png']);
    const toImages = await index.search(model, { image: join(folder, 'a.png') }, 1, 'images');
    expect(toImages.results[0].name).toBe('a.png');
    expect(() => folderCollection(join(root, 'nope'))).toThrow(/not found/);
  });
});
