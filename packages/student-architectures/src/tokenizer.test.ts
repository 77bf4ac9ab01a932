import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { basicTokenize, loadTokenizer, trainWordPieceTokenizer } from './tokenizer.js';

const captions = [
  'grinning face with big eyes', 'grinning face with smiling eyes', 'smiling face with heart-eyes',
  'red heart', 'broken heart', 'cat face', 'grinning cat', 'face with tears of joy', 'Café crème!',
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
    const cls = tok.clsId!, sep = tok.sepId!;
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
