/**
 * Search quality as a person meets it: a set of everyday queries, each with a pattern that the captions
 * of a right result contain; hit@K = the share of queries with a right result among the top K.
 *
 * Query file (TSV): one query per line, `query<TAB>pattern`; blank lines and lines starting with `#`
 * are skipped. The pattern is a JavaScript regular expression matched case-insensitively against each
 * caption of a result. A pattern of plain words (letters, digits, spaces, `-`, `'`, alternatives with
 * `|`) matches whole words only: `car` finds "car" and "police car" but not "card"; anything else
 * (`graduat\w*`, `\bsun\b.*cloud`) is used as written.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DistillError } from '@distill/core';

export interface QueryCase {
  query: string;
  pattern: string;
  /** 1-based line in the file. */
  line: number;
  regex: RegExp;
}

/** The regular expression of a pattern (see the module comment). */
export function patternRegex(pattern: string): RegExp {
  if (/^[\p{L}\p{N} '|-]+$/u.test(pattern)) {
    const alts = pattern
      .split('|')
      .map((a) => a.trim())
      .filter(Boolean)
      .map((a) => a.replace(/ +/g, '\\s+'));
    return new RegExp(`(?<![\\p{L}\\p{N}])(?:${alts.join('|')})(?![\\p{L}\\p{N}])`, 'iu');
  }
  return new RegExp(pattern, 'iu');
}

/** Parse a query file's text; `source` names it in errors. */
export function parseQueries(text: string, source = 'queries'): QueryCase[] {
  const out: QueryCase[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const tab = raw.indexOf('\t');
    const query = tab < 0 ? '' : raw.slice(0, tab).trim();
    const pattern = tab < 0 ? '' : raw.slice(tab + 1).trim();
    if (!query || !pattern)
      throw new DistillError(`${source}:${i + 1}: expected "query<TAB>pattern", got ${JSON.stringify(raw)}.`, 2);
    let regex: RegExp;
    try {
      regex = patternRegex(pattern);
    } catch (e) {
      throw new DistillError(
        `${source}:${i + 1}: the pattern ${JSON.stringify(pattern)} is not a valid regular expression (${(e as Error).message}).`,
        2,
      );
    }
    out.push({ query, pattern, line: i + 1, regex });
  });
  if (out.length === 0) throw new DistillError(`${source} holds no queries (lines of "query<TAB>pattern").`, 2);
  return out;
}

/** The query sets shipped with distill (packages/eval/assets/queries). */
export const QUERY_SETS = ['emoji', 'glyphs'] as const;

/** Path of a shipped query set. */
export function querySetPath(name: (typeof QUERY_SETS)[number]): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', 'assets', 'queries', `${name}.tsv`);
}

/** Read a query file, or a shipped set by name (`emoji`, `glyphs`). */
export function readQueries(fileOrSet: string): QueryCase[] {
  const path =
    (QUERY_SETS as readonly string[]).includes(fileOrSet) && !existsSync(fileOrSet)
      ? querySetPath(fileOrSet as 'emoji')
      : fileOrSet;
  if (!existsSync(path))
    throw new DistillError(
      `Query file not found: ${fileOrSet} (a TSV of "query<TAB>pattern" lines, or a shipped set: ${QUERY_SETS.join(', ')}).`,
      2,
    );
  return parseQueries(readFileSync(path, 'utf8'), path);
}

/** Whether any caption matches. */
export function captionsMatch(regex: RegExp, captions: readonly string[]): boolean {
  return captions.some((c) => regex.test(c));
}

/** The cases whose pattern matches none of `captions` (no result could ever be right). */
export function unmatchableQueries(cases: readonly QueryCase[], captions: readonly string[]): QueryCase[] {
  return cases.filter((c) => !captionsMatch(c.regex, captions));
}

/** One ranked result as the evaluation needs it. */
export interface RankedResult {
  id: string;
  score: number;
  captions: string[];
}

export interface QueryOutcome {
  query: string;
  pattern: string;
  /** 1-based rank of the first right result within the searched depth; null: none. */
  rank: number | null;
  /** The top results (id, score, captions, right or not). */
  top: (RankedResult & { right: boolean })[];
}

