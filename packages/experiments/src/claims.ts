import type { TrainConfig } from '@distill/training';
import type { RunOutcome } from './scheduler.js';
import { findingContrast, type ExperimentSpec, type PlannedRow } from './spec.js';
import type { RunRanks } from './stats.js';
import { contrastStatistics, holm, verdictOf, type ClaimStatistics, type VerdictKind } from './verdicts.js';

/** A claim of the paper tested here: its contrast, effect with interval, p (raw and Holm-adjusted within the table), MDE and verdict. */
export interface Finding {
  claim: string;
  /** The claimed-better and -worse rows (specs that name them); else see `contrast`. */
  better?: string[];
  worse?: string[];
  /** The contrast weights by row label (effect = sum of weight x the row's mean test RSUM). */
  contrast: Record<string, number>;
  /** The effect with its 95% interval (RSUM unless `unit` says otherwise). */
  effect: { mean: number; lo: number; hi: number };
  unit?: 'RSUM' | 'cosine';
  /** Two-sided p of "no effect". */
  p: number;
  /** p adjusted by Holm's method over the claims of this table. */
  pHolm: number;
  /** Minimum detectable effect at 80% power (two-sided alpha 0.05) of the design that ran. */
  mde: number;
  se: number;
  /** Degrees of freedom of the interval (Infinity: seeds did not vary, or one seed). */
  df: number;
  /** The seeds the claim paired its rows on. */
  seeds: number[];
  /** `holds`, `does not hold`, `no effect above <mde>` or `inconclusive`. */
  verdict: string;
  verdictKind: VerdictKind;
  resampled: string;
  /** Set when a row of the claim used runs reused stale (--reuse-stale). */
  stale?: boolean;
}

export type RanksOf = (cfg: TrainConfig, dir: string) => Promise<RunRanks>;

/** A claim's statistics from its rows' runs (before the Holm adjustment). */
export async function claimStatistics(
  f: ExperimentSpec['findings'][number],
  rows: PlannedRow[],
  outcomes: Map<string, RunOutcome>,
  ranksOf: RanksOf,
  replicates: number,
): Promise<{ stats: ClaimStatistics; stale: boolean }> {
  const contrast = findingContrast(f);
  let stale = false;
  const crows = await Promise.all(
    [...contrast].map(async ([label, weight]) => {
      const row = rows.find((r) => r.label === label)!;
      return {
        label,
        weight,
        runs: await Promise.all(
          row.runs.map(async (run) => {
            const o = outcomes.get(run.hash)!;
            if (o.status === 'stale') stale = true;
            return { seed: run.seed, ranks: await ranksOf(run.config, o.dir) };
          }),
        ),
      };
    }),
  );
  return { stats: contrastStatistics(crows, { replicates }), stale };
}

/** Finish a table's claims: Holm-adjust their p values together, then give each its verdict. */
export function withVerdicts(items: Omit<Finding, 'pHolm' | 'verdict' | 'verdictKind'>[]): Finding[] {
  const adj = holm(items.map((f) => f.p));
  return items.map((f, i) => {
    const v = verdictOf({ effect: f.effect, pHolm: adj[i], mde: f.mde });
    return { ...f, pHolm: adj[i], verdict: v.verdict, verdictKind: v.kind };
  });
}

/** Every claim of a spec over the rows that ran (Figure 2's extra claim is added by the caller before withVerdicts). */
export async function specClaims(
  spec: ExperimentSpec,
  rows: PlannedRow[],
  outcomes: Map<string, RunOutcome>,
  ranksOf: RanksOf,
  replicates: number,
): Promise<Omit<Finding, 'pHolm' | 'verdict' | 'verdictKind'>[]> {
  const out: Omit<Finding, 'pHolm' | 'verdict' | 'verdictKind'>[] = [];
  for (const f of spec.findings) {
    const { stats, stale } = await claimStatistics(f, rows, outcomes, ranksOf, replicates);
    out.push({
      claim: f.claim,
      ...(f.better ? { better: f.better, worse: f.worse } : {}),
      contrast: Object.fromEntries(findingContrast(f)),
      effect: stats.effect,
      p: stats.p,
      mde: stats.mde,
      se: stats.se,
      df: stats.df,
      seeds: stats.seeds,
      resampled: stats.resampled,
      ...(stale ? { stale } : {}),
    });
  }
  return out;
}

const f1 = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');
const fp = (p: number) => (p < 0.001 ? '<0.001' : p.toFixed(3));

export function findingsMarkdownTable(findings: Finding[]): string {
  if (findings.length === 0) return '';
  return [
    '| claim (paper) | effect | 95% interval | p | p (Holm) | MDE (80% power) | seeds | verdict here |',
    '|---|---:|---|---:|---:|---:|---:|---|',
    ...findings.map((f) => {
      const fmt = (v: number) => (f.unit === 'cosine' ? v.toFixed(3) : f1(v));
      const e = f.effect;
      return `| ${f.claim} | ${e.mean >= 0 ? '+' : ''}${fmt(e.mean)}${f.unit === 'cosine' ? ' cosine' : ''} | [${fmt(e.lo)}, ${fmt(e.hi)}] | ${fp(f.p)} | ${fp(f.pHolm)} | ${fmt(f.mde)} | ${f.seeds.length} | **${f.verdict}**${f.stale ? ' (STALE runs)' : ''} |`;
    }),
  ].join('\n');
}

/** How the claims were tested, for results.md. */
export const CLAIMS_METHOD =
  'Effect: a contrast of row means of test RSUM (claimed-better rows minus the others, unless the claim gives its own weights, or says cosine), with rows paired by seed ' +
  '(only the seeds every row of the claim has). Its standard error adds the spread of the per-seed contrast over seeds (read as a t statistic with n-1 degrees of freedom: ' +
  'resampling 3-5 seeds gives intervals far too narrow) and the variance over joint bootstrap resamples of the test images (the same draw for every run); ' +
  '95% interval effect ± t·se (Welch-Satterthwaite degrees of freedom), p the two-sided test of no effect, p (Holm) adjusted over the claims of this table, ' +
  'MDE the smallest effect this design detects with 80% power at two-sided 0.05: (t(0.975) + t(0.8))·se. ' +
  'Verdicts: **holds** (Holm p < 0.05, effect > 0), **does not hold** (Holm p < 0.05, effect < 0), **no effect above X** (not significant, and the interval lies within ±X, X the MDE), **inconclusive** (otherwise: too little data to tell).';
