import { describe, it, expect, beforeAll } from 'vitest';
import { initRuntime, Rng } from '@distill/core';
import { createOnnxGemm } from './onnx-gemm.js';
import { computeRecall, computeRecallAsync, headline, RecallEvaluator } from './recall.js';

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
  const nI = images.length / dim,
    nT = texts.length / dim;
  const s = (i: number, j: number) => {
    let v = 0;
    for (let d = 0; d < dim; d++) v += images[i * dim + d] * texts[j * dim + d];
    return Math.fround(v);
  };
  const i2t: number[] = [];
  for (let i = 0; i < nI; i++) {
    const order = [...Array(nT).keys()].sort(
      (a, b) => s(i, b) - s(i, a) || (t2i[a] === i ? 1 : 0) - (t2i[b] === i ? 1 : 0),
    );
    i2t.push(order.findIndex((j) => t2i[j] === i));
  }
  const t2iR: number[] = [];
  for (let j = 0; j < nT; j++) {
    const order = [...Array(nI).keys()].sort(
      (a, b) => s(b, j) - s(a, j) || (a === t2i[j] ? 1 : 0) - (b === t2i[j] ? 1 : 0),
    );
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
    const r = computeRecall(images, texts, dim, Int32Array.from([0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]), {
      engine: 'js',
    });
    // image 0: 10 wrong captions at 0.6 > 0.5 -> rank 10: not in the top 10.
    expect(r.i2tRanks[0]).toBe(10);
    expect(r.i2t_r10).toBe(50);
  });

  it('perfect retrieval gives 100 everywhere and RSUM 600', () => {
    const rng = new Rng(3);
    const nI = 20,
      dim = 16,
      per = 5;
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
    expect(() => computeRecall(images, texts, dim, Int32Array.from([0, 0, 1, 1, 1, 1, 1, 1, 3]))).toThrow(
      /not an image index/,
    );
  });
});

describe('computeRecall engines and blocking agree with a sort-based reference', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  it('on random data with many exact ties (quantised features)', () => {
    const rng = new Rng(11);
    const nI = 37,
      dim = 8,
      nT = 160;
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
    const nI = 41,
      dim = 12,
      nT = 130;
    const q = (n: number) => Float32Array.from({ length: n }, () => Math.round(rng.normal()));
    const images = q(nI * dim);
    const texts = q(nT * dim);
    const t2i = Int32Array.from({ length: nT }, (_, j) => (j < nI ? j : rng.int(nI)));
    const ref = sortRanks(images, texts, dim, t2i);
    const gemm = await createOnnxGemm(1);
    await gemm?.release();
    if (!gemm) console.warn('onnxruntime-node not importable: checked the fallback engine only');
    const r = await computeRecallAsync(images, texts, dim, t2i, {
      engine: gemm ? 'onnx' : 'auto',
      blockRows: 16,
      storeLimitBytes: 0,
    });
    expect(r.engine).toBe(gemm ? 'onnx' : 'js');
    expect(Array.from(r.i2tRanks)).toEqual(ref.i2t);
    expect(Array.from(r.t2iRanks)).toEqual(ref.t2i);
  });
});

// The triangle fixture of cli.test.ts, in process: 12 images x 13 captions, own pairs 0.5, '+' 0.75,
// '=' 0.5 (a tie with the own pair), '-' 0.25; caption 12 is image 0's second caption (0.1 with image 0,
// 0.25 elsewhere). Image i's rank is i, caption j's rank 11 - j (caption 12: 11); ties at every cut-off.
const TRIANGLE = [
  'o-----------',
  '=o----------',
  '++o---------',
  '+++o--------',
  '++++o-------',
  '=++++o------',
  '++++++o-----',
  '++++++=o----',
  '++++++++o---',
  '+++++++++o--',
  '+=++++++++o-',
  '++++++++++=o',
];
const triangle = () => {
  const score: Record<string, number> = { o: 0.5, '+': 0.75, '=': 0.5, '-': 0.25 };
  const S = TRIANGLE.map((row, i) => [...row].map((c) => score[c]).concat(i === 0 ? 0.1 : 0.25));
  return { ...fromScores(S), t2i: Int32Array.from([...Array(12).keys(), 0]) };
};