export interface QueryEvaluation {
  queries: number;
  /** Results fetched per query (max(k, 10)). */
  depth: number;
  k: number;
  'hit@1': number;
  'hit@5': number;
  'hit@10': number;
  /** hit@k for the asked k. */
  hitAtK: number;
  /** Mean reciprocal rank of the first right result (0 when none within the depth). */
  mrr: number;
  /**
   * What a random ranking of the collection would score (given `collection`): hit@1/5/10 averaged over
   * the queries, from each query's number of right items among the collection's.
   */
  chance?: { 'hit@1': number; 'hit@5': number; 'hit@10': number };
  /** Queries with no right result in the top k. */
  misses: QueryOutcome[];
  outcomes: QueryOutcome[];
}

/** The chance that a random ranking of `n` items, `m` of them right, puts a right one in its top `k`. */
export function chanceHitAt(n: number, m: number, k: number): number {
  if (m <= 0 || n <= 0) return 0;
  let miss = 1;
  for (let i = 0; i < Math.min(k, n); i++) miss *= Math.max(0, n - m - i) / (n - i);
  return 1 - miss;
}

/**
 * Run every query through `search` (the top `depth` results, best first) and score where the first
 * result whose captions match the pattern lands. With `collection` (the captions of every searched
 * item), the chance level is given too.
 */
export async function evaluateQueries(
  cases: readonly QueryCase[],
  search: (query: string, depth: number) => Promise<RankedResult[]>,
  opts: { k?: number; collection?: readonly (readonly string[])[] } = {},
): Promise<QueryEvaluation> {
  const k = opts.k ?? 10;
  if (!Number.isInteger(k) || k < 1) throw new DistillError(`k must be a positive integer, got ${k}.`, 2);
  const depth = Math.max(k, 10);
  const outcomes: QueryOutcome[] = [];
  for (const c of cases) {
    const results = (await search(c.query, depth)).slice(0, depth);
    const top = results.map((r) => ({ ...r, right: captionsMatch(c.regex, r.captions) }));
    const first = top.findIndex((r) => r.right);
    outcomes.push({ query: c.query, pattern: c.pattern, rank: first < 0 ? null : first + 1, top });
  }
  const n = outcomes.length;
  const hit = (K: number) => (n ? outcomes.filter((o) => o.rank !== null && o.rank <= K).length / n : 0);
  let chance: QueryEvaluation['chance'];
  const coll = opts.collection;
  if (coll && n) {
    const rights = cases.map((c) => coll.filter((caps) => captionsMatch(c.regex, caps)).length);
    const at = (K: number) => rights.reduce((s, m) => s + chanceHitAt(coll.length, m, K), 0) / n;
    chance = { 'hit@1': at(1), 'hit@5': at(5), 'hit@10': at(10) };
  }
  return {
    queries: n,
    depth,
    k,
    'hit@1': hit(1),
    'hit@5': hit(5),
    'hit@10': hit(10),
    hitAtK: hit(k),
    mrr: n ? outcomes.reduce((s, o) => s + (o.rank ? 1 / o.rank : 0), 0) / n : 0,
    ...(chance ? { chance } : {}),
    misses: outcomes.filter((o) => o.rank === null || o.rank > k),
    outcomes,
  };
}

/** The evaluation as a person reads it: the hit rates, then each miss with its top results' first captions. */
export function formatQueryEvaluation(e: QueryEvaluation, opts: { show?: number } = {}): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lines = [
    `${e.queries} queries: hit@1 ${pct(e['hit@1'])}, hit@5 ${pct(e['hit@5'])}, hit@10 ${pct(e['hit@10'])}${[1, 5, 10].includes(e.k) ? '' : `, hit@${e.k} ${pct(e.hitAtK)}`}, MRR ${e.mrr.toFixed(3)}`,
  ];
  if (e.chance)
    lines.push(
      `a random ranking: hit@1 ${pct(e.chance['hit@1'])}, hit@5 ${pct(e.chance['hit@5'])}, hit@10 ${pct(e.chance['hit@10'])}`,
    );
  if (e.misses.length) lines.push(`misses (no right result in the top ${e.k}): ${e.misses.length}`);
  for (const m of e.misses) {
    lines.push(
      `  ${JSON.stringify(m.query)} (pattern ${m.pattern})${m.rank ? `: first right result at rank ${m.rank}` : ''}`,
    );
    for (const [i, r] of m.top.slice(0, opts.show ?? 3).entries())
      lines.push(`    ${i + 1}. ${r.score.toFixed(3)} ${r.captions.slice(0, 2).join(' | ')}`);
  }
  return lines.join('\n') + '\n';
}
