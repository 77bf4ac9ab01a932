import { existsSync, readFileSync } from 'node:fs';
import { atomicWriteFile, atomicWriteJson, sha256, type Logger } from '@distill/core';
import type { TrainResult } from '@distill/training';
import { recallFromRanks, type RunRanks } from './stats.js';

/**
 * The run store's files are verified, not trusted: every file a report reads back (result.json,
 * ranks.json, latency.json) carries a checksum written with it (`<file>.sha256`, the sha256 of its
 * bytes) and its values are range-checked on read. A file that fails is named, and its run is retrained
 * (result.json) or its evaluation redone (ranks.json, latency.json): it is never reported.
 */

export const RSUM_MAX = 600;

/** Write `<file>.sha256` for the file as it is now. */
export function sealFile(file: string): void {
  atomicWriteFile(`${file}.sha256`, `${sha256(readFileSync(file))}\n`);
}

/** Write JSON and its checksum. */
export function writeSealedJson(file: string, value: unknown): void {
  atomicWriteJson(file, value);
  sealFile(file);
}

/** Why a sealed file cannot be trusted, or undefined when its bytes match the checksum written with it. */
export function checksumProblem(file: string): string | undefined {
  if (!existsSync(file)) return 'missing';
  const seal = `${file}.sha256`;
  if (!existsSync(seal)) return `no checksum (${seal} missing)`;
  const want = readFileSync(seal, 'utf8').trim();
  const got = sha256(readFileSync(file));
  return want === got
    ? undefined
    : `checksum mismatch (the file was changed after it was written: sha256 ${got.slice(0, 12)}..., recorded ${want.slice(0, 12)}...)`;
}

const RECALL_KEYS = ['i2t_r1', 'i2t_r5', 'i2t_r10', 't2i_r1', 't2i_r5', 't2i_r10'] as const;

/** Problems with retrieval figures: each recall in [0, 100], RSUM in [0, 600] and equal to their sum. */
export function metricsProblems(m: unknown, where: string): string[] {
  const o = m as Record<string, unknown> | undefined;
  if (!o || typeof o !== 'object') return [`${where} is missing`];
  const out: string[] = [];
  const num = (k: string) => (typeof o[k] === 'number' && Number.isFinite(o[k]) ? (o[k] as number) : undefined);
  for (const k of RECALL_KEYS) {
    const v = num(k);
    if (v === undefined || v < 0 || v > 100) out.push(`${where}.${k} = ${String(o[k])} (a recall in [0, 100])`);
  }
  const rsum = num('rsum');
  if (rsum === undefined || rsum < 0 || rsum > RSUM_MAX)
    out.push(`${where}.rsum = ${String(o.rsum)} (RSUM lies in [0, ${RSUM_MAX}])`);
  else if (out.length === 0) {
    const sum = RECALL_KEYS.reduce((a, k) => a + (o[k] as number), 0);
    if (Math.abs(sum - rsum) > 1e-3 * Math.max(1, rsum))
      out.push(`${where}.rsum = ${rsum} is not the sum of its six recalls (${sum.toFixed(4)})`);
  }
  return out;
}

/** Range checks of a run's result.json. */
export function resultProblems(r: TrainResult | undefined): string[] {
  if (!r || typeof r !== 'object') return ['not a run result'];
  const out = metricsProblems(r.test, 'test');
  (Array.isArray(r.val) ? r.val : []).forEach((v, i) => out.push(...metricsProblems(v, `val[${i}]`)));
  if (!Number.isInteger(r.steps) || r.steps < 0) out.push(`steps = ${String(r.steps)} (a whole number >= 0)`);
  const total = r.parameters?.total;
  if (typeof total !== 'number' || !Number.isFinite(total) || total <= 0)
    out.push(`parameters.total = ${String(total)} (a positive count)`);
  return out;
}

export type Verified<T> = { ok: true; value: T } | { ok: false; problem: string };

function parse<T>(file: string): Verified<T> {
  try {
    return { ok: true, value: JSON.parse(readFileSync(file, 'utf8')) as T };
  } catch (e) {
    return { ok: false, problem: `not valid JSON (${(e as Error).message.split('\n')[0]})` };
  }
}

/**
 * A run's result.json, verified: its checksum (where `requireSeal`: runs stored before checksums have
 * none, and are only reused as stale runs) and its ranges.
 */
