import { describe, expect, it } from 'vitest';
import { seededRandom, type RunRanks } from './stats.js';
import {
  contrastStatistics,
  contrastStatisticsFromHits,
  holm,
  imageHits,
  normalCdf,
  tCdf,
  tQuantile,
  verdictOf,
  type ContrastRow,
  type ImageHits,
} from './verdicts.js';

/** Closed forms: t with 1 df is Cauchy, F(t) = 1/2 + atan(t)/pi; with 2 df F(t) = 1/2 + t / (2 sqrt(2 + t^2)). */
const cdf1 = (t: number) => 0.5 + Math.atan(t) / Math.PI;
const cdf2 = (t: number) => 0.5 + t / (2 * Math.sqrt(2 + t * t));

describe('distributions (against closed forms)', () => {
  it('tCdf matches the 1- and 2-df closed forms and the normal at large df', () => {
    for (const t of [-7, -2.5, -0.3, 0, 0.4, 1.06066, 4.30265, 12.7]) {
      expect(tCdf(t, 1)).toBeCloseTo(cdf1(t), 10);
      expect(tCdf(t, 2)).toBeCloseTo(cdf2(t), 10);
    }
    expect(normalCdf(1.959963985)).toBeCloseTo(0.975, 6);
    expect(tCdf(1.959963985, 1e9)).toBeCloseTo(0.975, 6);
    expect(tCdf(2, 1e6)).toBeCloseTo(normalCdf(2), 5);
  });

  it('tQuantile inverts them: t(0.975, 1) = tan(0.475 pi), t(0.975, 2) = sqrt(2 q^2/(1-q^2)) with q = 0.95, t(0.8, 2)', () => {
    expect(tQuantile(0.975, 1)).toBeCloseTo(Math.tan(0.475 * Math.PI), 8);
    const q2 = (p: number) => {
      const a = 2 * p - 1;
      return Math.sqrt((2 * a * a) / (1 - a * a));
    };
    expect(tQuantile(0.975, 2)).toBeCloseTo(q2(0.975), 8); // 4.302653
    expect(tQuantile(0.8, 2)).toBeCloseTo(q2(0.8), 8); // 1.060660
    expect(tQuantile(0.025, 2)).toBeCloseTo(-q2(0.975), 8);
    expect(tQuantile(0.975, Infinity)).toBeCloseTo(1.959964, 5);
    expect(tQuantile(0.975, 4)).toBeCloseTo(2.776445, 5); // tables
  });

  it('holm: a hand-checked case', () => {
    // sorted 0.01, 0.03, 0.04, 0.2 -> 4*0.01, 3*0.03, max(0.09, 2*0.04), max(0.09, 0.2)
    const adj = holm([0.01, 0.04, 0.03, 0.2]);
    [0.04, 0.09, 0.09, 0.2].forEach((v, i) => expect(adj[i]).toBeCloseTo(v, 12));
    expect(holm([0.6, 0.5])).toEqual([1, 1]);
  });
});

/** A run whose every image reaches the same number of R@1/5/10 hits each way: its RSUM does not move with the images. */
function uniformRun(hits: number, n = 20): RunRanks {
  const rank = [20, 7, 2, 0][hits];
  const r = Array.from({ length: n }, () => rank);
  return { i2t: r, t2i: r, textToImage: r.map((_, i) => i) };
}

