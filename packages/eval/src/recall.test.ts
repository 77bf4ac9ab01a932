import { describe, it, expect, beforeAll } from 'vitest';
import { initRuntime, Rng } from '@distill/core';
import { createOnnxGemm } from './onnx-gemm.js';
import { computeRecall, computeRecallAsync, RecallEvaluator } from './recall.js';

/** Embeddings whose similarity matrix is exactly S: images = rows of S, texts = identity. */
function fromScores(S: number[][]): { images: Float32Array; texts: Float32Array; dim: number } {
  const nT = S[0].length;
  const texts = new Float32Array(nT * nT);
  for (let j = 0; j < nT; j++) texts[j * nT + j] = 1;
  return { images: Float32Array.from(S.flat()), texts, dim: nT };
}

// 3 images; image 0 has 2 captions, image 1 has 6, image 2 has 1 (and ties everywhere).
const S = [
  [0.9, 0.1, 0.5, 0.2, 0.0, 0.0, 0.0, 0.0, 0.3],
  [0.8, 0.7, 0.1, 0.6, 0.2, 0.0, 0.0, 0.0, 0.6],
  [0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4],
];
const textToImage = Int32Array.from([0, 0, 1, 1, 1, 1, 1, 1, 2]);

/** Reference by sorting: 0-based rank of the first ground truth, ties pessimistic (wrong items first). */
function sortRanks(images: Float32Array, texts: Float32Array, dim: number, t2i: Int32Array) {
  const nI = images.length / dim, nT = texts.length / dim;
  const s = (i: number, j: number) => {
    let v = 0;
    for (let d = 0; d < dim; d++) v += images[i * dim + d] * texts[j * dim + d];
    return Math.fround(v);
  };
  const i2t: number[] = [];
  for (let i = 0; i < nI; i++) {
    const order = [...Array(nT).keys()].sort((a, b) => s(i, b) - s(i, a) || (t2i[a] === i ? 1 : 0) - (t2i[b] === i ? 1 : 0));
    i2t.push(order.findIndex((j) => t2i[j] === i));
  }
  const t2iR: number[] = [];
  for (let j = 0; j < nT; j++) {
    const order = [...Array(nI).keys()].sort((a, b) => s(b, j) - s(a, j) || (a === t2i[j] ? 1 : 0) - (b === t2i[j] ? 1 : 0));
    t2iR.push(order.indexOf(t2i[j]));
  }
  return { i2t, t2i: t2iR };
}

