import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { chanceHitAt, evaluateQueries, formatQueryEvaluation, parseQueries, patternRegex, QUERY_SETS, readQueries, unmatchableQueries, type RankedResult } from './queries.js';

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
    expect(c.map((x) => [x.query, x.pattern, x.line])).toEqual([['red heart', 'heart', 3], ['cat', 'cat|kitten', 4]]);
  });

  it('says which line is wrong', () => {
    expect(() => parseQueries('cat\tcat\nno tab here\n', 'q.tsv')).toThrow(/q\.tsv:2: expected "query<TAB>pattern"/);
    expect(() => parseQueries('x\t(unclosed\n', 'q.tsv')).toThrow(/q\.tsv:1: the pattern "\(unclosed" is not a valid regular expression/);
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
  const search = async (q: string, depth: number): Promise<RankedResult[]> => ranked[q].slice(0, depth).map((captions, i) => ({ id: `${q}-${i}`, score: 1 - i / 10, captions }));
  const cases = parseQueries('red heart\theart\ncat\tcat\ndog\tdog\nsun\tsun\n');

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
    expect(e.misses.map((m) => [m.query, m.rank])).toEqual([['dog', 7], ['sun', null]]);
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
    expect(e.chance!['hit@5']).toBeCloseTo((1 - (8 / 10) * (7 / 9) * (6 / 8) * (5 / 7) * (4 / 6) + 0.5 + 0 + 0.5) / 4, 12);
    expect(e.chance!['hit@10']).toBeCloseTo(3 / 4, 12);
    expect(chanceHitAt(1000, 0, 10)).toBe(0);
  });

  it('refuses a k below 1', async () => {
    await expect(evaluateQueries(cases, search, { k: 0 })).rejects.toThrow(/positive integer/);
  });
});

/** Distinct captions of a split (fixtures/README.md). */
function testCaptions(name: string): string[] {
  return gunzipSync(readFileSync(join(import.meta.dirname, 'fixtures', `${name}-test-captions.txt.gz`))).toString('utf8').trim().split('\n');
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
    expect(unmatchableQueries(parseQueries('x\tzeppelin\ny\tsheep\n'), testCaptions('emoji')).map((c) => c.query)).toEqual(['x']);
  });
});
