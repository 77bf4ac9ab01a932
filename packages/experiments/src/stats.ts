import type { RetrievalMetrics } from '@distill/core';

/**
 * Statistics of an experiment: mean and standard deviation over seeds, Recall@K and RSUM recomputed
 * from per-query ranks under a resampling of the test images, a paired bootstrap over seeds and test
 * images, and the verdict of a paper claim from its interval.
 */

/** Mean and sample standard deviation (n-1; 0 for a single value). */
export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  if (xs.length === 0) return { mean: Number.NaN, std: Number.NaN };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  if (xs.length === 1) return { mean, std: 0 };
  const v = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1);
  return { mean, std: Math.sqrt(v) };
}

/** A small seeded generator (mulberry32): the same seed gives the same bootstrap. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Linear-interpolated quantile of sorted values (q in [0, 1]). */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * The test-split ranks of one trained run: 0-based i2t rank per image (-1 = no caption), 0-based
 * t2i rank per caption, and each caption's image (as @distill/eval's computeRecall returns them).
 */
export interface RunRanks {
  i2t: ArrayLike<number>;
  t2i: ArrayLike<number>;
  textToImage: ArrayLike<number>;
}

/** The recall figures of core's RetrievalMetrics (without the rank statistics). */
export type RecallFigures = Pick<
  RetrievalMetrics,
  'i2t_r1' | 'i2t_r5' | 'i2t_r10' | 't2i_r1' | 't2i_r5' | 't2i_r10' | 'rsum'
>;

/**
 * Recall@1/5/10 both ways (percent) and RSUM from ranks, each test image counted `weight[i]` times
 * (a bootstrap resample; all ones = the plain figures). A caption counts as often as its image.
 * Ranks stay those against the whole gallery: the resample is over queries.
 */
export function recallFromRanks(r: RunRanks, weight?: ArrayLike<number>): RecallFigures {
  const w = (i: number) => (weight ? weight[i] : 1);
  const i2t = [0, 0, 0];
  let nI = 0;
  for (let i = 0; i < r.i2t.length; i++) {
    const rank = r.i2t[i];
    if (rank < 0) continue;
    const c = w(i);
    nI += c;
    if (rank < 1) i2t[0] += c;
    if (rank < 5) i2t[1] += c;
    if (rank < 10) i2t[2] += c;
  }
  const t2i = [0, 0, 0];
  let nT = 0;
  for (let j = 0; j < r.t2i.length; j++) {
    const c = w(r.textToImage[j]);
    nT += c;
    const rank = r.t2i[j];
    if (rank < 1) t2i[0] += c;
    if (rank < 5) t2i[1] += c;
    if (rank < 10) t2i[2] += c;
  }
  const pct = (x: number, n: number) => (n > 0 ? (100 * x) / n : 0);
  const out = {
    i2t_r1: pct(i2t[0], nI),
    i2t_r5: pct(i2t[1], nI),
    i2t_r10: pct(i2t[2], nI),
    t2i_r1: pct(t2i[0], nT),
    t2i_r5: pct(t2i[1], nT),
    t2i_r10: pct(t2i[2], nT),
    rsum: 0,
  };
  out.rsum = out.i2t_r1 + out.i2t_r5 + out.i2t_r10 + out.t2i_r1 + out.t2i_r5 + out.t2i_r10;
  return out;
}

export type Verdict = 'holds' | 'does not hold' | 'inconclusive';

/**
 * A claim "better > worse" with its 95% interval of the effect (better minus worse): it holds when the
 * whole interval is above 0, does not hold when the whole interval is at or below 0 (the opposite is
 * shown, or the effect is exactly nil everywhere), and is inconclusive when the interval straddles 0.
 */
export function verdict(ci: readonly [number, number]): Verdict {
  const [lo, hi] = ci;
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return 'inconclusive';
  if (lo > 0) return 'holds';
  if (hi < 0 || (lo === 0 && hi === 0)) return 'does not hold';
  return 'inconclusive';
}

/** The runs (one per seed) of each row a claim compares. Every run has ranks over the same test split. */
export interface ClaimInput {
  better: RunRanks[][];
  worse: RunRanks[][];
}

export interface BootstrapResult {
  /** The effect on the data as it is: mean RSUM of the better rows minus that of the worse rows. */
  effect: number;
  /** Percentile 95% interval. */
  ci: [number, number];
  /** What was resampled: seeds only where a row has more than one. */
  resampled: string;
  replicates: number;
}

function rowRsum(runs: RunRanks[], weight: ArrayLike<number> | undefined, pick: number[]): number {
  let s = 0;
  for (const k of pick) s += recallFromRanks(runs[k], weight).rsum;
  return s / pick.length;
}

