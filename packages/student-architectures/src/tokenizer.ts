import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { DistillError, atomicWriteJson, tf, type TokenizedBatch } from '@distill/core';

/** A Hugging Face tokenizer.json document. */
export type TokenizerJson = Record<string, unknown> & { model: Record<string, unknown> & { type: string } };

export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

/** BERT's basic tokenisation: lowercase, strip accents, split on whitespace and punctuation. */
export function basicTokenize(text: string): string[] {
  const t = text.toLowerCase().normalize('NFD').replace(/\p{Mn}/gu, '');
  return t.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) ?? [];
}

/**
 * Train a WordPiece vocabulary (the original score-based algorithm): start from characters
 * (word-initial `c`, inner `##c`), then repeatedly merge the adjacent pair with the highest
 * score = count(ab) / (count(a) count(b)) until `vocabSize` entries. Returns a BERT-style
 * tokenizer.json (BertNormalizer, BertPreTokenizer, WordPiece, BertProcessing) that
 * @huggingface/tokenizers and Hugging Face's Rust tokenizers load.
 */
export function trainWordPieceTokenizer(texts: string[], opts: { vocabSize?: number; minFrequency?: number } = {}): TokenizerJson {
  const vocabSize = opts.vocabSize ?? 4000;
  const minFrequency = opts.minFrequency ?? 1;
  const wordCounts = new Map<string, number>();
  for (const t of texts) for (const w of basicTokenize(t)) wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  // words as symbol sequences
  const words: { syms: string[]; n: number }[] = [];
  const vocab: string[] = [...SPECIAL_TOKENS];
  const inVocab = new Set<string>(vocab);
  const addSym = (s: string) => { if (!inVocab.has(s)) { inVocab.add(s); vocab.push(s); } };
  const sortedWords = [...wordCounts.entries()].filter(([, n]) => n >= minFrequency).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  for (const [w, n] of sortedWords) {
    const chars = [...w];
    const syms = chars.map((c, i) => (i === 0 ? c : `##${c}`));
    words.push({ syms, n });
  }
  const alphabet = [...new Set(words.flatMap((w) => w.syms))].sort();
  alphabet.forEach(addSym);
  while (vocab.length < vocabSize) {
    const symCount = new Map<string, number>();
    const pairCount = new Map<string, number>();
    for (const { syms, n } of words) {
      for (let i = 0; i < syms.length; i++) {
        symCount.set(syms[i], (symCount.get(syms[i]) ?? 0) + n);
        if (i + 1 < syms.length) {
          const k = syms[i] + '\u0000' + syms[i + 1];
          pairCount.set(k, (pairCount.get(k) ?? 0) + n);
        }
      }
    }
    let best = '';
    let bestScore = -1;
    for (const [k, n] of pairCount) {
      if (n < minFrequency) continue;
      const [a, b] = k.split('\u0000');
      const score = n / (symCount.get(a)! * symCount.get(b)!);
      if (score > bestScore || (score === bestScore && k < best)) { best = k; bestScore = score; }
    }
    if (!best) break;
    const [a, b] = best.split('\u0000');
    const merged = a + b.slice(2);
    addSym(merged);
    for (const w of words) {
      const s = w.syms;
      for (let i = 0; i + 1 < s.length; i++) if (s[i] === a && s[i + 1] === b) s.splice(i, 2, merged);
    }
  }
  const vocabMap: Record<string, number> = {};
  vocab.forEach((t, i) => (vocabMap[t] = i));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((t, id) => ({ id, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', vocabMap['[SEP]']], cls: ['[CLS]', vocabMap['[CLS]']] },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: vocabMap },
  };
}

/** Turns texts into padded, truncated id batches ([CLS] ... [SEP], max length 30 by default). */
export class TextTokenizer {
  readonly vocabSize: number;
  readonly padId: number;
  readonly clsId?: number;
  readonly sepId?: number;
  private readonly tok: Tokenizer;

  constructor(readonly json: TokenizerJson, readonly maxLength = 30, config: Record<string, unknown> = {}) {
    this.tok = new Tokenizer(json, config);
    this.vocabSize = this.tok.get_vocab(true).size;
    this.padId = this.tok.token_to_id('[PAD]') ?? this.tok.token_to_id('<pad>') ?? 0;
    this.clsId = this.tok.token_to_id('[CLS]') ?? this.tok.token_to_id('<s>');
    this.sepId = this.tok.token_to_id('[SEP]') ?? this.tok.token_to_id('</s>');
  }

  /** Ids of one text, truncated to maxLength (keeping the final [SEP]). */
  encodeIds(text: string): number[] {
    let ids = this.tok.encode(text, { add_special_tokens: true }).ids;
    if (ids.length > this.maxLength) {
      const last = ids[ids.length - 1];
      ids = ids.slice(0, this.maxLength);
      if (last === this.sepId) ids[this.maxLength - 1] = last;
    }
    return ids;
  }

  /** Plain arrays: [B * maxLength] ids and mask (padding='max_length'). */
  encodeArrays(texts: string[]): { ids: Int32Array; mask: Int32Array } {
    const L = this.maxLength;
    const ids = new Int32Array(texts.length * L).fill(this.padId);
    const mask = new Int32Array(texts.length * L);
    texts.forEach((t, b) => {
      this.encodeIds(t).forEach((id, i) => { ids[b * L + i] = id; mask[b * L + i] = 1; });
    });
    return { ids, mask };
  }

  tokenize(texts: string[]): TokenizedBatch {
    const { ids, mask } = this.encodeArrays(texts);
    return { ids: tf.tensor2d(ids, [texts.length, this.maxLength], 'int32'), mask: tf.tensor2d(mask, [texts.length, this.maxLength], 'int32') };
  }

  tokens(text: string): string[] {
    return this.tok.tokenize(text, { add_special_tokens: true });
  }

  save(dir: string): string {
    const p = join(dir, 'tokenizer.json');
    atomicWriteJson(p, this.json);
    return p;
  }
}

/** Load a tokenizer from a tokenizer.json object, a tokenizer.json path, or a folder holding one. */
export function loadTokenizer(source: TokenizerJson | string, opts: { maxLength?: number } = {}): TextTokenizer {
  let json: TokenizerJson;
  let config: Record<string, unknown> = {};
  if (typeof source === 'string') {
    const path = existsSync(join(source, 'tokenizer.json')) ? join(source, 'tokenizer.json') : source;
    if (!existsSync(path)) throw new DistillError(`No tokenizer.json at ${source}. Give a tokenizer.json file or a folder holding one.`, 2);
    json = JSON.parse(readFileSync(path, 'utf8')) as TokenizerJson;
    const cfgPath = join(path, '..', 'tokenizer_config.json');
    if (existsSync(cfgPath)) config = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  } else json = source;
  if (!json || typeof json !== 'object' || !('model' in json)) throw new DistillError('Not a tokenizer.json document (no "model").', 2);
  return new TextTokenizer(json, opts.maxLength ?? 30, config);
}
