import { describe, it, expect } from 'vitest';
import { PairSampler } from './sampler.js';

// 4 images with 3, 6, 1 and 2 captions: 12 caption rows.
const split = { captions: [0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 3, 3].map((image, k) => ({ text: `c${k}`, image })) };

describe('PairSampler', () => {
  it('yields caption rows with their images, a seeded permutation per epoch, drop_last', () => {
    const s = new PairSampler(split, { batchSize: 5, seed: 7 });
    expect(s.batchesPerEpoch).toBe(2);
    const e0 = [...s.epochBatches()];
    expect(e0.map((b) => b.step)).toEqual([0, 1]);
    const rows = e0.flatMap((b) => Array.from(b.captions));
    expect(new Set(rows).size).toBe(10);
    for (const b of e0) expect(Array.from(b.images)).toEqual(Array.from(b.captions, (c) => split.captions[c].image));
    const e1 = [...s.epochBatches()];
    expect(e1[0].epoch).toBe(1);
    expect(Array.from(e1[0].captions)).not.toEqual(Array.from(e0[0].captions));
    // Same seed -> same order; another seed -> another order.
    expect(Array.from(new PairSampler(split, { batchSize: 5, seed: 7 }).next().captions)).toEqual(
      Array.from(e0[0].captions),
    );
    expect(Array.from(new PairSampler(split, { batchSize: 5, seed: 8 }).next().captions)).not.toEqual(
      Array.from(e0[0].captions),
    );
  });

  it('resumes exactly from {epoch, cursor}', () => {
    const a = new PairSampler(split, { batchSize: 4, seed: 1 });
    for (let i = 0; i < 4; i++) a.next();
    const state = a.state();
    expect(state).toEqual({ epoch: 1, cursor: 1 });
    const rest = [a.next(), a.next(), a.next()].map((b) => Array.from(b.captions));
    const b = new PairSampler(split, { batchSize: 4, seed: 1 });
    b.load(JSON.parse(JSON.stringify(state)));
    expect([b.next(), b.next(), b.next()].map((x) => Array.from(x.captions))).toEqual(rest);
  });

  it('keeps the order unshuffled and the short last batch when asked (the official loader is shuffle=False)', () => {
    const s = new PairSampler(split, { batchSize: 5, shuffle: false, dropLast: false });
    expect([...s.epochBatches()].map((b) => Array.from(b.captions))).toEqual([
      [0, 1, 2, 3, 4],
      [5, 6, 7, 8, 9],
      [10, 11],
    ]);
    expect(() => new PairSampler(split, { batchSize: 13 })).toThrow(/fewer than one batch/);
  });
});
