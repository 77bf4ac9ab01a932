import { seededRandom, type RunRanks } from './stats.js';

/**
 * Claims as paired contrasts, with a p value, a Holm adjustment within a table, the minimum detectable
 * effect of the design that ran, and one of four verdicts.
 *
 * A claim is a linear contrast of rows: effect = sum_r c_r * (mean test RSUM of row r), e.g. c = +1 for
 * the claimed-better row and -1 for the other, +1/2 and -1/2 for two rows each side, or the 2x2
 * interaction (+1, -1, -1, +1). Rows are paired by seed: only the seeds every row of the claim has are
 * used, and per seed s the contrast d_s = sum_r c_r RSUM(r, s) is formed from runs that share s.
 *
 * The effect's variance has two parts:
 *  - seeds (training randomness): var(d_s) / n over the n paired seeds. With 3-5 seeds a bootstrap that
 *    resamples seeds gives an interval far too narrow (with 3 seeds about 2.7x: it ignores the n-1
 *    degrees of freedom); this part is therefore taken as a t statistic with n-1 degrees of freedom.
 *  - test images (the test split is one sample of images): the variance of the seed-mean contrast over
 *    bootstrap resamples of the test images, the same draw for every run (all runs share the split; a
 *    caption counts as often as its image).
 * se = sqrt(both); degrees of freedom by Welch-Satterthwaite (the image part counts as known); the 95%
 * interval is effect +- t(0.975, df) se, p the two-sided t test of effect = 0, and the minimum detectable
 * effect at 80% power (two-sided alpha 0.05) (t(0.975, df) + t(0.8, df)) se.
 */

// ---------- distributions (no dependencies) ----------

function logGamma(x: number): number {
  // Lanczos approximation (g = 7, n = 9), |error| < 1e-13 for x > 0
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz). */
function betacf(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 500; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** Regularized incomplete beta I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2) ? (front * betacf(a, b, x)) / a : 1 - (front * betacf(b, a, 1 - x)) / b;
}

/** Standard normal CDF (erfc by its continued-fraction-free rational approximation, |error| < 1.2e-7 relative). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * x);
  const erfc =
    t *
    Math.exp(
      -x * x -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return z >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/** Student t CDF with `df` degrees of freedom (df = Infinity: the normal). */