export function readVerifiedResult(file: string, requireSeal = true): Verified<TrainResult> {
  if (!existsSync(file)) return { ok: false, problem: 'missing' };
  const sum = checksumProblem(file);
  if (sum && (requireSeal || existsSync(`${file}.sha256`))) return { ok: false, problem: sum };
  const p = parse<TrainResult>(file);
  if (!p.ok) return p;
  const bad = resultProblems(p.value);
  return bad.length ? { ok: false, problem: `out of range: ${bad.slice(0, 3).join('; ')}` } : p;
}

/** The test split's size, where known: ranks are checked against it. */
export interface SplitSize {
  images: number;
  captions: number;
}

const isIndex = (v: unknown, lo: number, hi: number) =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v < hi;

/** Range checks of per-query ranks: lengths of the split, each rank an index within it, the recorded RSUM equal to the ranks' own. */
export function ranksProblems(r: (RunRanks & { rsum?: number }) | undefined, split?: SplitSize): string[] {
  if (!r || !Array.isArray(r.i2t) || !Array.isArray(r.t2i) || !Array.isArray(r.textToImage))
    return ['not per-query ranks (i2t, t2i, textToImage lists)'];
  const out: string[] = [];
  const nI = r.i2t.length;
  const nT = r.t2i.length;
  if (split && nI !== split.images) out.push(`${nI} image ranks for a test split of ${split.images} images`);
  if (split && nT !== split.captions) out.push(`${nT} caption ranks for a test split of ${split.captions} captions`);
  if (r.textToImage.length !== nT) out.push(`${r.textToImage.length} caption images for ${nT} caption ranks`);
  const first = (xs: ArrayLike<unknown>, ok: (v: unknown) => boolean) =>
    Array.prototype.findIndex.call(xs, (v: unknown) => !ok(v));
  const bi = first(r.i2t, (v) => v === -1 || isIndex(v, 0, nT));
  if (bi >= 0) out.push(`i2t[${bi}] = ${String(r.i2t[bi])} (a rank in [0, ${nT}) or -1)`);
  const bt = first(r.t2i, (v) => isIndex(v, 0, nI));
  if (bt >= 0) out.push(`t2i[${bt}] = ${String(r.t2i[bt])} (a rank in [0, ${nI}))`);
  const bm = first(r.textToImage, (v) => isIndex(v, 0, nI));
  if (bm >= 0) out.push(`textToImage[${bm}] = ${String(r.textToImage[bm])} (an image in [0, ${nI}))`);
  if (out.length === 0 && typeof r.rsum === 'number') {
    const own = recallFromRanks(r).rsum;
    if (Math.abs(own - r.rsum) > 1e-6 * Math.max(1, own))
      out.push(`recorded rsum ${r.rsum} differs from the ranks' own ${own.toFixed(4)}`);
  }
  return out;
}

export function readVerifiedRanks(file: string, split?: SplitSize): Verified<RunRanks & { rsum?: number }> {
  if (!existsSync(file)) return { ok: false, problem: 'missing' };
  const sum = checksumProblem(file);
  if (sum) return { ok: false, problem: sum };
  const p = parse<RunRanks & { rsum?: number }>(file);
  if (!p.ok) return p;
  const bad = ranksProblems(p.value, split);
  return bad.length ? { ok: false, problem: `out of range: ${bad.slice(0, 3).join('; ')}` } : p;
}

/**
 * A run's ranks from <dir>/ranks.json when it is intact, else computed (and written with its checksum);
 * a file that fails its checks is named in a warning and recomputed, never used.
 */
export async function obtainRanks<R extends RunRanks & { rsum?: number }>(
  file: string,
  split: SplitSize | undefined,
  compute: () => Promise<R>,
  log?: Logger,
): Promise<R> {
  if (existsSync(file)) {
    const v = readVerifiedRanks(file, split);
    if (v.ok) return v.value as R;
    log?.warn(`${file}: ${v.problem}; recomputing the run's ranks`);
  }
  const r = await compute();
  const bad = ranksProblems(r, split);
  if (bad.length) throw new Error(`ranks computed for ${file} fail their own checks: ${bad.join('; ')}`);
  writeSealedJson(file, r);
  return r;
}
