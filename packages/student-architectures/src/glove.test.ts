import { initRuntime, Rng } from '@distill/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  isWholeWordToken,
  symmetricEigen,
  vocabTokens,
  wordEmbeddingInit,
  wordInitLine,
  type WordVectors,
} from './glove.js';
import { countStudentParams, createStudent, getStudentWeights } from './student.js';
import { trainWordPieceTokenizer } from './tokenizer.js';

const captions = [
  'red heart',
  'cat face with tears of joy',
  'smiling face with sunglasses',
  'thumbs up',
  'red car',
  'black cat',
  'heart with arrow',
];
const tokenizer = trainWordPieceTokenizer(captions, { vocabSize: 90 });

/** Small word vectors (dim 8) for a few words: a rank-2 structure plus noise, so PCA has a clear top. */
function fixtureVectors(words: string[], dim = 8): WordVectors {
  const rng = new Rng(11);
  const vectors = new Float32Array(words.length * dim);
  const u = rng.normalArray(dim, 0, 1);
  const v = rng.normalArray(dim, 0, 1);
  words.forEach((_, i) => {
    const a = rng.normal() * 3;
    const b = rng.normal() * 2;
    for (let j = 0; j < dim; j++) vectors[i * dim + j] = a * u[j] + b * v[j] + 0.05 * rng.normal() + 0.5;
  });
  return { words, dim, vectors, index: new Map(words.map((w, i) => [w, i])) };
}

const WORDS = ['red', 'heart', 'cat', 'face', 'with', 'car', 'zebra', 'of', 'up'];

beforeAll(async () => {
  await initRuntime('wasm', { quiet: true });
});

