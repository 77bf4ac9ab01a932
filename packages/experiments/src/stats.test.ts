import { describe, expect, it } from 'vitest';
import { bootstrapClaim, meanStd, pca, quantile, recallFromRanks, verdict, type RunRanks } from './stats.js';

/** n images with one caption each; image i's and caption i's rank both `rank(i)`. */
function ranks(n: number, rank: (i: number) => number): RunRanks {
  const r = Array.from({ length: n }, (_, i) => rank(i));
  return { i2t: r, t2i: r, textToImage: Array.from({ length: n }, (_, i) => i) };
}

describe('meanStd', () => {
  it('gives the mean and the n-1 standard deviation', () => {
    expect(meanStd([2, 4, 4, 4, 5, 5, 7, 9])).toEqual({ mean: 5, std: Math.sqrt(32 / 7) });
    expect(meanStd([3])).toEqual({ mean: 3, std: 0 });
  });
});

describe('recallFromRanks', () => {
  it('counts hits at 1, 5 and 10 both ways, captions weighted by their image', () => {
    // 4 images; image 3 has no caption (-1); captions: two of image 0, one each of 1 and 2
    const r: RunRanks = { i2t: [0, 4, 12, -1], t2i: [0, 9, 5, 0], textToImage: [0, 0, 1, 2] };
    const m = recallFromRanks(r);
    expect(m.i2t_r1).toBeCloseTo(100 / 3);
    expect(m.i2t_r5).toBeCloseTo(200 / 3);
    expect(m.i2t_r10).toBeCloseTo(200 / 3);
    expect(m.t2i_r1).toBeCloseTo(50);
    expect(m.t2i_r5).toBeCloseTo(50);
    expect(m.t2i_r10).toBeCloseTo(100);
    expect(m.rsum).toBeCloseTo(100 / 3 + 400 / 3 + 200);
    // image 0 drawn twice, image 2 once, image 1 never: its caption and image drop out
    const w = recallFromRanks(r, [2, 0, 1, 0]);
    expect(w.i2t_r1).toBeCloseTo(200 / 3); // image 0 twice (rank 0: hit), image 2 once (rank 12: miss)
    expect(w.i2t_r10).toBeCloseTo(200 / 3);
    expect(w.t2i_r1).toBeCloseTo(60); // captions 0,1 (of image 0) twice each, caption 3 once: hits 2 + 0 + 1 of 5
  });
});

describe('verdict', () => {
  it('holds above 0, does not hold below 0, inconclusive across it', () => {
    expect(verdict([0.5, 3])).toBe('holds');
    expect(verdict([-3, -0.1])).toBe('does not hold');
    expect(verdict([0, 0])).toBe('does not hold');
    expect(verdict([-1, 2])).toBe('inconclusive');
    expect(verdict([0, 2])).toBe('inconclusive');
    expect(verdict([Number.NaN, 1])).toBe('inconclusive');
  });
});

describe('bootstrapClaim', () => {
  it('a row that finds every item first against one that finds none: effect 600 with no spread', () => {
    const good = ranks(50, () => 0);
    const bad = ranks(50, () => 100);
    const b = bootstrapClaim({ better: [[good]], worse: [[bad]] }, { replicates: 200 });
    expect(b.effect).toBe(600);
    expect(b.ci).toEqual([600, 600]);
    expect(verdict(b.ci)).toBe('holds');
    expect(b.resampled).toMatch(/one seed/);
  });

  it('the same runs on both sides: no effect, and the claim does not hold', () => {
    const r = ranks(40, (i) => i % 12);
    const b = bootstrapClaim({ better: [[r]], worse: [[r]] }, { replicates: 200 });
    expect(b.effect).toBe(0);
    expect(b.ci).toEqual([0, 0]);
    expect(verdict(b.ci)).toBe('does not hold');
  });

  it('a small difference on a few test images is inconclusive; the interval contains the effect', () => {
    // 30 images; A finds 2 more of them at rank 0 than B (effect 2/30 * 100 * 2 ways * 3 cut-offs = 40 RSUM)
    const a = ranks(30, (i) => (i < 12 ? 0 : 50));
    const b = ranks(30, (i) => (i < 10 ? 0 : 50));
    const r = bootstrapClaim({ better: [[a]], worse: [[b]] }, { replicates: 500, seed: 3 });
    expect(r.effect).toBeCloseTo(40);
    expect(r.ci[0]).toBeLessThanOrEqual(r.effect);
    expect(r.ci[1]).toBeGreaterThanOrEqual(r.effect);
    // paired: the images both find cancel, only the two differing images move the effect, never below 0
    expect(r.ci[0]).toBeGreaterThanOrEqual(0);
    expect(r.ci[1]).toBeGreaterThan(40);
  });

  it('resamples seeds: a row whose seeds disagree gets a wider interval than the test images alone give', () => {
    const base = ranks(60, (i) => (i < 30 ? 0 : 40));
    const worse = ranks(60, (i) => (i < 20 ? 0 : 40));
    const flaky = ranks(60, (i) => (i < 5 ? 0 : 40)); // one bad seed
    const one = bootstrapClaim({ better: [[base]], worse: [[worse]] }, { replicates: 400, seed: 1 });
    const three = bootstrapClaim(
      { better: [[base, base, flaky]], worse: [[worse, worse, worse]] },
      { replicates: 400, seed: 1 },
    );
    expect(three.resampled).toBe('seeds and test images');
    expect(three.ci[1] - three.ci[0]).toBeGreaterThan(one.ci[1] - one.ci[0]);
    expect(three.effect).toBeCloseTo((2 * 300 + 6 * (5 / 60) * 100 - 3 * 200) / 3, 6);
    expect(verdict(one.ci)).toBe('holds');
    expect(verdict(three.ci)).toBe('inconclusive');
  });

  it('the same seed gives the same interval', () => {
    const a = ranks(25, (i) => i % 7);
    const b = ranks(25, (i) => (i * 3) % 11);
    expect(bootstrapClaim({ better: [[a]], worse: [[b]] }, { seed: 9, replicates: 100 })).toEqual(
      bootstrapClaim({ better: [[a]], worse: [[b]] }, { seed: 9, replicates: 100 }),
    );
  });

  it('refuses runs tested on different splits', () => {
    expect(() => bootstrapClaim({ better: [[ranks(5, () => 0)]], worse: [[ranks(6, () => 0)]] })).toThrow(
      /different splits/,
    );
  });
});

describe('quantile and pca', () => {
  it('interpolates quantiles', () => {
    expect(quantile([0, 10], 0.25)).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5], 0.5)).toBe(3);
  });

  it('finds the direction of largest spread first', () => {
    // points along (1, 1, 0) with a small spread along (0, 0, 1)
    const rows: number[] = [];
    for (let i = -5; i <= 5; i++) rows.push(i, i, 0.1 * (i % 2));
    const { projected, explained } = pca(Float32Array.from(rows), 11, 3, 2);
    expect(explained[0]).toBeGreaterThan(0.99);
    // first coordinate proportional to i * sqrt(2) (up to sign)
    expect(Math.abs(projected[0 * 2])).toBeCloseTo(5 * Math.SQRT2, 2);
    expect(Math.abs(projected[5 * 2])).toBeCloseTo(0, 2);
  });
});