describe('computeRecall at the cut-offs (ranks exactly 1, 5, 10, 11 both ways, ties pessimistic)', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });

  const check = (r: Awaited<ReturnType<typeof computeRecallAsync>>) => {
    expect(Array.from(r.i2tRanks)).toEqual([...Array(12).keys()]);
    expect(Array.from(r.t2iRanks)).toEqual([11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 11]);
    expect([r.i2t_r1, r.i2t_r5, r.i2t_r10]).toEqual([100 / 12, 500 / 12, 1000 / 12]);
    expect([r.t2i_r1, r.t2i_r5, r.t2i_r10]).toEqual([100 / 13, 500 / 13, 1000 / 13]);
    expect(r.rsum).toBeCloseTo(1600 / 12 + 1600 / 13, 10);
    // i2t: 12 ranks 0..11, median (5 + 6) / 2 = 5.5 -> floor 5 -> 1-based 6; mean 5.5 -> 6.5.
    expect([r.i2t_medr, r.i2t_meanr]).toEqual([6, 6.5]);
    // t2i: 13 ranks 0..11 and 11, median the 7th = 6 -> 7; mean 77 / 13 -> + 1.
    expect(r.t2i_medr).toBe(7);
    expect(r.t2i_meanr).toBeCloseTo(77 / 13 + 1, 12);
  };

  // (test names without quotes or braces: Stryker selects tests by name)
  const title = (o: object) =>
    Object.entries(o)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'defaults';
  for (const opts of [
    { engine: 'js' as const },
    { engine: 'js' as const, blockRows: 5, storeLimitBytes: 0 },
    { engine: 'tf' as const, blockRows: 3 },
    { engine: 'tf' as const, storeLimitBytes: 0 },
  ]) {
    it(`computeRecall, ${title(opts)}`, () => {
      const { images, texts, dim, t2i } = triangle();
      const r = computeRecall(images, texts, dim, t2i, opts);
      expect(r.engine).toBe(opts.engine);
      check(r);
    });
  }

  for (const opts of [
    { engine: 'onnx' as const, blockRows: 5, storeLimitBytes: 0 },
    { engine: 'onnx' as const, blockRows: 5 },
    { engine: 'onnx' as const },
    { engine: 'js' as const },
    { engine: 'tf' as const },
    {},
  ]) {
    it(`computeRecallAsync, ${title(opts)}`, async () => {
      const { images, texts, dim, t2i } = triangle();
      const r = await computeRecallAsync(images, texts, dim, t2i, { ...opts, threads: 1 });
      // 'auto' on a small problem (12 x 13 x 13 < 1e6 products) takes computeRecall's choice: js on the cpu backend.
      expect(r.engine).toBe(opts.engine ?? 'js');
      check(r);
    });
  }

  it('headline keeps the seven numbers; the evaluator returns metrics without ranks', () => {
    const { images, texts, dim, t2i } = triangle();
    const r = computeRecall(images, texts, dim, t2i);
    expect(r.engine).toBe('js'); // auto on the cpu backend
    expect(headline(r)).toEqual({
      i2t_r1: r.i2t_r1,
      i2t_r5: r.i2t_r5,
      i2t_r10: r.i2t_r10,
      t2i_r1: r.t2i_r1,
      t2i_r5: r.t2i_r5,
      t2i_r10: r.t2i_r10,
      rsum: r.rsum,
    });
    const m = new RecallEvaluator().evaluate(images, texts, dim, t2i);
    expect(Object.keys(m).sort()).toEqual([
      'i2t_meanr',
      'i2t_medr',
      'i2t_r1',
      'i2t_r10',
      'i2t_r5',
      'rsum',
      't2i_meanr',
      't2i_medr',
      't2i_r1',
      't2i_r10',
      't2i_r5',
    ]);
    expect(m.i2t_medr).toBe(6);
  });

  it('an image without captions is left out of i2t but still competes in t2i', () => {
    // image 2 has no caption and beats caption 0's own image (0.9 > 0.8) and ties caption 1's (0.7).
    const { images, texts, dim } = fromScores([
      [0.8, 0.1],
      [0.2, 0.7],
      [0.9, 0.7],
    ]);
    const r = computeRecall(images, texts, dim, Int32Array.from([0, 1]), { engine: 'js' });
    expect(Array.from(r.i2tRanks)).toEqual([0, 0, -1]);
    expect(Array.from(r.t2iRanks)).toEqual([1, 1]);
    expect([r.i2t_r1, r.t2i_r1, r.t2i_r5]).toEqual([100, 0, 100]);
    expect([r.i2t_medr, r.i2t_meanr, r.t2i_medr, r.t2i_meanr]).toEqual([1, 1, 2, 2]);
  });

  it('explains every malformed input in one line', () => {
    const ok = Float32Array.from([1, 0, 0, 1]);
    expect(() => computeRecall(ok, ok, 0, [0, 1])).toThrow(/^Embedding dim must be a positive integer, got 0.$/);
    expect(() => computeRecall(ok, ok, 1.5, [0, 1])).toThrow(/positive integer, got 1.5/);
    expect(() => computeRecall(ok, Float32Array.from([1, 0, 0]), 2, [0, 1])).toThrow(
      /^Text embeddings hold 3 values, not a multiple of dim 2.$/,
    );
    expect(() => computeRecall(Float32Array.from([1, 0, 0]), ok, 2, [0, 1])).toThrow(
      /^Image embeddings hold 3 values, not a multiple of dim 2.$/,
    );
    expect(() => computeRecall(new Float32Array(0), ok, 2, [0, 1])).toThrow(
      /^Need at least one image and one text \(got 0 images, 2 texts\).$/,
    );
    expect(() => computeRecall(ok, new Float32Array(0), 2, [])).toThrow(/got 2 images, 0 texts/);
    expect(() => computeRecall(ok, ok, 2, [0])).toThrow(
      /^text-to-image has 1 entries but there are 2 text rows: give one image index per text row.$/,
    );
    expect(() => computeRecall(ok, ok, 2, [0, 2])).toThrow(
      /^text-to-image\[1\] = 2 is not an image index in \[0, 2\).$/,
    );
    expect(() => computeRecall(ok, ok, 2, [-1, 0])).toThrow(/text-to-image\[0\] = -1/);
    expect(() => computeRecall(ok, ok, 2, [0.5, 0])).toThrow(/text-to-image\[0\] = 0.5/);
    expect(() => computeRecall(Float32Array.from([1, 0, 0, Number.NaN]), ok, 2, [0, 1])).toThrow(
      /^image embeddings contain a non-finite value \(NaN\) at row 1.$/,
    );
    expect(() => computeRecall(ok, Float32Array.from([Infinity, 0, 0, 1]), 2, [0, 1])).toThrow(
      /^text embeddings contain a non-finite value \(Infinity\) at row 0.$/,
    );
  });
});