describe('contrastStatistics', () => {
  it('with no image variance it is the paired t test over seeds (2 df, closed form)', () => {
    // better RSUM 600, 400, 600 and worse 200, 200, 400 per seed: d = 400, 200, 200
    const better: ContrastRow = {
      label: 'b',
      weight: 1,
      runs: [3, 2, 3].map((h, seed) => ({ seed, ranks: uniformRun(h) })),
    };
    const worse: ContrastRow = {
      label: 'w',
      weight: -1,
      runs: [1, 1, 2].map((h, seed) => ({ seed, ranks: uniformRun(h) })),
    };
    const s = contrastStatistics([better, worse], { replicates: 50 });
    const mean = 800 / 3;
    const se = Math.sqrt(((400 - mean) ** 2 + 2 * (200 - mean) ** 2) / 2 / 3); // 66.67
    expect(s.effect.mean).toBeCloseTo(mean, 9);
    expect(s.seImages).toBe(0);
    expect(s.se).toBeCloseTo(se, 9);
    expect(s.df).toBeCloseTo(2, 9);
    const t = mean / se;
    expect(s.p).toBeCloseTo(2 * (1 - cdf2(t)), 8); // two-sided: 1 - t/sqrt(2+t^2)
    expect(s.p).toBeCloseTo(1 - t / Math.sqrt(2 + t * t), 8);
    expect(s.effect.lo).toBeCloseTo(mean - 4.302652729911275 * se, 6);
    expect(s.mde).toBeCloseTo((4.302652729911275 + 1.0606601717798212) * se, 6);
    expect(s.seeds).toEqual([0, 1, 2]);
  });

  it('pairs by seed: only the seeds every row has are used', () => {
    const a: ContrastRow = {
      label: 'a',
      weight: 1,
      runs: [0, 1, 2, 3].map((seed) => ({ seed, ranks: uniformRun(seed % 2 ? 3 : 2) })),
    };
    const b: ContrastRow = { label: 'b', weight: -1, runs: [1, 2].map((seed) => ({ seed, ranks: uniformRun(1) })) };
    const s = contrastStatistics([a, b], { replicates: 20 });
    expect(s.seeds).toEqual([1, 2]);
    expect(s.effect.mean).toBeCloseTo((200 * 2 + 100 * 2) / 2, 9); // seed 1: 600-200, seed 2: 400-200
  });

  it('with one seed, the image part is the bootstrap variance of a mean over images: 100^2 var(d)/N per direction', () => {
    // one caption per image; per image the contrast in hits d_i in {-1, 0, 1, 2} each way
    const n = 200;
    const rnd = seededRandom(3);
    const hb = Array.from({ length: n }, () => Math.floor(rnd() * 4));
    const hw = Array.from({ length: n }, () => Math.floor(rnd() * 4));
    const run = (h: number[]): RunRanks => {
      const r = h.map((x) => [20, 7, 2, 0][x]);
      return { i2t: r, t2i: r, textToImage: r.map((_, i) => i) };
    };
    const s = contrastStatistics(
      [
        { label: 'b', weight: 1, runs: [{ seed: 0, ranks: run(hb) }] },
        { label: 'w', weight: -1, runs: [{ seed: 0, ranks: run(hw) }] },
      ],
      { replicates: 20000 },
    );
    const d = hb.map((x, i) => 2 * (x - hw[i])); // both directions
    const md = d.reduce((a, b) => a + b, 0) / n;
    const varPop = d.reduce((a, b) => a + (b - md) ** 2, 0) / n;
    expect(s.effect.mean).toBeCloseTo(100 * md, 9);
    expect(s.seImages / (100 * Math.sqrt(varPop / n))).toBeGreaterThan(0.97);
    expect(s.seImages / (100 * Math.sqrt(varPop / n))).toBeLessThan(1.03);
    expect(s.df).toBe(Infinity);
  });
});

/**
 * Simulated designs: images of varying difficulty, each run a seed-level shift of its hit rate (the
 * training randomness), hits per image drawn around both. Under the null the two rows share one
 * distribution.
 */
function simulate(
  rnd: () => number,
  nImages: number,
  seeds: number,
  shift: (row: number) => number,
  seedSd: number,
): ContrastRow<ImageHits>[] {
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  const logit = Array.from({ length: nImages }, () => 2 * gauss() - 1);
  const row = (k: number, weight: number): ContrastRow<ImageHits> => ({
    label: `r${k}`,
    weight,
    runs: Array.from({ length: seeds }, (_, seed) => {
      const u = shift(k) + seedSd * gauss();
      const h: ImageHits = {
        i2t: new Float64Array(nImages),
        valid: new Float64Array(nImages).fill(1),
        t2i: new Float64Array(nImages),
        captions: new Float64Array(nImages).fill(1),
      };
      for (let i = 0; i < nImages; i++) {
        const p = 1 / (1 + Math.exp(-(logit[i] + u)));
        for (let j = 0; j < 3; j++) {
          if (rnd() < p) h.i2t[i]++;
          if (rnd() < p) h.t2i[i]++;
        }
      }
      return { seed, ranks: h };
    }),
  });
  return [row(0, 1), row(1, -1)];
}

