import { tf, type TokenizedBatch } from '@distill/core';
import type { EncoderOutput, TextEncoder } from './encoder.js';
import { activation, additiveMask, embeddingLookup, attention, dropout, layerNorm, linear, type HiddenAct } from './ops.js';
import { P, type ParamSpec, type Params } from './params.js';

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
  /** ALBERT only: factorised embedding size, shared layer groups. */
  albert?: { embeddingSize: number; numHiddenGroups: number; innerGroupNum: number };
}

export const BERT_DEFAULTS: BertConfig = {
  vocabSize: 30522, hiddenSize: 768, numHiddenLayers: 12, numAttentionHeads: 12, intermediateSize: 3072,
  hiddenAct: 'gelu', layerNormEps: 1e-12, maxPositionEmbeddings: 512, typeVocabSize: 2,
  hiddenDropout: 0.1, attentionDropout: 0.1, initializerRange: 0.02, feature: 'pooler',
};

export function bertSpecs(c: BertConfig): ParamSpec[] {
  const D = c.hiddenSize;
  const std = c.initializerRange;
  const E = c.albert ? c.albert.embeddingSize : D;
  const s: ParamSpec[] = [
    { name: 'embeddings.word_embeddings.weight', shape: [c.vocabSize, E], init: { kind: 'normal', std } },
    { name: 'embeddings.position_embeddings.weight', shape: [c.maxPositionEmbeddings, E], init: { kind: 'normal', std } },
    { name: 'embeddings.token_type_embeddings.weight', shape: [c.typeVocabSize, E], init: { kind: 'normal', std } },
    ...P.layerNorm('embeddings.LayerNorm', E),
  ];
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

function embed(p: Params, c: BertConfig, ids: tf.Tensor2D, training: boolean): tf.Tensor3D {
  const [B, L] = ids.shape;
  if (L > c.maxPositionEmbeddings) throw new Error(`Text length ${L} exceeds maxPositionEmbeddings ${c.maxPositionEmbeddings}`);
  const E = p['embeddings.word_embeddings.weight'].shape[1] as number;
  const words = embeddingLookup(p['embeddings.word_embeddings.weight'], ids);
  const pos = tf.slice(p['embeddings.position_embeddings.weight'], [0, 0], [L, E]);
  const type0 = tf.slice(p['embeddings.token_type_embeddings.weight'], [0, 0], [1, E]);
  const e = tf.add(tf.add(words, pos), type0);
  return dropout(layerNorm(e, p['embeddings.LayerNorm.weight'], p['embeddings.LayerNorm.bias'], c.layerNormEps), c.hiddenDropout, training) as tf.Tensor3D;
}

/** Post-LN block: a = LN(h + Attn(h)); h = LN(a + FFN(a)). Names: [q, k, v, attnOut, attnLN, ffnIn, ffnOut, outLN]. */
function postLnBlock(p: Params, c: BertConfig, h: tf.Tensor, mask: tf.Tensor, n: string[], training: boolean): tf.Tensor {
  const [qn, kn, vn, on, aln, fin, fon, oln] = n;
  const ctx = attention(linear(h, p[`${qn}.weight`], p[`${qn}.bias`]), linear(h, p[`${kn}.weight`], p[`${kn}.bias`]), linear(h, p[`${vn}.weight`], p[`${vn}.bias`]), c.numAttentionHeads, mask, c.attentionDropout, training);
  const a = layerNorm(tf.add(h, dropout(linear(ctx, p[`${on}.weight`], p[`${on}.bias`]), c.hiddenDropout, training)), p[`${aln}.weight`], p[`${aln}.bias`], c.layerNormEps);
  const m = activation(linear(a, p[`${fin}.weight`], p[`${fin}.bias`]), c.hiddenAct);
  return layerNorm(tf.add(a, dropout(linear(m, p[`${fon}.weight`], p[`${fon}.bias`]), c.hiddenDropout, training)), p[`${oln}.weight`], p[`${oln}.bias`], c.layerNormEps);
}

export function bertForward(p: Params, c: BertConfig, batch: TokenizedBatch, training: boolean): EncoderOutput {
  const [B, L] = batch.ids.shape;
  const D = c.hiddenSize;
  const mask = additiveMask(batch.mask);
  let h: tf.Tensor = embed(p, c, batch.ids, training);
  if (c.albert) {
    h = linear(h, p['encoder.embedding_hidden_mapping_in.weight'], p['encoder.embedding_hidden_mapping_in.bias']);
    const { numHiddenGroups: G, innerGroupNum: I } = c.albert;
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const g = Math.floor(l / (c.numHiddenLayers / G));
      for (let i = 0; i < I; i++) {
        const q = `encoder.albert_layer_groups.${g}.albert_layers.${i}`;
        h = postLnBlock(p, c, h, mask, [`${q}.attention.query`, `${q}.attention.key`, `${q}.attention.value`, `${q}.attention.dense`, `${q}.attention.LayerNorm`, `${q}.ffn`, `${q}.ffn_output`, `${q}.full_layer_layer_norm`], training);
      }
    }
  } else {
    for (let l = 0; l < c.numHiddenLayers; l++) {
      const q = `encoder.layer.${l}`;
      h = postLnBlock(p, c, h, mask, [`${q}.attention.self.query`, `${q}.attention.self.key`, `${q}.attention.self.value`, `${q}.attention.output.dense`, `${q}.attention.output.LayerNorm`, `${q}.intermediate.dense`, `${q}.output.dense`, `${q}.output.LayerNorm`], training);
    }
  }
  const last = h as tf.Tensor3D;
  const cls = tf.reshape(tf.slice(last, [0, 0, 0], [B, 1, D]), [B, D]) as tf.Tensor2D;
  const pn = c.albert ? 'pooler' : 'pooler.dense';
  const pooler = tf.tanh(linear(cls, p[`${pn}.weight`], p[`${pn}.bias`])) as tf.Tensor2D; // pooler = tanh(W h_CLS + b)
  let features = pooler;
  if (c.feature === 'cls') features = cls;
  else if (c.feature === 'mean') {
    const m = tf.reshape(tf.cast(batch.mask, 'float32'), [B, L, 1]);
    features = tf.div(tf.sum(tf.mul(last, m), 1), tf.maximum(tf.sum(m, 1), 1)) as tf.Tensor2D;
  }
  return { features, lastHiddenState: last, poolerOutput: pooler };
}

export function createBert(config: Partial<BertConfig>): TextEncoder {
  const c: BertConfig = { ...BERT_DEFAULTS, ...config };
  if (c.hiddenSize % c.numAttentionHeads) throw new Error(`hiddenSize ${c.hiddenSize} is not a multiple of numAttentionHeads ${c.numAttentionHeads}`);
  if (c.albert && c.numHiddenLayers % c.albert.numHiddenGroups) throw new Error('ALBERT numHiddenLayers must be a multiple of numHiddenGroups');
  return {
    type: c.albert ? 'albert' : 'bert',
    modality: 'text',
    featureDim: c.hiddenSize,
    config: c,
    specs: () => bertSpecs(c),
    forward: (p, b, training) => bertForward(p, c, b, training),
    // HF BertModel checkpoints may carry position_ids buffers or MLM heads: not used by an encoder.
    ignorable: (name) => name.endsWith('position_ids') || name.startsWith('cls.') || name.startsWith('predictions.'),
  };
}

export const ALBERT_DEFAULT_EXTRA = { embeddingSize: 128, numHiddenGroups: 1, innerGroupNum: 1 };
