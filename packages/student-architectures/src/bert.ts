import { DistillError, type Ops, type TensorParams } from '@distill/core';
import { defineEncoder, type TextEncoder, type TowerOptions, type TowerOutput } from './encoder.js';
import { activation, additiveMask, attention, checkHeads, dense, norm, type HiddenAct } from './ops.js';
import { P, type ParamSpec } from './params.js';

/** BERT / ALBERT configuration (Hugging Face BertConfig / AlbertConfig fields, camelCased). */
export interface BertConfig {
  vocabSize: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  hiddenAct: HiddenAct;
  layerNormEps: number;
  maxPositionEmbeddings: number;
  typeVocabSize: number;
  hiddenDropout: number;
  attentionDropout: number;
  initializerRange: number;
  /** 'pooler' = tanh dense on CLS (DSMD), 'cls' = last_hidden_state[:,0], 'mean' = masked mean. */
  feature: 'pooler' | 'cls' | 'mean';
  /**
   * BERT only (ALBERT has its own): a factorised embedding of this width (word, position and type
   * embeddings and their LayerNorm at E), mapped to hiddenSize by a trained linear `embeddings.projection`;
   * unset or equal to hiddenSize: the usual BERT embedding. E = 100 takes GloVe's vectors as they are.
   */
  embeddingSize?: number;
  /** ALBERT only: factorised embedding size, shared layer groups. */
  albert?: { embeddingSize: number; numHiddenGroups: number; innerGroupNum: number };
}

export const BERT_DEFAULTS: BertConfig = {
  vocabSize: 30522,
  hiddenSize: 768,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  intermediateSize: 3072,
  hiddenAct: 'gelu',
  layerNormEps: 1e-12,
  maxPositionEmbeddings: 512,
  typeVocabSize: 2,
  hiddenDropout: 0.1,
  attentionDropout: 0.1,
  initializerRange: 0.02,
  feature: 'pooler',
  embeddingSize: undefined, // = hiddenSize (listed so a config may override it: student.overrides.text.embeddingSize)
};

/** The width of the word embeddings (ALBERT's or BERT's factorised embeddingSize, else hiddenSize). */
export const embeddingWidth = (c: BertConfig): number =>
  c.albert ? c.albert.embeddingSize : (c.embeddingSize ?? c.hiddenSize);

export function bertSpecs(c: BertConfig): ParamSpec[] {
  const D = c.hiddenSize;
  const std = c.initializerRange;
  const E = embeddingWidth(c);
  const s: ParamSpec[] = [
    { name: 'embeddings.word_embeddings.weight', shape: [c.vocabSize, E], init: { kind: 'normal', std } },
    {
      name: 'embeddings.position_embeddings.weight',
      shape: [c.maxPositionEmbeddings, E],
      init: { kind: 'normal', std },
    },
    { name: 'embeddings.token_type_embeddings.weight', shape: [c.typeVocabSize, E], init: { kind: 'normal', std } },
    ...P.layerNorm('embeddings.LayerNorm', E),
  ];
  if (!c.albert && E !== D) s.push(...P.linear('embeddings.projection', E, D, std));
  if (c.albert) {
    s.push(...P.linear('encoder.embedding_hidden_mapping_in', E, D, std));
    for (let g = 0; g < c.albert.numHiddenGroups; g++) {
      for (let i = 0; i < c.albert.innerGroupNum; i++) {
        const q = `encoder.albert_layer_groups.${g}.albert_layers.${i}`;
        s.push(
          ...P.layerNorm(`${q}.full_layer_layer_norm`, D),
          ...P.linear(`${q}.attention.query`, D, D, std),
          ...P.linear(`${q}.attention.key`, D, D, std),
          ...P.linear(`${q}.attention.value`, D, D, std),
          ...P.linear(`${q}.attention.dense`, D, D, std),
          ...P.layerNorm(`${q}.attention.LayerNorm`, D),
          ...P.linear(`${q}.ffn`, D, c.intermediateSize, std),
          ...P.linear(`${q}.ffn_output`, c.intermediateSize, D, std),
        );
      }
    }
    s.push(...P.linear('pooler', D, D, std));
  } else {
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const q = `encoder.layer.${l}`;
      s.push(
        ...P.linear(`${q}.attention.self.query`, D, D, std),
        ...P.linear(`${q}.attention.self.key`, D, D, std),
        ...P.linear(`${q}.attention.self.value`, D, D, std),
        ...P.linear(`${q}.attention.output.dense`, D, D, std),
        ...P.layerNorm(`${q}.attention.output.LayerNorm`, D),
        ...P.linear(`${q}.intermediate.dense`, D, c.intermediateSize, std),
        ...P.linear(`${q}.output.dense`, c.intermediateSize, D, std),
        ...P.layerNorm(`${q}.output.LayerNorm`, D),
      );
    }
    s.push(...P.linear('pooler.dense', D, D, std));
  }
  return s;
}

/**
 * BERT / ALBERT on any engine: word + position + type-0 embeddings, LN; ALBERT maps them to the
 * hidden size and shares its layer groups; post-LN blocks a = LN(h + Attn(h)); h = LN(a + FFN(a)).
 * Features: the pooler tanh(W h_CLS + b), CLS, or the masked mean sum(h m) / max(sum(m), 1).
 */
