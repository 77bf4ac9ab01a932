import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  chanceHitAt,
  evaluateQueries,
  formatQueryEvaluation,
  parseQueries,
  patternRegex,
  QUERY_SETS,
  readQueries,
  unmatchableQueries,
  type RankedResult,
} from './queries.js';

describe('query patterns', () => {
  it('matches plain words as whole words, case-insensitively', () => {
    const re = patternRegex('car|red heart');
    expect(re.test('Police CAR')).toBe(true);
    expect(re.test('a red  heart')).toBe(true);
    expect(re.test('card')).toBe(false);
    expect(re.test('scar')).toBe(false);
    expect(re.test('red hearts')).toBe(false);
    expect(patternRegex('t-shirt').test('t-shirt emoji')).toBe(true);
    expect(patternRegex('woman').test('superwoman')).toBe(false);
    expect(patternRegex('woman: bald').test('superwoman: bald')).toBe(true); // ':' makes it a regex as written (no word bounds)
  });

  it('uses any other pattern as a regular expression', () => {
    expect(patternRegex('graduat\\w*').test('graduation cap')).toBe(true);
    expect(patternRegex('^sun').test('a sun')).toBe(false);
  });
});

describe('parseQueries', () => {
  it('reads query<TAB>pattern lines, skipping blanks and # comments', () => {
    const c = parseQueries('# a comment\n\nred heart\theart\r\ncat\tcat|kitten\n');
    expect(c.map((x) => [x.query, x.pattern, x.line])).toEqual([
      ['red heart', 'heart', 3],
      ['cat', 'cat|kitten', 4],
    ]);
  });

  it('says which line is wrong', () => {
    expect(() => parseQueries('cat\tcat\nno tab here\n', 'q.tsv')).toThrow(/q\.tsv:2: expected "query<TAB>pattern"/);
    expect(() => parseQueries('x\t(unclosed\n', 'q.tsv')).toThrow(
      /q\.tsv:1: the pattern "\(unclosed" is not a valid regular expression/,
    );
    expect(() => parseQueries('# only a comment\n', 'q.tsv')).toThrow(/holds no queries/);
  });
});

describe('evaluateQueries', () => {
  // results of each query, best first: captions only matter
  const ranked: Record<string, string[][]> = {
    'red heart': [['red heart'], ['cat']],
    cat: [['dog'], ['car'], ['cat face']],
    dog: [['a'], ['b'], ['c'], ['d'], ['e'], ['f'], ['dog'], ['h'], ['i'], ['j'], ['k']],
    sun: [['moon'], ['cloud']],
  };
  const search = async (q: string, depth: number): Promise<RankedResult[]> =>
    ranked[q].slice(0, depth).map((captions, i) => ({ id: `${q}-${i}`, score: 1 - i / 10, captions }));
  // parsed inside each test: a throw while the file is collected fails no test (StrykerJS counts it a survivor)
  let cases: ReturnType<typeof parseQueries>;
  beforeEach(() => {
    cases = parseQueries('red heart\theart\ncat\tcat\ndog\tdog\nsun\tsun\n');
  });

  it('scores where the first right result lands: hit@1/5/10, MRR, misses', async () => {
    const e = await evaluateQueries(cases, search);
    expect(e.outcomes.map((o) => o.rank)).toEqual([1, 3, 7, null]);
    expect([e['hit@1'], e['hit@5'], e['hit@10']]).toEqual([0.25, 0.5, 0.75]);
    expect(e.mrr).toBeCloseTo((1 + 1 / 3 + 1 / 7) / 4, 12);
    expect(e.depth).toBe(10);
    expect(e.misses.map((m) => m.query)).toEqual(['sun']);
    expect(e.outcomes[1].top.map((r) => r.right)).toEqual([false, false, true]);
  });

  it('with --k 5, a right result at rank 7 is a miss; the text report lists it with its rank', async () => {
    const e = await evaluateQueries(cases, search, { k: 5 });
    expect(e.misses.map((m) => [m.query, m.rank])).toEqual([
      ['dog', 7],
      ['sun', null],
    ]);
    const text = formatQueryEvaluation(e, { show: 1 });
    expect(text).toContain('4 queries: hit@1 25.0%, hit@5 50.0%, hit@10 75.0%');
    expect(text).toContain('"dog" (pattern dog): first right result at rank 7');
    expect(text).toContain('1. 1.000 moon');
  });

  it('gives the chance level of a random ranking over the collection', async () => {
    // 10 items: 'red heart' has 2 right ones, 'cat' 1, 'dog' 0, 'sun' 1
    const collection = [['red heart'], ['heart'], ['cat'], ['sun'], ...Array.from({ length: 6 }, () => ['x'])];
    const e = await evaluateQueries(cases, search, { collection });
    expect(e.chance!['hit@1']).toBeCloseTo((2 / 10 + 1 / 10 + 0 + 1 / 10) / 4, 12);
    expect(e.chance!['hit@5']).toBeCloseTo(
      (1 - (8 / 10) * (7 / 9) * (6 / 8) * (5 / 7) * (4 / 6) + 0.5 + 0 + 0.5) / 4,
      12,
    );
    expect(e.chance!['hit@10']).toBeCloseTo(3 / 4, 12);
    expect(chanceHitAt(1000, 0, 10)).toBe(0);
  });

  it('refuses a k below 1', async () => {
    await expect(evaluateQueries(cases, search, { k: 0 })).rejects.toThrow(/positive integer/);
  });
});

