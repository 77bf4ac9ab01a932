import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { DistillError, atomicWriteJson, tf, type TokenizedBatch } from '@distill/core';

/** A Hugging Face tokenizer.json document. */
export type TokenizerJson = Record<string, unknown> & { model: Record<string, unknown> & { type: string } };

export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

/** BERT's basic tokenisation: lowercase, strip accents, split on whitespace and punctuation. */
export function basicTokenize(text: string): string[] {
  const t = text
    .toLowerCase()
    .normalize('NFD')
    .replace(/\p{Mn}/gu, '');
  return t.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) ?? [];
}

/** Word counts of `texts` after basicTokenize (punctuation marks count as one-character words). */
export function countWords(texts: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of texts) for (const w of basicTokenize(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
  return counts;
}

/** Captions, or their word counts (countWords): what the vocabulary trainers learn from. */
export type TokenizerTrainingText = readonly string[] | ReadonlyMap<string, number>;

function wordCountsOf(texts: TokenizerTrainingText): ReadonlyMap<string, number> {
  return Array.isArray(texts) ? countWords(texts as readonly string[]) : (texts as ReadonlyMap<string, number>);
}

/** Words sorted by count (descending), ties by the word, so training is deterministic. */
function byFrequency(counts: ReadonlyMap<string, number>, minFrequency = 1): [string, number][] {
  return [...counts.entries()]
    .filter(([, n]) => n >= minFrequency)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}

/** A word as WordPiece symbols: word-initial `c`, inner `##c`. */
function charSymbols(w: string): string[] {
  return [...w].map((c, i) => (i === 0 ? c : `##${c}`));
}

/** An ordered vocabulary without duplicates. */
class VocabBuilder {
  readonly list: string[] = [];
  private readonly set = new Set<string>();
  add(s: string): boolean {
    if (this.set.has(s)) return false;
    this.set.add(s);
    this.list.push(s);
    return true;
  }
  has(s: string): boolean {
    return this.set.has(s);
  }
  get size(): number {
    return this.list.length;
  }
}

/**
 * Merge adjacent WordPiece symbols of `words` until `vocab` holds `vocabSize` entries (or no pair is
 * left that occurs at least `minPairCount` times). `score`: 'wordpiece' ranks a pair by
 * count(ab) / (count(a) count(b)) (the original WordPiece criterion: favours pairs of rare symbols),
 * 'frequency' by count(ab) (as BPE: favours what occurs most).
 */
function mergePieces(
  words: { syms: string[]; n: number }[],
  vocab: VocabBuilder,
  vocabSize: number,
  score: 'wordpiece' | 'frequency',
  minPairCount: number,
): void {
  // counts kept up to date as words change (only the words holding the merged pair are recounted)
  const symCount = new Map<string, number>();
  const pairCount = new Map<string, number>();
  const pairWords = new Map<string, Set<number>>();
  const SEP = '\u0000';
  const account = (wi: number, sign: 1 | -1) => {
    const { syms, n } = words[wi];
    for (let i = 0; i < syms.length; i++) {
      const c = (symCount.get(syms[i]) ?? 0) + sign * n;
      if (c === 0) symCount.delete(syms[i]);
      else symCount.set(syms[i], c);
      if (i + 1 < syms.length) {
        const k = syms[i] + SEP + syms[i + 1];
        const pc = (pairCount.get(k) ?? 0) + sign * n;
        if (pc === 0) pairCount.delete(k);
        else pairCount.set(k, pc);
        let set = pairWords.get(k);
        if (sign > 0) {
          if (!set) pairWords.set(k, (set = new Set()));
          set.add(wi);
        } else if (set) {
          set.delete(wi);
          if (set.size === 0) pairWords.delete(k);
        }
      }
    }
  };
  words.forEach((_, wi) => account(wi, 1));
  while (vocab.size < vocabSize) {
    let best = '';
    let bestScore = -1;
    for (const [k, n] of pairCount) {
      if (n < minPairCount) continue;
      let sc = n;
      if (score === 'wordpiece') {
        const [a, b] = k.split(SEP);
        sc = n / (symCount.get(a)! * symCount.get(b)!);
      }
      if (sc > bestScore || (sc === bestScore && k < best)) {
        best = k;
        bestScore = sc;
      }
    }
    if (!best) break;
    const [a, b] = best.split(SEP);
    const merged = a + b.slice(2);
    vocab.add(merged);
    for (const wi of [...pairWords.get(best)!]) {
      account(wi, -1);
      const s = words[wi].syms;
      for (let i = 0; i + 1 < s.length; i++) if (s[i] === a && s[i + 1] === b) s.splice(i, 2, merged);
      account(wi, 1);
    }
  }
}

/** A BERT-style tokenizer.json (BertNormalizer, BertPreTokenizer, WordPiece, BertProcessing) over `vocab` (specials first). */
export function wordPieceTokenizerJson(vocab: readonly string[]): TokenizerJson {
  const vocabMap: Record<string, number> = {};
  vocab.forEach((t, i) => (vocabMap[t] = i));
  for (const t of SPECIAL_TOKENS)
    if (!(t in vocabMap)) throw new DistillError(`The vocabulary lacks the special token ${t}.`);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((t) => ({
      id: vocabMap[t],
      content: t,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', vocabMap['[SEP]']], cls: ['[CLS]', vocabMap['[CLS]']] },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: vocabMap,
    },
  };
}

/**
 * Train a WordPiece vocabulary (the original score-based algorithm): start from characters
 * (word-initial `c`, inner `##c`), then repeatedly merge the adjacent pair with the highest
 * score = count(ab) / (count(a) count(b)) until `vocabSize` entries. Returns a BERT-style
 * tokenizer.json (BertNormalizer, BertPreTokenizer, WordPiece, BertProcessing) that
 * @huggingface/tokenizers and Hugging Face's Rust tokenizers load.
 *
 * With a small vocabulary the score spends the budget on fragments of rare words (`u55b6`, `puzzl`)
 * and spells common ones letter by letter (`face` = f ##a ##c ##e): students use
 * trainWholeWordTokenizer. Kept for comparison and for tokenizers trained with it.
 */
export function trainWordPieceTokenizer(
  texts: TokenizerTrainingText,
  opts: { vocabSize?: number; minFrequency?: number } = {},
): TokenizerJson {
  const vocabSize = opts.vocabSize ?? 4000;
  const minFrequency = opts.minFrequency ?? 1;
  const vocab = new VocabBuilder();
  SPECIAL_TOKENS.forEach((t) => vocab.add(t));
  const words = byFrequency(wordCountsOf(texts), minFrequency).map(([w, n]) => ({ syms: charSymbols(w), n }));
  [...new Set(words.flatMap((w) => w.syms))].sort().forEach((s) => vocab.add(s));
  mergePieces(words, vocab, vocabSize, 'wordpiece', minFrequency);
  return wordPieceTokenizerJson(vocab.list);
}

/** Options of trainWholeWordTokenizer. */
export interface WholeWordTokenizerOptions {
  /** Most entries (specials, characters, whole words and pieces); fewer when the captions need fewer. Default 6000. */
  vocabSize?: number;
  /**
   * A word is a whole-word entry only when it occurs at least this often in the texts (default 3); rarer
   * words train the pieces, which spell words never seen in training.
   */
  minWordFrequency?: number;
  /** Entries kept for WordPiece pieces (for words that are not whole: rare and unseen words). Default 10% of vocabSize. */
  pieceBudget?: number;
}

/** a-z and 0-9, word-initial and inner: any plain English word is spelled without [UNK], seen in training or not. */
const BASIC_CHARS = [...'abcdefghijklmnopqrstuvwxyz0123456789'];
/** ASCII punctuation, word-initial only (BertPreTokenizer makes each mark a word of its own). */
const BASIC_PUNCTUATION = [...'!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'];

/**
 * Train a WordPiece vocabulary that keeps words whole. Entries, in order:
 *   1. the special tokens;
 *   2. every character of the texts and a-z/0-9, word-initial `c` and inner `##c`, and ASCII punctuation
 *      (a query in plain English never holds [UNK]);
 *   3. whole words by frequency (those occurring at least `minWordFrequency` times), as many as fit in
 *      `vocabSize` less `pieceBudget`;
 *   4. pieces for the remaining words (rare words, words past the budget): frequency-ranked merges
 *      (BPE's criterion, count(ab)) over those words only, until `vocabSize` or until no pair occurs twice.
 * Encoding is Hugging Face WordPiece (greedy longest match), so a whole word is one token and an unseen
 * word is spelled with the longest whole words and pieces that match it (`faces` = face ##s).
 * Returns the same BERT-style tokenizer.json as trainWordPieceTokenizer.
 */
export function trainWholeWordTokenizer(
  texts: TokenizerTrainingText,
  opts: WholeWordTokenizerOptions = {},
): TokenizerJson {
  const vocabSize = opts.vocabSize ?? 6000;
  const minWordFrequency = opts.minWordFrequency ?? 3;
  const pieceBudget = opts.pieceBudget ?? Math.round(vocabSize * 0.1);
  const vocab = new VocabBuilder();
  SPECIAL_TOKENS.forEach((t) => vocab.add(t));
  const counts = byFrequency(wordCountsOf(texts));
  const chars = new Set<string>(BASIC_CHARS);
  for (const [w] of counts) for (const c of w) chars.add(c);
  for (const c of [...chars, ...BASIC_PUNCTUATION].sort()) vocab.add(c);
  for (const c of [...chars].sort()) vocab.add(`##${c}`);
  const wordBudget = vocabSize - pieceBudget;
  const rest: { syms: string[]; n: number }[] = [];
  for (const [w, n] of counts) {
    if (vocab.has(w)) continue;
    if (n >= minWordFrequency && vocab.size < wordBudget) vocab.add(w);
    else rest.push({ syms: charSymbols(w), n });
  }
  mergePieces(rest, vocab, vocabSize, 'frequency', 2);
  return wordPieceTokenizerJson(vocab.list);
}

/** Turns texts into padded, truncated id batches ([CLS] ... [SEP], max length 30 by default). */
export class TextTokenizer {
  readonly vocabSize: number;
  readonly padId: number;
  readonly clsId?: number;
  readonly sepId?: number;
  private readonly tok: Tokenizer;

  constructor(
    readonly json: TokenizerJson,
    readonly maxLength = 30,
    config: Record<string, unknown> = {},
  ) {
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
      this.encodeIds(t).forEach((id, i) => {
        ids[b * L + i] = id;
        mask[b * L + i] = 1;
      });
    });
    return { ids, mask };
  }

  tokenize(texts: string[]): TokenizedBatch {
    const { ids, mask } = this.encodeArrays(texts);
    return {
      ids: tf.tensor2d(ids, [texts.length, this.maxLength], 'int32'),
      mask: tf.tensor2d(mask, [texts.length, this.maxLength], 'int32'),
    };
  }

  /** The tokens of one text, not truncated ([CLS] and [SEP] included unless addSpecialTokens is false). */
  tokens(text: string, addSpecialTokens = true): string[] {
    return this.tok.tokenize(text, { add_special_tokens: addSpecialTokens });
  }

  /** The token count of one text before truncation ([CLS] and [SEP] included). */
  fullLength(text: string): number {
    return this.tok.encode(text, { add_special_tokens: true }).ids.length;
  }

  /** The token of [UNK] (undefined when the vocabulary has none). */
  get unkToken(): string | undefined {
    const m = this.json.model as { unk_token?: unknown };
    return typeof m.unk_token === 'string' ? m.unk_token : undefined;
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
    if (!existsSync(path))
      throw new DistillError(`No tokenizer.json at ${source}. Give a tokenizer.json file or a folder holding one.`, 2);
    json = JSON.parse(readFileSync(path, 'utf8')) as TokenizerJson;
    const cfgPath = join(path, '..', 'tokenizer_config.json');
    if (existsSync(cfgPath)) config = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  } else json = source;
  if (!json || typeof json !== 'object' || !('model' in json))
    throw new DistillError('Not a tokenizer.json document (no "model").', 2);
  return new TextTokenizer(json, opts.maxLength ?? 30, config);
}