describe('computeRecall engine choice on a fast backend (wasm)', () => {
  it("'auto' uses tfjs for a large product on wasm, plain loops for a small one; both agree", async () => {
    await initRuntime('wasm', { quiet: true });
    try {
      const rng = new Rng(5);
      const nI = 100,
        dim = 101,
        nT = 1000; // 1.01e7 multiply-adds: just above the 1e7 switch
      const q = (n: number) => Float32Array.from({ length: n }, () => Math.round(rng.normal()));
      const images = q(nI * dim);
      const texts = q(nT * dim);
      const t2i = Int32Array.from({ length: nT }, (_, j) => j % nI);
      const big = computeRecall(images, texts, dim, t2i);
      expect(big.engine).toBe('tf');
      const js = computeRecall(images, texts, dim, t2i, { engine: 'js' });
      expect(js.engine).toBe('js'); // asked for: kept on a fast backend too
      expect(Array.from(big.i2tRanks)).toEqual(Array.from(js.i2tRanks));
      expect(Array.from(big.t2iRanks)).toEqual(Array.from(js.t2iRanks));
      // 100 x 1000 x 100 = 1e7 is not above the switch.
      expect(computeRecall(images.subarray(0, nI * 100), texts.subarray(0, nT * 100), 100, t2i).engine).toBe('js');
    } finally {
      await initRuntime('cpu', { quiet: true });
    }
  });
});

describe('engine choice by problem size (cpu backend, onnxruntime)', () => {
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
  });
  const rng = new Rng(9);
  const q = (n: number) => Float32Array.from({ length: n }, () => Math.round(rng.normal()));

  it('computeRecall auto keeps plain loops on the cpu backend even above 1e7 multiply-adds', () => {
    const [nI, nT, dim] = [100, 1000, 101];
    const r = computeRecall(
      q(nI * dim),
      q(nT * dim),
      dim,
      Int32Array.from({ length: nT }, (_, j) => j % nI),
    );
    expect(r.engine).toBe('js');
  });

  it('computeRecallAsync auto takes the onnxruntime GEMM above 1e6 multiply-adds only; engine js is kept above it', async () => {
    const [nI, nT] = [100, 100];
    const t2i = Int32Array.from({ length: nT }, (_, j) => j);
    const at = q(nI * 100),
      tt = q(nT * 100);
    const exact = await computeRecallAsync(at, tt, 100, t2i, { threads: 1 }); // 100 x 100 x 100 = 1e6: not above
    expect(exact.engine).toBe('js');
    const above = await computeRecallAsync(q(nI * 101), q(nT * 101), 101, t2i, { threads: 1 }); // 1.01e6
    expect(above.engine).toBe('onnx');
    const js = await computeRecallAsync(q(nI * 101), q(nT * 101), 101, t2i, { engine: 'js', threads: 1 });
    expect(js.engine).toBe('js');
    // 100 images x 200 texts x 60 = 1.2e6 (not square: nI * nT / dim and nI / nT give other sides of 1e6)
    const wide = await computeRecallAsync(
      q(nI * 60),
      q(200 * 60),
      60,
      Int32Array.from({ length: 200 }, (_, j) => j % nI),
      { threads: 1 },
    );
    expect(wide.engine).toBe('onnx');
  });
});