export function bertTower<T>(
  o: Ops<T>,
  p: TensorParams<T>,
  c: BertConfig,
  input: { ids: T; mask: T },
  opts: TowerOptions = {},
): TowerOutput<T> {
  const { ids, mask } = input;
  const [B, L] = o.shape(ids);
  const D = c.hiddenSize;
  if (L > c.maxPositionEmbeddings)
    throw new DistillError(
      `Text length ${L} exceeds maxPositionEmbeddings ${c.maxPositionEmbeddings}: lower maxLength.`,
      2,
    );
  const words = o.gather(p['embeddings.word_embeddings.weight'], ids);
  const pos = o.sliceAxis(p['embeddings.position_embeddings.weight'], 0, 0, L);
  const type0 = o.sliceAxis(p['embeddings.token_type_embeddings.weight'], 0, 0, 1);
  let h = o.dropout(
    norm(o, p, 'embeddings.LayerNorm', o.add(o.add(words, pos), type0), c.layerNormEps),
    c.hiddenDropout,
  );
  if (!c.albert && embeddingWidth(c) !== D) h = dense(o, p, 'embeddings.projection', h);
  const maskAdd = additiveMask(o, mask);
  /** Names: [q, k, v, attnOut, attnLN, ffnIn, ffnOut, outLN]. */
  const block = ([qn, kn, vn, on, aln, fin, fon, oln]: string[]) => {
    const ctx = attention(
      o,
      dense(o, p, qn, h),
      dense(o, p, kn, h),
      dense(o, p, vn, h),
      c.numAttentionHeads,
      maskAdd,
      c.attentionDropout,
    );
    const a = norm(o, p, aln, o.add(h, o.dropout(dense(o, p, on, ctx), c.hiddenDropout)), c.layerNormEps);
    h = norm(
      o,
      p,
      oln,
      o.add(a, o.dropout(dense(o, p, fon, activation(o, dense(o, p, fin, a), c.hiddenAct)), c.hiddenDropout)),
      c.layerNormEps,
    );
  };
  if (c.albert) {
    h = dense(o, p, 'encoder.embedding_hidden_mapping_in', h);
    const { numHiddenGroups: G, innerGroupNum: I } = c.albert;
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const g = Math.floor(l / (c.numHiddenLayers / G));
      for (let i = 0; i < I; i++) {
        const q = `encoder.albert_layer_groups.${g}.albert_layers.${i}`;
        block([
          `${q}.attention.query`,
          `${q}.attention.key`,
          `${q}.attention.value`,
          `${q}.attention.dense`,
          `${q}.attention.LayerNorm`,
          `${q}.ffn`,
          `${q}.ffn_output`,
          `${q}.full_layer_layer_norm`,
        ]);
      }
    }
  } else {
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const q = `encoder.layer.${l}`;
      block([
        `${q}.attention.self.query`,
        `${q}.attention.self.key`,
        `${q}.attention.self.value`,
        `${q}.attention.output.dense`,
        `${q}.attention.output.LayerNorm`,
        `${q}.intermediate.dense`,
        `${q}.output.dense`,
        `${q}.output.LayerNorm`,
      ]);
    }
  }
  const cls = o.reshape(o.sliceAxis(h, 1, 0, 1), [B, D]);
  const pooler =
    c.feature === 'pooler' || opts.pooler ? o.tanh(dense(o, p, c.albert ? 'pooler' : 'pooler.dense', cls)) : undefined; // tanh(W h_CLS + b)
  let features = pooler as T;
  if (c.feature === 'cls') features = cls;
  else if (c.feature === 'mean') {
    const m = o.reshape(mask, [B, L, 1]);
    features = o.div(o.reduceSum(o.mul(h, m), [1]), o.maximumConst(o.reduceSum(m, [1]), 1)); // an all-padding row gives 0, not NaN
  }
  return { features, lastHiddenState: h, pooler };
}

export function createBert(config: Partial<BertConfig>): TextEncoder {
  const c: BertConfig = { ...BERT_DEFAULTS, ...config };
  checkHeads(c);
  if (c.albert && c.numHiddenLayers % c.albert.numHiddenGroups)
    throw new Error('ALBERT numHiddenLayers must be a multiple of numHiddenGroups');
  if (c.embeddingSize !== undefined && !(Number.isInteger(c.embeddingSize) && c.embeddingSize > 0))
    throw new DistillError(`BERT embeddingSize must be a positive integer, got ${String(c.embeddingSize)}.`, 2);
  return defineEncoder({
    type: c.albert ? 'albert' : 'bert',
    modality: 'text',
    featureDim: c.hiddenSize,
    config: c,
    specs: () => bertSpecs(c),
    tower: (o, p, x, opts) => bertTower(o, p, c, x, opts),
    // HF BertModel checkpoints may carry position_ids buffers or MLM heads: not used by an encoder.
    ignorable: (name) => name.endsWith('position_ids') || name.startsWith('cls.') || name.startsWith('predictions.'),
  });
}

export const ALBERT_DEFAULT_EXTRA = { embeddingSize: 128, numHiddenGroups: 1, innerGroupNum: 1 };