export function tCdf(t: number, df: number): number {
  if (!Number.isFinite(df) || df > 1e7) return normalCdf(t);
  const x = df / (df + t * t);
  const tail = 0.5 * incompleteBeta(x, df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

/** The q-quantile of Student t with `df` degrees of freedom (bisection on the CDF, 1e-12). */
export function tQuantile(q: number, df: number): number {
  if (q <= 0) return -Infinity;
  if (q >= 1) return Infinity;
  if (q === 0.5) return 0;
  let lo = -1;
  let hi = 1;
  while (tCdf(lo, df) > q) lo *= 2;
  while (tCdf(hi, df) < q) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12 * Math.max(1, Math.abs(lo)); i++) {
    const mid = (lo + hi) / 2;
    if (tCdf(mid, df) < q) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Holm's step-down adjustment of p values (same order as given). */
export function holm(ps: readonly number[]): number[] {
  const m = ps.length;
  const order = ps.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0]);
  const out = new Array<number>(m);
  let run = 0;
  order.forEach(([p, i], k) => {
    run = Math.max(run, Math.min(1, (m - k) * p));
    out[i] = run;
  });
  return out;
}

// ---------- per-image form of a run's ranks ----------

/**
 * A run's test ranks reduced per image: RSUM under any reweighting w of the images is
 * 100 sum(w i2t)/sum(w valid) + 100 sum(w t2i)/sum(w captions).
 */
export interface ImageHits {
  /** Per image: how many of R@1, R@5, R@10 its own caption reaches (0-3). */
  i2t: Float64Array;
  /** 1 where the image has a caption (an i2t query), else 0. */
  valid: Float64Array;
  /** Per image: the sum over its captions of how many of R@1/5/10 each reaches. */
  t2i: Float64Array;
  /** Per image: its number of captions. */
  captions: Float64Array;
}

export function imageHits(r: RunRanks): ImageHits {
  const n = r.i2t.length;
  const h = {
    i2t: new Float64Array(n),
    valid: new Float64Array(n),
    t2i: new Float64Array(n),
    captions: new Float64Array(n),
  };
  const hits = (rank: number) => (rank < 1 ? 1 : 0) + (rank < 5 ? 1 : 0) + (rank < 10 ? 1 : 0);
  for (let i = 0; i < n; i++) {
    const rank = r.i2t[i];
    if (rank < 0) continue;
    h.valid[i] = 1;
    h.i2t[i] = hits(rank);
  }
  for (let j = 0; j < r.t2i.length; j++) {
    const img = r.textToImage[j];
    h.captions[img] += 1;
    h.t2i[img] += hits(r.t2i[j]);
  }
  return h;
}

function rsumOf(h: ImageHits, w?: Float64Array): number {
  let a = 0,
    v = 0,
    b = 0,
    c = 0;
  const n = h.i2t.length;
  for (let i = 0; i < n; i++) {
    const k = w ? w[i] : 1;
    if (k === 0) continue;
    a += k * h.i2t[i];
    v += k * h.valid[i];
    b += k * h.t2i[i];
    c += k * h.captions[i];
  }
  return (v > 0 ? (100 * a) / v : 0) + (c > 0 ? (100 * b) / c : 0);
}

// ---------- claims ----------

/** One row of a claim: its contrast weight and its runs by seed. */
export interface ContrastRow<R = RunRanks> {
  label: string;
  weight: number;
  runs: { seed: number; ranks: R }[];
}

export interface ClaimStatistics {
  effect: { mean: number; lo: number; hi: number };
  p: number;
  /** Standard error of the effect and its parts. */
  se: number;
  seSeeds: number;
  seImages: number;
  df: number;
  /** Minimum detectable effect at 80% power, two-sided alpha 0.05, for this design (its se and df). */
  mde: number;
  /** The seeds every row of the claim had (the pairing). */
  seeds: number[];
  resampled: string;
}

export interface ClaimOptions {
  /** Bootstrap replicates over test images (default 1000). */
  replicates?: number;
  seed?: number;
  alpha?: number;
  power?: number;
}

/** The seeds every row has. */
export function pairedSeeds(rows: { runs: { seed: number }[] }[]): number[] {
  const sets = rows.map((r) => new Set(r.runs.map((x) => x.seed)));
  return [...sets[0]].filter((s) => sets.every((x) => x.has(s))).sort((a, b) => a - b);
}

/** Statistics of a claim from per-image hits (ranks reduced by imageHits); see the module comment. */
export function contrastStatisticsFromHits(rows: ContrastRow<ImageHits>[], opts: ClaimOptions = {}): ClaimStatistics {
  if (rows.length === 0 || rows.some((r) => r.runs.length === 0))
    throw new Error('a claim needs at least one run in every row');
  const seeds = pairedSeeds(rows);
  if (seeds.length === 0)
    throw new Error(
      `the rows of a claim share no seed (${rows.map((r) => `${r.label}: ${r.runs.map((x) => x.seed).join(',')}`).join('; ')})`,
    );
  const nImages = rows[0].runs[0].ranks.i2t.length;
  for (const r of rows)
    for (const x of r.runs)
      if (x.ranks.i2t.length !== nImages)
        throw new Error(
          `runs of '${r.label}' were tested on another split (${x.ranks.i2t.length} images, not ${nImages})`,
        );
  const cells = rows.map((r) => seeds.map((s) => r.runs.find((x) => x.seed === s)!.ranks));
  const n = seeds.length;
  const contrastAt = (s: number, w?: Float64Array) =>
    rows.reduce((a, r, k) => a + r.weight * rsumOf(cells[k][s], w), 0);
  const d = seeds.map((_, s) => contrastAt(s));
  const mean = d.reduce((a, b) => a + b, 0) / n;
  const varSeeds = n > 1 ? d.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) / n : 0;
  // test images: the seed-mean contrast under joint resamples of the images
  const B = opts.replicates ?? 1000;
  const rnd = seededRandom(opts.seed ?? 12345);
  const w = new Float64Array(nImages);
  const reps = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    w.fill(0);
    for (let i = 0; i < nImages; i++) w[Math.floor(rnd() * nImages)]++;
    let e = 0;
    for (let s = 0; s < n; s++) e += contrastAt(s, w);
    reps[b] = e / n;
  }
  const repMean = reps.reduce((a, b) => a + b, 0) / Math.max(1, B);
  // two passes, and 0 below rounding: identical replicates (no image variation) give exactly 0
  let varImages = B > 1 ? reps.reduce((a, b) => a + (b - repMean) ** 2, 0) / (B - 1) : 0;
  if (varImages < 1e-20 * Math.max(1, repMean * repMean)) varImages = 0;
  const se = Math.sqrt(varSeeds + varImages);
  const df = n > 1 && varSeeds > 0 ? Math.min(1e8, (n - 1) * ((varSeeds + varImages) / varSeeds) ** 2) : Infinity;
  const alpha = opts.alpha ?? 0.05;
  const tc = tQuantile(1 - alpha / 2, df);
  const p = se > 0 ? 2 * (1 - tCdf(Math.abs(mean) / se, df)) : mean === 0 ? 1 : 0;
  return {
    effect: { mean, lo: mean - tc * se, hi: mean + tc * se },
    p: Math.min(1, Math.max(0, p)),
    se,
    seSeeds: Math.sqrt(varSeeds),
    seImages: Math.sqrt(varImages),
    df,
    mde: (tc + tQuantile(opts.power ?? 0.8, df)) * se,
    seeds,
    resampled:
      n > 1
        ? `${n} seeds paired across rows (t, ${n - 1} df) and test images (${B} joint bootstrap resamples)`
        : `test images only (${B} bootstrap resamples; one seed: seed variation not covered)`,
  };
}