describe('computeRecall (golden, hand-computed)', () => {
  it('counts grouped ranks with pessimistic ties and an image with 6 captions', () => {
    const { images, texts, dim } = fromScores(S);
    const r = computeRecall(images, texts, dim, textToImage, { engine: 'js' });
    // img0: best caption 0.9, nothing wrong ahead -> 0. img1: best own 0.6; 0.8, 0.7 and the tied 0.6 of
    // caption 8 are ahead -> 3. img2: every score ties at 0.4 -> all 8 wrong captions ahead -> 8.
    expect(Array.from(r.i2tRanks)).toEqual([0, 3, 8]);
    // caption 5: own image scores 0.0, image 0 ties at 0.0 (counts ahead) and image 2 has 0.4 -> 2.
    expect(Array.from(r.t2iRanks)).toEqual([0, 2, 2, 0, 1, 2, 2, 2, 1]);
    expect(r.i2t_r1).toBeCloseTo(100 / 3, 10);
    expect(r.i2t_r5).toBeCloseTo(200 / 3, 10);
    expect(r.i2t_r10).toBe(100);
    expect(r.t2i_r1).toBeCloseTo(200 / 9, 10);
    expect(r.t2i_r5).toBe(100);
    expect(r.t2i_r10).toBe(100);
    expect(r.rsum).toBeCloseTo(100 / 3 + 200 / 3 + 100 + 200 / 9 + 200, 10);
    expect(r.i2t_medr).toBe(4); // median rank 3 (0-based) -> 4
    expect(r.i2t_meanr).toBeCloseTo(11 / 3 + 1, 10);
    expect(r.t2i_medr).toBe(3);
    expect(r.t2i_meanr).toBeCloseTo(12 / 9 + 1, 10);
  });

  it('rank 10 is a miss at K=10 and rank 9 a hit', () => {
    // Image 0 has one caption (0.5) and 10 wrong captions at 0.6 above it; image 1 owns captions 1..11.
    const row0 = [0.5, ...Array(10).fill(0.6), 0.0];
    const row1 = [0.0, ...Array(9).fill(0.9), 0.0, 0.8];
    const { images, texts, dim } = fromScores([row0, row1]);
    const r = computeRecall(images, texts, dim, Int32Array.from([0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]), { engine: 'js' });
    // image 0: 10 wrong captions at 0.6 > 0.5 -> rank 10: not in the top 10.
    expect(r.i2tRanks[0]).toBe(10);
    expect(r.i2t_r10).toBe(50);
  });

  it('perfect retrieval gives 100 everywhere and RSUM 600', () => {
    const rng = new Rng(3);
    const nI = 20, dim = 16, per = 5;
    const unit = (v: Float32Array) => {
      const n = Math.hypot(...v);
      return v.map((x) => x / n);
    };
    const images = new Float32Array(nI * dim);
    for (let i = 0; i < nI; i++) images.set(unit(rng.normalArray(dim)), i * dim);
    const texts = new Float32Array(nI * per * dim);
    const t2i = new Int32Array(nI * per);
    for (let j = 0; j < nI * per; j++) {
      t2i[j] = Math.floor(j / per);
      const v = images.slice(t2i[j] * dim, (t2i[j] + 1) * dim).map((x) => x + 0.01 * rng.normal());
      texts.set(unit(v), j * dim);
    }
    const m = new RecallEvaluator({ engine: 'js' }).evaluate(images, texts, dim, t2i);
    expect(m.rsum).toBe(600);
    expect(m.i2t_medr).toBe(1);
    // Shuffling the captions' image labels breaks it.
    const wrong = t2i.map((g) => (g + 1) % nI);
    expect(new RecallEvaluator({ engine: 'js' }).evaluate(images, texts, dim, wrong).rsum).toBeLessThan(100);
  });

  it('rejects mismatched shapes with clear messages', () => {
    const { images, texts, dim } = fromScores(S);
    expect(() => computeRecall(images, texts, dim, Int32Array.from([0, 1]))).toThrow(/one image index per text row/);
    expect(() => computeRecall(images, texts, 4, textToImage)).toThrow(/not a multiple of dim 4/);
    expect(() => computeRecall(images, texts, dim, Int32Array.from([0, 0, 1, 1, 1, 1, 1, 1, 3]))).toThrow(/not an image index/);
  });
});

describe('computeRecall engines and blocking agree with a sort-based reference', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  it('on random data with many exact ties (quantised features)', () => {
    const rng = new Rng(11);
    const nI = 37, dim = 8, nT = 160;
    // Quantised to {-1, 0, 1}: dot products are small integers, so ties are everywhere.
    const q = (n: number) => Float32Array.from({ length: n }, () => Math.round(rng.normal()));
    const images = q(nI * dim);
    const texts = q(nT * dim);
    const t2i = Int32Array.from({ length: nT }, (_, j) => (j < nI ? j : rng.int(nI)));
    const ref = sortRanks(images, texts, dim, t2i);
    for (const opts of [
      { engine: 'js' as const },
      { engine: 'js' as const, blockRows: 5, storeLimitBytes: 0 },
      { engine: 'tf' as const, blockRows: 8 },
    ]) {
      const r = computeRecall(images, texts, dim, t2i, opts);
      expect(Array.from(r.i2tRanks)).toEqual(ref.i2t);
      expect(Array.from(r.t2iRanks)).toEqual(ref.t2i);
    }
  });

  it('the onnxruntime GEMM path gives the same ranks (when onnxruntime-node imports)', async () => {
    const rng = new Rng(12);
    const nI = 41, dim = 12, nT = 130;
    const q = (n: number) => Float32Array.from({ length: n }, () => Math.round(rng.normal()));
    const images = q(nI * dim);
    const texts = q(nT * dim);
    const t2i = Int32Array.from({ length: nT }, (_, j) => (j < nI ? j : rng.int(nI)));
    const ref = sortRanks(images, texts, dim, t2i);
    const gemm = await createOnnxGemm(1);
    await gemm?.release();
    if (!gemm) console.warn('onnxruntime-node not importable: checked the fallback engine only');
    const r = await computeRecallAsync(images, texts, dim, t2i, { engine: gemm ? 'onnx' : 'auto', blockRows: 16, storeLimitBytes: 0 });
    expect(r.engine).toBe(gemm ? 'onnx' : 'js');
    expect(Array.from(r.i2tRanks)).toEqual(ref.i2t);
    expect(Array.from(r.t2iRanks)).toEqual(ref.t2i);
  });
});