describe('GloVe initialisation of the word embeddings (--text-init glove)', () => {
  it('whole-word tokens: no ## pieces, no specials', () => {
    expect(['cat', '##s', '[CLS]', '[PAD]', 'a', undefined].map(isWholeWordToken)).toEqual([
      true,
      false,
      false,
      false,
      true,
      false,
    ]);
  });

  it('Jacobi eigen-decomposition: A v = lambda v, descending', () => {
    const a = Float64Array.from([4, 1, 2, 1, 3, 0, 2, 0, 1]);
    const { values, vectors } = symmetricEigen(a, 3);
    expect(values[0]).toBeGreaterThanOrEqual(values[1]);
    expect(values[1]).toBeGreaterThanOrEqual(values[2]);
    for (let j = 0; j < 3; j++) {
      for (let r = 0; r < 3; r++) {
        let av = 0;
        for (let c = 0; c < 3; c++) av += a[r * 3 + c] * vectors[c * 3 + j];
        expect(av).toBeCloseTo(values[j] * vectors[r * 3 + j], 9);
      }
    }
  });

  it('matched tokens get their vectors (projected, scaled to the init std); the rest keep the random init', () => {
    const vocab = vocabTokens(tokenizer);
    const wv = fixtureVectors(WORDS);
    const width = 4;
    const random = new Rng(1).normalArray(vocab.length * width, 0, 0.02);
    const { values, report } = wordEmbeddingInit(vocab, wv, width, random, 0.02);
    const matchedIds = vocab.map((t, i) => (isWholeWordToken(t) && wv.index.has(t) ? i : -1)).filter((i) => i >= 0);
    expect(report.matched).toBe(matchedIds.length);
    expect(report.matched).toBeGreaterThanOrEqual(6); // red heart cat face with car of up: whole words of the captions
    expect(report).toMatchObject({ vocab: vocab.length, width: 4, dim: 8, projection: 'pca' });
    expect(report.varianceKept).toBeGreaterThan(0.99); // rank-2 data + noise: 4 components keep nearly all
    // unmatched rows: exactly the random init
    for (let i = 0; i < vocab.length; i++) {
      if (matchedIds.includes(i)) continue;
      expect(Array.from(values.slice(i * width, (i + 1) * width))).toEqual(
        Array.from(random.slice(i * width, (i + 1) * width)),
      );
    }
    // matched rows: std 0.02 over the block, and the vectors' geometry: pairwise distances proportional to the originals
    const block = matchedIds.flatMap((i) => Array.from(values.slice(i * width, (i + 1) * width)));
    const std = Math.sqrt(block.reduce((s, x) => s + x * x, 0) / block.length);
    expect(std).toBeCloseTo(0.02, 6);
    const dist = (a: ArrayLike<number>, b: ArrayLike<number>) =>
      Math.sqrt(Array.from(a).reduce((s, x, j) => s + (x - b[j]) ** 2, 0));
    const row = (i: number) => values.slice(i * width, (i + 1) * width);
    const orig = (t: string) => wv.vectors.slice(wv.index.get(t)! * 8, (wv.index.get(t)! + 1) * 8);
    const [a, b, c] = matchedIds;
    const ratio1 = dist(row(a), row(b)) / dist(orig(vocab[a]!), orig(vocab[b]!));
    const ratio2 = dist(row(a), row(c)) / dist(orig(vocab[a]!), orig(vocab[c]!));
    expect(ratio1 / ratio2).toBeCloseTo(1, 2);
    expect(wordInitLine(report)).toMatch(/GloVe vectors for \d+ of \d+ tokens .*PCA 8 -> 4/);
  });

  it('a wider table: zero-padded; the same width: as they are', () => {
    const vocab = vocabTokens(tokenizer);
    const wv = fixtureVectors(WORDS);
    const pad = wordEmbeddingInit(vocab, wv, 12, new Float32Array(vocab.length * 12), 0.02);
    expect(pad.report.projection).toBe('pad');
    const id = vocab.indexOf('heart');
    expect(Array.from(pad.values.slice(id * 12 + 8, id * 12 + 12))).toEqual([0, 0, 0, 0]);
    const same = wordEmbeddingInit(vocab, wv, 8, new Float32Array(vocab.length * 8), 0.02);
    expect(same.report.projection).toBe('identity');
    expect(Array.from(same.values.slice(id * 8, id * 8 + 8)).some((x) => x !== 0)).toBe(true);
  });

  it("createStudent with textInit 'glove': the word table has the vectors, every other weight equals the from-scratch student's", () => {
    const wordVectors = fixtureVectors(WORDS);
    const glove = createStudent('vit-bert', {
      preset: 'tiny',
      embedDim: 16,
      seed: 5,
      tokenizer,
      textInit: 'glove',
      wordVectors,
    });
    const plain = createStudent('vit-bert', { preset: 'tiny', embedDim: 16, seed: 5, tokenizer });
    try {
      const g = getStudentWeights(glove);
      const p = getStudentWeights(plain);
      const name = 'text.embeddings.word_embeddings.weight';
      const vocab = vocabTokens(tokenizer);
      const expected = wordEmbeddingInit(vocab, wordVectors, 64, p[name].data, 0.02).values;
      expect(Array.from(g[name].data)).toEqual(Array.from(expected));
      expect(Array.from(g[name].data)).not.toEqual(Array.from(p[name].data));
      for (const k of Object.keys(p)) if (k !== name) expect(Array.from(g[k].data), k).toEqual(Array.from(p[k].data));
      expect(glove.initReport.text?.matched).toBeGreaterThanOrEqual(6);
      expect(plain.initReport.text).toBeUndefined();
    } finally {
      glove.dispose();
      plain.dispose();
    }
  });

  it("the trained projection: a BERT embeddingSize of the vectors' width takes them as they are, and a trained linear maps to the hidden size", () => {
    const wordVectors = fixtureVectors(WORDS);
    const s = createStudent('vit-bert', {
      preset: 'tiny',
      embedDim: 16,
      seed: 5,
      tokenizer,
      textInit: 'glove',
      wordVectors,
      overrides: { text: { embeddingSize: 8 } },
    });
    try {
      const w = getStudentWeights(s);
      expect(w['text.embeddings.word_embeddings.weight'].shape).toEqual([
        tokenizer ? vocabTokens(tokenizer).length : 0,
        8,
      ]);
      expect(w['text.embeddings.projection.weight'].shape).toEqual([8, 64]);
      expect(s.initReport.text?.projection).toBe('identity');
      expect(countStudentParams(s.config).text).toBe(s.parameterCount().text);
    } finally {
      s.dispose();
    }
  });

  it('textcnn takes it too; a tokenizer is required', () => {
    const s = createStudent('vit-textcnn', {
      preset: 'tiny',
      embedDim: 16,
      seed: 5,
      tokenizer,
      textInit: 'glove',
      wordVectors: fixtureVectors(WORDS),
    });
    expect(s.initReport.text?.width).toBe(64);
    s.dispose();
    expect(() =>
      createStudent('vit-bert', {
        preset: 'tiny',
        embedDim: 16,
        seed: 5,
        vocabSize: 90,
        textInit: 'glove',
        wordVectors: fixtureVectors(WORDS),
      }),
    ).toThrow(/needs the student's tokenizer/);
  });
});
