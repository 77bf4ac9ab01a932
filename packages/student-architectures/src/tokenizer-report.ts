import { basicTokenize, type TextTokenizer } from './tokenizer.js';

/**
 * Everyday words that every shipped tokenizer must keep whole (one token each): issue 24 found them
 * spelt letter by letter (`face` = f ##a ##c ##e) by the score-based WordPiece of 2,000 entries.
 */
export const COMMON_WORDS = [
  'face',
  'heart',
  'red',
  'cat',
  'star',
  'car',
  'house',
  'dog',
  'sun',
  'moon',
  'arrow',
  'circle',
  'man',
  'woman',
  'person',
  'hand',
  'flag',
  'box',
] as const;

/** How a tokenizer spells a set of captions (tokenizer-report). */
export interface TokenizerReport {
  /** Entries of the tokenizer's vocabulary. */
  vocabSize: number;
  /** The length captions are cut to ([CLS] and [SEP] included). */
  maxLength: number;
  captions: number;
  /** Word occurrences (basicTokenize's words with a letter or digit; punctuation is not counted). */
  words: number;
  distinctWords: number;
  /** Share of word occurrences that are one token (not [UNK]). */
  wholeWordShare: number;
  /** Share of distinct words that are one token. */
  wholeDistinctShare: number;
  /** Share of word occurrences that contain [UNK]. */
  unknownShare: number;
  /** Mean tokens per caption, [CLS] and [SEP] included, before truncation. */
  meanTokens: number;
  /** Longest caption in tokens, and the 99th percentile. */
  maxTokens: number;
  p99Tokens: number;
  /** Share of captions longer than maxLength (cut by the tokenizer). */
  truncatedShare: number;
  /** The most frequent words that take more than one token, with their count and pieces. */
  topSplit: { word: string; count: number; tokens: string[] }[];
  /** COMMON_WORDS (or the words asked for) that are not one token, with their pieces. */
  commonSplit: { word: string; tokens: string[] }[];
}

/**
 * Measure how `tok` spells `texts`: the share of word occurrences that are a single token, tokens per
 * caption and the share of captions cut at maxLength. Each distinct word is tokenized on its own (as
 * WordPiece does after pre-tokenization, so the figures are exact for WordPiece tokenizers).
 */
export function tokenizerReport(
  tok: TextTokenizer,
  texts: readonly string[],
  opts: { commonWords?: readonly string[]; topSplit?: number } = {},
): TokenizerReport {
  const counts = new Map<string, number>();
  let words = 0;
  for (const t of texts) {
    for (const w of basicTokenize(t)) {
      if (!/[\p{L}\p{N}]/u.test(w)) continue;
      counts.set(w, (counts.get(w) ?? 0) + 1);
      words++;
    }
  }
  const unk = tok.unkToken;
  const spell = (w: string) => tok.tokens(w, false);
  let whole = 0,
    wholeDistinct = 0,
    unknown = 0;
  const split: { word: string; count: number; tokens: string[] }[] = [];
  for (const [w, n] of counts) {
    const pieces = spell(w);
    if (pieces.length === 1 && pieces[0] !== unk) {
      whole += n;
      wholeDistinct++;
    } else split.push({ word: w, count: n, tokens: pieces });
    if (unk !== undefined && pieces.includes(unk)) unknown += n;
  }
  split.sort((a, b) => b.count - a.count || (a.word < b.word ? -1 : 1));
  const lengths = texts.map((t) => tok.fullLength(t)).sort((a, b) => a - b);
  const total = lengths.reduce((a, b) => a + b, 0);
  const commonSplit = (opts.commonWords ?? COMMON_WORDS)
    .map((w) => ({ word: w, tokens: spell(w) }))
    .filter((x) => x.tokens.length !== 1 || x.tokens[0] === unk);
  return {
    vocabSize: tok.vocabSize,
    maxLength: tok.maxLength,
    captions: texts.length,
    words,
    distinctWords: counts.size,
    wholeWordShare: words ? whole / words : 1,
    wholeDistinctShare: counts.size ? wholeDistinct / counts.size : 1,
    unknownShare: words ? unknown / words : 0,
    meanTokens: texts.length ? total / texts.length : 0,
    maxTokens: lengths.at(-1) ?? 0,
    p99Tokens: lengths.length ? lengths[Math.min(lengths.length - 1, Math.floor(0.99 * lengths.length))] : 0,
    truncatedShare: texts.length ? lengths.filter((l) => l > tok.maxLength).length / texts.length : 0,
    topSplit: split.slice(0, opts.topSplit ?? 10),
    commonSplit,
  };
}