/** Statistics of a claim from its runs' per-query ranks. */
export function contrastStatistics(rows: ContrastRow[], opts: ClaimOptions = {}): ClaimStatistics {
  return contrastStatisticsFromHits(
    rows.map((r) => ({ ...r, runs: r.runs.map((x) => ({ seed: x.seed, ranks: imageHits(x.ranks) })) })),
    opts,
  );
}

/** Statistics of an effect from bootstrap replicates of it alone (no seeds; e.g. Figure 2's cosine). */
export function statisticsFromReplicates(
  effect: number,
  replicates: readonly number[],
  opts: { alpha?: number; power?: number } = {},
): Omit<ClaimStatistics, 'seeds'> {
  const B = replicates.length;
  const m = replicates.reduce((a, b) => a + b, 0) / B;
  const se = Math.sqrt(replicates.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, B - 1));
  const z = tQuantile(1 - (opts.alpha ?? 0.05) / 2, Infinity);
  const p = se > 0 ? 2 * (1 - normalCdf(Math.abs(effect) / se)) : effect === 0 ? 1 : 0;
  return {
    effect: { mean: effect, lo: effect - z * se, hi: effect + z * se },
    p,
    se,
    seSeeds: 0,
    seImages: se,
    df: Infinity,
    mde: (z + tQuantile(opts.power ?? 0.8, Infinity)) * se,
    resampled: `test images only (${B} bootstrap resamples)`,
  };
}

// ---------- verdicts ----------

export type VerdictKind = 'holds' | 'does not hold' | 'no effect above' | 'inconclusive';

/**
 * The verdict of a claim (effect > 0 claimed) at family-wise level alpha within its table:
 * - `holds`: Holm-adjusted p < alpha and the effect is positive;
 * - `does not hold`: Holm-adjusted p < alpha and the effect is negative (the opposite is shown);
 * - `no effect above <mde>`: not significant, and the 95% interval lies within (-mde, +mde): every
 *   effect as large as the design could detect is excluded;
 * - `inconclusive`: otherwise (too little data to tell "no effect" from "an effect we cannot see").
 */
export function verdictOf(
  s: { effect: { mean: number; lo: number; hi: number }; pHolm: number; mde: number },
  alpha = 0.05,
): { kind: VerdictKind; verdict: string } {
  const { mean, lo, hi } = s.effect;
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || !Number.isFinite(s.pHolm))
    return { kind: 'inconclusive', verdict: 'inconclusive' };
  if (s.pHolm < alpha)
    return mean > 0 ? { kind: 'holds', verdict: 'holds' } : { kind: 'does not hold', verdict: 'does not hold' };
  if (Number.isFinite(s.mde) && lo > -s.mde && hi < s.mde)
    return { kind: 'no effect above', verdict: `no effect above ${fmtMde(s.mde)}` };
  return { kind: 'inconclusive', verdict: 'inconclusive' };
}

const fmtMde = (v: number) => (Math.abs(v) >= 1 ? v.toFixed(1) : v.toPrecision(2));

/** Whether a claim's verdict is settled (`--seeds auto` stops adding seeds to its rows). */
export const decided = (k: VerdictKind) => k !== 'inconclusive';