/**
 * Paired bootstrap of a claim's effect: each replicate draws the test images with replacement (the same
 * draw for every run: they share the test split) and, per row, its seeds with replacement; the effect is
 * mean(RSUM of the better rows) - mean(RSUM of the worse rows).
 */
export function bootstrapClaim(input: ClaimInput, opts: { replicates?: number; seed?: number } = {}): BootstrapResult {
  const rows = [...input.better, ...input.worse];
  if (input.better.length === 0 || input.worse.length === 0 || rows.some((r) => r.length === 0)) {
    throw new Error('bootstrapClaim: every row needs at least one run');
  }
  const nImages = rows[0][0].i2t.length;
  for (const r of rows)
    for (const run of r)
      if (run.i2t.length !== nImages) throw new Error('bootstrapClaim: runs were tested on different splits');
  const B = opts.replicates ?? 1000;
  const rnd = seededRandom(opts.seed ?? 12345);
  const all = (r: RunRanks[]) => r.map((_, k) => k);
  const groupMean = (g: RunRanks[][], w: ArrayLike<number> | undefined, picks: number[][]) =>
    g.reduce((a, r, i) => a + rowRsum(r, w, picks[i]), 0) / g.length;
  const effect =
    groupMean(input.better, undefined, input.better.map(all)) - groupMean(input.worse, undefined, input.worse.map(all));
  const effects: number[] = [];
  const w = new Float64Array(nImages);
  for (let b = 0; b < B; b++) {
    w.fill(0);
    for (let i = 0; i < nImages; i++) w[Math.floor(rnd() * nImages)]++;
    const draw = (r: RunRanks[]) => r.map(() => Math.floor(rnd() * r.length));
    const e = groupMean(input.better, w, input.better.map(draw)) - groupMean(input.worse, w, input.worse.map(draw));
    effects.push(e);
  }
  effects.sort((a, b) => a - b);
  const seeds = rows.some((r) => r.length > 1);
  return {
    effect,
    ci: [quantile(effects, 0.025), quantile(effects, 0.975)],
    resampled: seeds ? 'seeds and test images' : 'test images (one seed per row: seed variation not covered)',
    replicates: B,
  };
}

/** Top principal components of the rows of X [n, d] (power iteration with deflation, centred). */
export function pca(
  x: Float32Array,
  n: number,
  d: number,
  k = 2,
  seed = 1,
): { projected: Float64Array; explained: number[] } {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j] / n;
  const c = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) c[i * d + j] = x[i * d + j] - mean[j];
  let total = 0;
  for (let i = 0; i < c.length; i++) total += c[i] * c[i];
  const rnd = seededRandom(seed);
  const comps: Float64Array[] = [];
  const explained: number[] = [];
  for (let m = 0; m < k; m++) {
    let v = Float64Array.from({ length: d }, () => rnd() - 0.5);
    let lambda = 0;
    for (let it = 0; it < 200; it++) {
      // u = C^T C v, minus the earlier components
      const cv = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += c[i * d + j] * v[j];
        cv[i] = s;
      }
      const u = new Float64Array(d);
      for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) u[j] += c[i * d + j] * cv[i];
      for (const p of comps) {
        let dot = 0;
        for (let j = 0; j < d; j++) dot += u[j] * p[j];
        for (let j = 0; j < d; j++) u[j] -= dot * p[j];
      }
      let norm = 0;
      for (let j = 0; j < d; j++) norm += u[j] * u[j];
      norm = Math.sqrt(norm);
      if (norm === 0) break;
      lambda = norm;
      v = u.map((t) => t / norm);
    }
    comps.push(v);
    explained.push(total > 0 ? lambda / total : 0);
  }
  const projected = new Float64Array(n * k);
  for (let i = 0; i < n; i++)
    for (let m = 0; m < k; m++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += c[i * d + j] * comps[m][j];
      projected[i * k + m] = s;
    }
  return { projected, explained };
}

/**
 * The RSUM of random rankings on a split with this structure (each caption's image, and the number of
 * images): i2t R@k = 1 - prod_{j<k} (T - c_i - j) / (T - j) for an image with c_i of the T captions,
 * averaged over the images that have captions; t2i R@k = k / N.
 */
export function chanceRsum(textToImage: ArrayLike<number>, nImages: number): number {
  const T = textToImage.length;
  const caps = new Float64Array(nImages);
  for (let j = 0; j < T; j++) caps[textToImage[j]]++;
  let total = 0;
  for (const k of [1, 5, 10]) {
    let s = 0,
      n = 0;
    for (let i = 0; i < nImages; i++) {
      if (caps[i] === 0) continue;
      let miss = 1;
      for (let j = 0; j < Math.min(k, T); j++) miss *= Math.max(0, T - caps[i] - j) / (T - j);
      s += 1 - miss;
      n++;
    }
    total += 100 * (n ? s / n : 0) + 100 * Math.min(1, k / nImages);
  }
  return total;
}