/** Distinct captions of a split (fixtures/README.md). */
function testCaptions(name: string): string[] {
  return gunzipSync(readFileSync(join(import.meta.dirname, 'fixtures', `${name}-test-captions.txt.gz`)))
    .toString('utf8')
    .trim()
    .split('\n');
}

describe('the shipped query sets', () => {
  it.each(QUERY_SETS)('%s: about 40 queries, each with a pattern some test-split caption matches', (name) => {
    const cases = readQueries(name);
    expect(cases.length).toBeGreaterThanOrEqual(40);
    expect(new Set(cases.map((c) => c.query)).size).toBe(cases.length);
    expect(unmatchableQueries(cases, testCaptions(name)).map((c) => `${c.line}: ${c.query}`)).toEqual([]);
  });

  it('emoji asks for a heart with "red heart"', () => {
    const red = readQueries('emoji').find((c) => c.query === 'red heart');
    expect(red && red.regex.test('heart emoji: red heart')).toBe(true);
  });

  it('unmatchableQueries finds a pattern no caption matches', () => {
    expect(
      unmatchableQueries(parseQueries('x\tzeppelin\ny\tsheep\n'), testCaptions('emoji')).map((c) => c.query),
    ).toEqual(['x']);
  });
});

describe('queries: edge cases of parsing, scoring and the report', () => {
  let cases: ReturnType<typeof parseQueries>;
  beforeEach(() => {
    cases = parseQueries('red heart\theart\ncat\tcat\n');
  });
  // 12 results whatever the depth asked: evaluateQueries keeps the first `depth` only
  const search = async (q: string): Promise<RankedResult[]> =>
    Array.from({ length: 12 }, (_, i) => ({
      id: `${q}-${i}`,
      score: 0.9 - i / 100,
      captions: i === 10 && q === 'cat' ? ['a cat', 'kitten', 'third'] : [`other ${i}`, `more ${i}`, 'third'],
    }));

  it('keeps the first max(k, 10) results; k 3 adds hit@3 to the report; misses show their first 3 results and 2 captions each', async () => {
    const e = await evaluateQueries(cases, search, { k: 3 });
    expect([e.depth, e.k, e.outcomes[0].top.length]).toEqual([10, 3, 10]);
    expect(e.outcomes.map((o) => o.rank)).toEqual([null, null]); // cat's right result is the 11th: beyond the depth
    const text = formatQueryEvaluation(e);
    expect(text).toBe(
      [
        '2 queries: hit@1 0.0%, hit@5 0.0%, hit@10 0.0%, hit@3 0.0%, MRR 0.000',
        'misses (no right result in the top 3): 2',
        '  "red heart" (pattern heart)',
        '    1. 0.900 other 0 | more 0',
        '    2. 0.890 other 1 | more 1',
        '    3. 0.880 other 2 | more 2',
        '  "cat" (pattern cat)',
        '    1. 0.900 other 0 | more 0',
        '    2. 0.890 other 1 | more 1',
        '    3. 0.880 other 2 | more 2',
        '',
      ].join('\n'),
    );
    const deep = await evaluateQueries(cases, search, { k: 12 });
    expect([deep.depth, deep.outcomes[1].rank, deep.hitAtK, deep.mrr]).toEqual([12, 11, 0.5, 1 / 11 / 2]);
    expect(formatQueryEvaluation(deep)).toContain('hit@12 50.0%, MRR 0.045\n');
  });

  it('the report prints the chance line when a collection is given, and no misses line without misses', async () => {
    const all = async (): Promise<RankedResult[]> => [{ id: 'a', score: 1, captions: ['red heart', 'a cat'] }];
    const e = await evaluateQueries(cases, all, { k: 1, collection: [['red heart'], ['dog'], ['cat'], ['x']] });
    expect([e['hit@1'], e.mrr, e.misses]).toEqual([1, 1, []]);
    expect(e.chance).toEqual({ 'hit@1': 0.25, 'hit@5': 1, 'hit@10': 1 }); // 1 right of 4 each: K >= 4 always finds it
    expect(formatQueryEvaluation(e)).toBe(
      '2 queries: hit@1 100.0%, hit@5 100.0%, hit@10 100.0%, MRR 1.000\na random ranking: hit@1 25.0%, hit@5 100.0%, hit@10 100.0%\n',
    );
    const none = await evaluateQueries([], all, { collection: [['x']] });
    expect([none.queries, none['hit@1'], none.mrr, 'chance' in none]).toEqual([0, 0, 0, false]);
    expect([chanceHitAt(0, 1, 10), chanceHitAt(5, 1, 10), chanceHitAt(4, 2, 1)]).toEqual([0, 1, 0.5]);
    await expect(evaluateQueries(cases, all, { k: 2.5 })).rejects.toThrow('k must be a positive integer, got 2.5.');
  });

  it('parses a missing query or pattern as an error, trims alternatives, and reads files or shipped sets', () => {
    expect(() => parseQueries('\tcat\n', 'q.tsv')).toThrow('q.tsv:1: expected "query<TAB>pattern", got "\\tcat".');
    expect(() => parseQueries('cat\t  \n', 'q.tsv')).toThrow(/q\.tsv:1: expected/);
    expect(() => parseQueries('   \n')).toThrow('queries holds no queries (lines of "query<TAB>pattern").');
    const [c] = parseQueries('  big cat \t cat | kitten || lion cub \n');
    expect([c.query, c.pattern]).toEqual(['big cat', 'cat | kitten || lion cub']);
    // no empty alternative (it would match between any two non-letters, as in 'a, b')
    expect(['a kitten', 'lion   cub', 'Cat', 'catalog', 'a, b'].map((s) => c.regex.test(s))).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
    expect(patternRegex('lion  cub').test('a lion cub')).toBe(true); // a run of spaces is any whitespace
    expect(patternRegex('graduat\\w*').test('GRADUATION CAP')).toBe(true); // a regex pattern is case-insensitive too
    expect(() => readQueries('/no/such/file.tsv')).toThrow(
      'Query file not found: /no/such/file.tsv (a TSV of "query<TAB>pattern" lines, or a shipped set: emoji, glyphs).',
    );
    expect(readQueries(join(import.meta.dirname, '..', 'assets', 'queries', 'glyphs.tsv'))).toEqual(
      readQueries('glyphs'),
    );
  });
});
