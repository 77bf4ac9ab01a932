import { tf, type TokenizedBatch } from '@distill/core';
import type { EncoderOutput, TextEncoder } from './encoder.js';
import { conv1dSame, dropout, embeddingLookup } from './ops.js';
import type { ParamSpec, Params } from './params.js';

/**
 * TextCNN (Kim 2014): word embeddings, parallel 1-D convolutions of several widths with ReLU,
 * masked max-over-time pooling, concatenated. No transformer.
 */
export interface TextCnnConfig {
  vocabSize: number;
  embeddingSize: number;
  kernelWidths: number[];
  filters: number;
  dropout: number;
  initializerRange: number;
}

export const TEXTCNN_DEFAULTS: TextCnnConfig = { vocabSize: 30522, embeddingSize: 300, kernelWidths: [2, 3, 4, 5], filters: 256, dropout: 0.1, initializerRange: 0.02 };

export function textCnnSpecs(c: TextCnnConfig): ParamSpec[] {
  const s: ParamSpec[] = [{ name: 'embeddings.word_embeddings.weight', shape: [c.vocabSize, c.embeddingSize], init: { kind: 'normal', std: c.initializerRange } }];
  for (const w of c.kernelWidths) {
    s.push(
      { name: `convs.${w}.weight`, shape: [w, c.embeddingSize, c.filters], init: { kind: 'heNormal', fanIn: w * c.embeddingSize }, hf: 'conv1d' },
      { name: `convs.${w}.bias`, shape: [c.filters], init: { kind: 'zeros' } },
    );
  }
  return s;
}

export function textCnnForward(p: Params, c: TextCnnConfig, batch: TokenizedBatch, training: boolean): EncoderOutput {
  const [B, L] = batch.ids.shape;
  const m = tf.reshape(tf.cast(batch.mask, 'float32'), [B, L, 1]);
  const emb = embeddingLookup(p['embeddings.word_embeddings.weight'], batch.ids);
  const x = dropout(tf.mul(emb, m), c.dropout, training) as tf.Tensor3D;
  const neg = tf.mul(tf.sub(m, 1), 1e4); // 0 on tokens, -1e4 on padding
  const pooled = c.kernelWidths.map((w) => {
    const y = tf.relu(conv1dSame(x, p[`convs.${w}.weight`], p[`convs.${w}.bias`]));
    return tf.max(tf.add(y, neg), 1); // h_w = max_t relu(conv_w(x))_t over real tokens
  });
  return { features: tf.concat(pooled, 1) as tf.Tensor2D };
}

export function createTextCnn(config: Partial<TextCnnConfig>): TextEncoder {
  const c: TextCnnConfig = { ...TEXTCNN_DEFAULTS, ...config };
  return {
    type: 'textcnn',
    modality: 'text',
    featureDim: c.filters * c.kernelWidths.length,
    config: c,
    specs: () => textCnnSpecs(c),
    forward: (p, b, training) => textCnnForward(p, c, b, training),
  };
}
