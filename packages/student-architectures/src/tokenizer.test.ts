import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  basicTokenize,
  countWords,
  loadTokenizer,
  trainWholeWordTokenizer,
  trainWordPieceTokenizer,
} from './tokenizer.js';
import { COMMON_WORDS } from './tokenizer-report.js';

/** Word counts of the embedded datasets' training captions (fixtures/README.md). */
function fixtureCounts(name: 'emoji' | 'glyphs'): Map<string, number> {
  const text = readFileSync(join(import.meta.dirname, 'fixtures', `word-counts-${name}-train.tsv`), 'utf8');
  return new Map(
    text
      .trim()
      .split('\n')
      .map((l) => {
        const [w, n] = l.split('\t');
        return [w, Number(n)] as [string, number];
      }),
  );
}

const captions = [
  'grinning face with big eyes',
  'grinning face with smiling eyes',
  'smiling face with heart-eyes',
  'red heart',
  'broken heart',
  'cat face',
  'grinning cat',
  'face with tears of joy',
  'Café crème!',
];

describe('WordPiece tokenizer', () => {
  it('splits like BERT basic tokenisation (lowercase, accents, punctuation)', () => {
    expect(basicTokenize('Café crème, heart-eyes!')).toEqual(['cafe', 'creme', ',', 'heart', '-', 'eyes', '!']);
  });

  it('trains a vocabulary that @huggingface/tokenizers loads, with [CLS]/[SEP], ## pieces and [UNK]', () => {
    const json = trainWordPieceTokenizer(captions, { vocabSize: 120 });
    const tok = loadTokenizer(json, { maxLength: 12 });
    const vocab = json.model.vocab as Record<string, number>;
    expect(Object.keys(vocab).length).toBeLessThanOrEqual(120);
    expect(vocab['[PAD]']).toBe(0);
    expect(tok.vocabSize).toBe(Object.keys(vocab).length);
    expect(tok.tokens('Grinning faces')).toEqual(['[CLS]', 'grinning', 'face', '##s', '[SEP]']);
    // a character never seen in training is [UNK]
    expect(tok.tokens('zz')).toEqual(['[CLS]', '[UNK]', '[SEP]']);
  });

  it('pads to maxLength with [PAD] and a 0 mask, and truncates keeping [SEP]', () => {
    const tok = loadTokenizer(trainWordPieceTokenizer(captions, { vocabSize: 200 }), { maxLength: 6 });
    const { ids, mask } = tok.encodeArrays(['red heart', 'grinning face with big smiling eyes']);
    const cls = tok.clsId!,
      sep = tok.sepId!;
    expect([...mask.slice(0, 6)]).toEqual([1, 1, 1, 1, 0, 0]);
    expect(ids[0]).toBe(cls);
    expect(ids[3]).toBe(sep);
    expect([...ids.slice(4, 6)]).toEqual([tok.padId, tok.padId]);
    expect([...mask.slice(6)]).toEqual([1, 1, 1, 1, 1, 1]);
    expect(ids[11]).toBe(sep);
  });

  it('saves tokenizer.json and loads it back from the folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tok-'));
    try {
      const tok = loadTokenizer(trainWordPieceTokenizer(captions, { vocabSize: 100 }));
      tok.save(dir);
      const again = loadTokenizer(dir);
      expect(again.maxLength).toBe(30);
      expect([...again.encodeArrays(['cat face']).ids]).toEqual([...tok.encodeArrays(['cat face']).ids]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('explains a missing tokenizer.json', () => {
    expect(() => loadTokenizer('/nonexistent/dir')).toThrow(/No tokenizer.json/);
  });
});

/** The vocabulary's entries in id order. */
function byId(json: ReturnType<typeof trainWholeWordTokenizer>): string[] {
  return Object.entries(json.model.vocab as Record<string, number>)
    .sort((a, b) => a[1] - b[1])
    .map(([t]) => t);
}

describe('whole-word tokenizer', () => {
  it('keeps the common caption words whole where score-based WordPiece spells them in pieces (real training captions)', () => {
    for (const name of ['emoji', 'glyphs'] as const) {
      const counts = fixtureCounts(name);
      const spell = (json: ReturnType<typeof trainWholeWordTokenizer>) => {
        const t = loadTokenizer(json);
        return COMMON_WORDS.filter((w) => t.tokens(w, false).length !== 1);
      };
      // the issue: the old trainer at the old budget splits them (face = f ##a ##c ##e)
      expect(spell(trainWordPieceTokenizer(counts, { vocabSize: 2000 })).length, name).toBeGreaterThan(10);
      // the default student tokenizer, and a budget as small as the old one
      expect(spell(trainWholeWordTokenizer(counts)), name).toEqual([]);
      expect(spell(trainWholeWordTokenizer(counts, { vocabSize: 2000 })), name).toEqual([]);
    }
  });

  it('fills the budget with frequent words first, then pieces for the other words; stops when nothing is left to merge', () => {
    const counts = new Map([
      ['heart', 50],
      ['face', 40],
      ['red', 30],
      ['hearts', 2],
      ['faces', 2],
      ['facing', 2],
      ['redo', 1],
      ['zebra', 1],
    ]);
    const json = trainWholeWordTokenizer(counts, { vocabSize: 10_000, minWordFrequency: 3, pieceBudget: 0 });
    const vocab = byId(json);
    expect(vocab.slice(0, 5)).toEqual(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
    // a-z and 0-9 in both forms, then the words by frequency
    const firstWord = vocab.indexOf('heart');
    expect(vocab.slice(firstWord, firstWord + 3)).toEqual(['heart', 'face', 'red']);
    expect(vocab).toContain('##z');
    expect(vocab).not.toContain('redo'); // occurs once: never merged whole (a pair must occur twice)
    expect(vocab.length).toBeLessThan(10_000);
    const tok = loadTokenizer(json);
    expect(tok.tokens('Red hearts, faces', false)).toEqual(['red', 'hearts', ',', 'faces']);
    expect(tok.tokens('zebra redo', false)[0]).toBe('z');
    expect(tok.tokens('quokka', false)).not.toContain('[UNK]'); // unseen letters a-z are spelt, not [UNK]
  });

  it('keeps pieceBudget entries for pieces when words would fill the vocabulary', () => {
    const words = Array.from({ length: 300 }, (_, i) => `w${i.toString(36)}x${'abcdefghij'[i % 10]}`);
    const counts = new Map(words.map((w, i) => [w, 1000 - i]));
    const json = trainWholeWordTokenizer(counts, { vocabSize: 200, pieceBudget: 40 });
    const vocab = byId(json);
    expect(vocab.length).toBe(200);
    const whole = vocab.filter((v) => counts.has(v));
    expect(whole).toEqual(words.slice(0, whole.length)); // the most frequent ones
    expect(vocab.slice(vocab.indexOf(whole.at(-1)!) + 1)).toHaveLength(40);
  });

  it('trains from captions as from their word counts (same tokenizer.json)', () => {
    expect(trainWholeWordTokenizer(captions, { vocabSize: 120 })).toEqual(
      trainWholeWordTokenizer(countWords(captions), { vocabSize: 120 }),
    );
  });
});
