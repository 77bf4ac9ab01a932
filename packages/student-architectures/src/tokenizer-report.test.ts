import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTokenizer, trainWholeWordTokenizer, trainWordPieceTokenizer } from './tokenizer.js';
import { COMMON_WORDS, tokenizerReport } from './tokenizer-report.js';

describe('tokenizerReport', () => {
  const captions = ['red heart', 'red heart', 'broken heart', 'grinning face with big eyes', 'cat face, grinning'];

  it('counts whole words, tokens per caption and truncation', () => {
    // vocabulary: specials, characters, then the words seen at least twice (red, heart, face, grinning)
    const tok = loadTokenizer(
      trainWholeWordTokenizer(captions, { vocabSize: 10_000, minWordFrequency: 2, pieceBudget: 0 }),
      { maxLength: 5 },
    );
    const r = tokenizerReport(tok, captions, { commonWords: ['heart', 'cat', 'eyes'] });
    expect(r.captions).toBe(5);
    expect(r.words).toBe(14); // the comma is not a word
    expect(r.distinctWords).toBe(9);
    // whole: red x2, heart x3, face x2, grinning x2; the rest is spelt in pieces (no pair occurs twice)
    expect(r.wholeWordShare).toBeCloseTo(9 / 14, 10);
    expect(r.wholeDistinctShare).toBeCloseTo(4 / 9, 10);
    expect(r.unknownShare).toBe(0);
    expect(r.topSplit[0]).toEqual({ word: 'big', count: 1, tokens: ['b', '##i', '##g'] });
    expect(r.commonSplit.map((x) => x.word)).toEqual(['cat', 'eyes']);
    // tokens with [CLS]/[SEP]: 4, 4, 2+6 (b ##r ##o ##k ##e ##n)+1, 2+1+1+4 (w ##i ##t ##h)+3+4, 2+3+1+1+1
    const lengths = [4, 4, 9, 15, 8];
    expect(r.meanTokens).toBeCloseTo(lengths.reduce((a, b) => a + b) / 5, 10);
    expect(r.maxTokens).toBe(15);
    expect(r.truncatedShare).toBeCloseTo(3 / 5, 10);
  });

  it('counts [UNK]', () => {
    const tok = loadTokenizer(trainWordPieceTokenizer(['ab ab'], { vocabSize: 10 }));
    const r = tokenizerReport(tok, ['ab zz']);
    expect(r.unknownShare).toBe(0.5);
    expect(r.wholeWordShare).toBe(0.5);
  });
});

/**
 * The teachers shipped under packages/teacher-adapters/assets/teachers. The two listed here were trained with
 * the score-based WordPiece of 2,000 entries before the whole-word tokenizer (issue 24), and keep their
 * tokenizer until new teachers replace them; any other teacher must keep the common words whole.
 */
const LEGACY_TEACHERS = new Set(['emoji-teacher-v1', 'glyphs-teacher-v2']);

describe('shipped teacher tokenizers', () => {
  const root = join(import.meta.dirname, '..', '..', 'teacher-adapters', 'assets', 'teachers');
  const teachers = existsSync(root) ? readdirSync(root).filter((d) => existsSync(join(root, d, 'tokenizer.json'))) : [];

  it('are found', () => {
    expect(teachers.length).toBeGreaterThan(0);
  });

  it.each(teachers)('%s keeps the common words whole (or is a listed legacy tokenizer)', (name) => {
    const tok = loadTokenizer(join(root, name));
    const split = COMMON_WORDS.filter((w) => tok.tokens(w, false).length !== 1);
    if (LEGACY_TEACHERS.has(name))
      expect(split.length, `${name} no longer splits the common words: remove it from LEGACY_TEACHERS`).toBeGreaterThan(
        0,
      );
    else
      expect(split, `${name} spells common words in pieces: train its tokenizer with trainWholeWordTokenizer`).toEqual(
        [],
      );
  });
});
