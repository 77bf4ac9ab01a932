import type { Ops, TensorParams } from '@distill/core';
import { loadGlove } from '@distill/pretrained';
import { defineEncoder, type TextEncoder, type TowerOutput } from './encoder.js';
import type { ParamSpec } from './params.js';
import { SPECIAL_TOKENS } from './tokenizer.js';

/**
 * Text over frozen pretrained word vectors: the GloVe 6B 100-d subset of @distill/pretrained (32,025 words)
 * as a fixed table, so every word GloVe knows means something, including words never seen in training
 * captions. Trained on top: attention pooling (a 64-wide tanh scorer) beside mean pooling, then LayerNorm +
 * linear + GELU. Teacher v3's text side (`distill teacher pretrain --kind heads`) and the `glove` student
 * text tower are this one definition.
 *
 * Token ids: 0..4 are the special tokens ([PAD] [UNK] [CLS] [SEP] [MASK]: zero rows, so an unknown word adds
 * nothing to the pooled vector), then the GloVe words in the asset's order (`wordTokenizerJson`).
 */
export const GLOVE_OFFSET = SPECIAL_TOKENS.length;
/** Width of the attention-pooling scorer. */
export const WORD_ATTENTION_WIDTH = 64;

export type WordPooling = 'mean' | 'attention';

export interface GloveTextConfig {
  /** GLOVE_OFFSET + the asset's words (checked: the ids index the fixed table). */
  vocabSize: number;
  pooling: WordPooling;
  /** Width of the trained layer over the pooled vectors (the tower's feature size). */
  hidden: number;
}

export const GLOVE_TEXT_DEFAULTS: Omit<GloveTextConfig, 'vocabSize'> = { pooling: 'attention', hidden: 512 };

/** The token count of the word-level GloVe vocabulary (special tokens + words). */
export function gloveVocabSize(): number {
  return GLOVE_OFFSET + loadGlove().words.length;
}