describe('simulation checks', () => {
  it('a known-null design rejects at about the nominal 5% (3 seeds, seed and image noise)', () => {
    const rnd = seededRandom(11);
    const sims = 300;
    let rejected = 0;
    let naive = 0;
    for (let k = 0; k < sims; k++) {
      const s = contrastStatisticsFromHits(
        simulate(rnd, 80, 3, () => 0, 0.3),
        { replicates: 100, seed: k + 1 },
      );
      if (s.p < 0.05) rejected++;
      if (Math.abs(s.effect.mean) / s.se > 1.959964) naive++; // the same se read as normal (ignoring the 2 df)
    }
    expect(rejected / sims).toBeGreaterThan(0.015);
    expect(rejected / sims).toBeLessThan(0.1);
    expect(naive).toBeGreaterThan(rejected); // the t correction matters at 3 seeds
  });

  it('an effect of the size of the reported MDE is detected about 80% of the time', () => {
    const rnd = seededRandom(5);
    // a pilot gives the design's MDE; then simulate with a true effect of that size
    const pilot = Array.from({ length: 30 }, (_, k) =>
      contrastStatisticsFromHits(
        simulate(rnd, 80, 5, () => 0, 0.3),
        { replicates: 100, seed: k + 1 },
      ),
    );
    const mde = pilot.reduce((a, s) => a + s.mde, 0) / pilot.length;
    // a logit shift of 0.3 moves RSUM by about 0.3 * dRSUM/dlogit; calibrate the shift to the MDE from its measured effect
    const probe = Array.from(
      { length: 30 },
      (_, k) =>
        contrastStatisticsFromHits(
          simulate(rnd, 80, 5, (r) => (r === 0 ? 0.5 : 0), 0.3),
          { replicates: 50, seed: k + 1 },
        ).effect.mean,
    );
    const perUnit = probe.reduce((a, b) => a + b, 0) / probe.length / 0.5;
    const shift = mde / perUnit;
    let detected = 0;
    const sims = 150;
    for (let k = 0; k < sims; k++)
      if (
        contrastStatisticsFromHits(
          simulate(rnd, 80, 5, (r) => (r === 0 ? shift : 0), 0.3),
          { replicates: 100, seed: k + 1 },
        ).p < 0.05
      )
        detected++;
    expect(detected / sims).toBeGreaterThan(0.65);
    expect(detected / sims).toBeLessThan(0.93);
  });
});

describe('verdictOf', () => {
  it('four verdicts', () => {
    expect(verdictOf({ effect: { mean: 10, lo: 4, hi: 16 }, pHolm: 0.01, mde: 8 }).verdict).toBe('holds');
    expect(verdictOf({ effect: { mean: -10, lo: -16, hi: -4 }, pHolm: 0.01, mde: 8 }).verdict).toBe('does not hold');
    // significant before Holm, not after: not "holds"
    expect(verdictOf({ effect: { mean: 10, lo: 1, hi: 19 }, pHolm: 0.08, mde: 12 }).kind).toBe('inconclusive');
    expect(verdictOf({ effect: { mean: 1, lo: -4, hi: 6 }, pHolm: 0.7, mde: 7.04 })).toEqual({
      kind: 'no effect above',
      verdict: 'no effect above 7.0',
    });
    expect(verdictOf({ effect: { mean: 3, lo: -4, hi: 10 }, pHolm: 0.4, mde: 9 }).verdict).toBe('inconclusive');
  });

  it('imageHits: R@1/5/10 hits per image', () => {
    const h = imageHits({ i2t: [0, 4, -1], t2i: [0, 9, 12, 3], textToImage: [0, 0, 1, 2] });
    expect([...h.i2t]).toEqual([3, 2, 0]);
    expect([...h.valid]).toEqual([1, 1, 0]);
    expect([...h.t2i]).toEqual([4, 0, 2]);
    expect([...h.captions]).toEqual([2, 1, 1]);
  });
});

describe('chanceRsum', () => {
  it('one caption per image: every R@k is k/N both ways', async () => {
    const { chanceRsum } = await import('./stats.js');
    const n = 100;
    expect(
      chanceRsum(
        Array.from({ length: n }, (_, i) => i),
        n,
      ),
    ).toBeCloseTo((2 * 100 * (1 + 5 + 10)) / n, 9);
    // 5 captions per image: i2t R@1 = 5/T
    const t = Array.from({ length: 5 * n }, (_, j) => Math.floor(j / 5));
    const r1 = 5 / (5 * n);
    expect(chanceRsum(t, n)).toBeGreaterThan(100 * (r1 + 1 / n));
  });
});