/** A tokenizer.json that keeps words whole: BERT normaliser + pre-tokeniser, WordPiece with whole words only (no pieces: any other word is one [UNK]). */
export function wordTokenizerJson(words: readonly string[], maxLength: number): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  SPECIAL_TOKENS.forEach((t, i) => (vocab[t] = i));
  words.forEach((w, i) => (vocab[w] = GLOVE_OFFSET + i));
  return {
    version: '1.0',
    truncation: { direction: 'Right', max_length: maxLength, strategy: 'LongestFirst', stride: 0 },
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((t, i) => ({
      id: i,
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
      strip_accents: true,
      lowercase: true,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
}

/** The word-level tokenizer over the GloVe asset's words (the `glove` text tower's and teacher v3's). */
export function gloveTokenizerJson(maxLength: number): Record<string, unknown> {
  return wordTokenizerJson(loadGlove().words, maxLength);
}

let table: { data: Float32Array; shape: [number, number]; q: Int8Array; scale: Float32Array } | undefined;

/**
 * The frozen word table: zero rows for the special tokens, then the GloVe vectors, int8-quantised per row
 * (symmetric, scale = max |v| / 127): `q` and `scale` are what teacher v3's text.onnx stores, `data` = q * scale
 * is what training and every exported graph use, so they agree exactly. Built once per process.
 */
export function gloveWordTable(): { data: Float32Array; shape: [number, number]; q: Int8Array; scale: Float32Array } {
  if (table) return table;
  const g = loadGlove();
  const n = GLOVE_OFFSET + g.words.length;
  const E = g.dim;
  const q = new Int8Array(n * E);
  const scale = new Float32Array(n);
  const data = new Float32Array(n * E);
  for (let r = GLOVE_OFFSET; r < n; r++) {
    const v = g.vectors.subarray((r - GLOVE_OFFSET) * E, (r - GLOVE_OFFSET + 1) * E);
    const m = v.reduce((a, x) => Math.max(a, Math.abs(x)), 0);
    scale[r] = m > 0 ? m / 127 : 1;
    for (let k = 0; k < E; k++) {
      q[r * E + k] = Math.round(v[k] / scale[r]);
      data[r * E + k] = Math.fround(q[r * E + k] * scale[r]);
    }
  }
  table = { data, shape: [n, E], q, scale };
  return table;
}

/** The trained parameters of the pooling (attention scorer) for word vectors of width `wordDim`. */
export function wordPoolSpecs(pooling: WordPooling, wordDim: number): ParamSpec[] {
  if (pooling !== 'attention') return [];
  const H = WORD_ATTENTION_WIDTH;
  return [
    { name: 'attn.weight', shape: [wordDim, H], init: { kind: 'normal', std: Math.sqrt(1 / wordDim) } },
    { name: 'attn.bias', shape: [H], init: { kind: 'zeros' } },
    { name: 'attn_v', shape: [H], init: { kind: 'normal', std: Math.sqrt(1 / H) } },
  ];
}

/** Width of the pooled vector: mean pooling E, attention + mean 2E. */
export const pooledWidth = (pooling: WordPooling, wordDim: number): number =>
  pooling === 'attention' ? 2 * wordDim : wordDim;

/**
 * Pooled word vectors: rows of `table` at `ids` [B, L], `mask` [B, L] 1/0 -> [B, E] (mean over real tokens)
 * or [B, 2E] (attention pooling a = softmax(v . tanh(W e + b)) over real tokens, concatenated with the mean).
 * Written without batch-sized reshapes (transposes and broadcasting), so an exported graph takes any batch.
 */
export function poolWords<T>(o: Ops<T>, p: TensorParams<T>, pooling: WordPooling, table: T, ids: T, mask: T): T {
  const e = o.gather(table, ids); // [B, L, E]
  const eT = o.transpose(e, [2, 0, 1]); // [E, B, L]: broadcasts with [B, L]
  const count = o.maximumConst(o.reduceSum(mask, [1]), 1); // [B]
  const mean = o.transpose(o.div(o.reduceSum(o.mul(eT, mask), [2]), count), [1, 0]); // [B, E]
  if (pooling !== 'attention') return mean;
  // [B, L, H]. The same product either way: on the graph a broadcast MatMul (a 3-D linear reshapes to
  // [B * L, E], a batch-sized constant an exported model could not keep); on tfjs a 2-D linear (tfjs-wasm's
  // broadcast BatchMatMul misses XNNPACK and was ~10x slower here)
  const h = o.tanh(
    o.engine === 'graph'
      ? o.add(o.matmul(e, p['attn.weight']), p['attn.bias'])
      : o.linear(e, p['attn.weight'], p['attn.bias']),
  );
  const s = o.reduceSum(o.mul(h, p['attn_v']), [2]); // [B, L]
  const a = o.softmax(o.add(s, o.scale(o.sub(mask, o.scalar(mask, 1)), 1e4))); // padded positions -> 0
  const attn = o.transpose(o.reduceSum(o.mul(eT, a), [2]), [1, 0]); // [B, E]
  return o.concat([attn, mean], 1);
}

export function gloveTextSpecs(c: GloveTextConfig): ParamSpec[] {
  const E = loadGlove().dim;
  const P = pooledWidth(c.pooling, E);
  return [
    ...wordPoolSpecs(c.pooling, E),
    { name: 'norm.weight', shape: [P], init: { kind: 'ones' } },
    { name: 'norm.bias', shape: [P], init: { kind: 'zeros' } },
    { name: 'fc.weight', shape: [P, c.hidden], init: { kind: 'normal', std: Math.sqrt(1 / P) } },
    { name: 'fc.bias', shape: [c.hidden], init: { kind: 'zeros' } },
  ];
}

/** The `glove` text tower on any engine: f = GELU(fc(LayerNorm(pool(GloVe[ids], mask)))), the table a constant (no gradient, not a parameter). */
export function gloveTextTower<T>(
  o: Ops<T>,
  p: TensorParams<T>,
  c: GloveTextConfig,
  input: { ids: T; mask: T },
): TowerOutput<T> {
  const t = gloveWordTable();
  const words = o.constant(input.mask, t.data, t.shape);
  const pooled = poolWords(o, p, c.pooling, words, input.ids, input.mask);
  const x = o.layerNorm(pooled, p['norm.weight'], p['norm.bias'], 1e-5);
  return { features: o.geluErf(o.linear(x, p['fc.weight'], p['fc.bias'])) };
}

export function createGloveText(config: Partial<GloveTextConfig>): TextEncoder {
  const c: GloveTextConfig = { ...GLOVE_TEXT_DEFAULTS, vocabSize: gloveVocabSize(), ...config };
  if (c.vocabSize !== gloveVocabSize()) {
    throw new Error(
      `The glove text tower indexes the GloVe table of ${gloveVocabSize()} tokens, but the config says vocabSize ${c.vocabSize}: use the word-level GloVe tokenizer (gloveTokenizerJson).`,
    );
  }
  return defineEncoder({
    type: 'glove',
    modality: 'text',
    featureDim: c.hidden,
    config: c,
    specs: () => gloveTextSpecs(c),
    tower: (o, p, x) => gloveTextTower(o, p, c, x),
  });
}
