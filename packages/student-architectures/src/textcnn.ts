import type { Ops, TensorParams } from '@distill/core';
import { defineEncoder, type TextEncoder, type TowerOutput } from './encoder.js';
import { conv1dSame } from './ops.js';
import type { ParamSpec } from './params.js';

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

export const TEXTCNN_DEFAULTS: TextCnnConfig = {
  vocabSize: 30522,
  embeddingSize: 300,
  kernelWidths: [2, 3, 4, 5],
  filters: 256,
  dropout: 0.1,
  initializerRange: 0.02,
};

export function textCnnSpecs(c: TextCnnConfig): ParamSpec[] {
  const s: ParamSpec[] = [
    {
      name: 'embeddings.word_embeddings.weight',
      shape: [c.vocabSize, c.embeddingSize],
      init: { kind: 'normal', std: c.initializerRange },
    },
  ];
  for (const w of c.kernelWidths) {
    s.push(
      {
        name: `convs.${w}.weight`,
        shape: [w, c.embeddingSize, c.filters],
        init: { kind: 'heNormal', fanIn: w * c.embeddingSize },
        hf: 'conv1d',
      },
      { name: `convs.${w}.bias`, shape: [c.filters], init: { kind: 'zeros' } },
    );
  }
  return s;
}

/** TextCNN on any engine: h_w = max_t relu(conv_w(x))_t over real tokens (x = masked embeddings), concatenated over widths. */
export function textCnnTower<T>(
  o: Ops<T>,
  p: TensorParams<T>,
  c: TextCnnConfig,
  input: { ids: T; mask: T },
): TowerOutput<T> {
  const { ids, mask } = input;
  const [B, L] = o.shape(ids);
  const x = o.dropout(
    o.mul(o.gather(p['embeddings.word_embeddings.weight'], ids), o.reshape(mask, [B, L, 1])),
    c.dropout,
  );
  const neg = o.reshape(o.scale(o.sub(mask, o.scalar(mask, 1)), 1e4), [B, 1, L]); // 0 on tokens, -1e4 on padding
  const pooled = c.kernelWidths.map((w) =>
    o.reduceMax(o.add(o.relu(conv1dSame(o, x, p[`convs.${w}.weight`], p[`convs.${w}.bias`])), neg), [2]),
  );
  return { features: o.concat(pooled, 1) };
}

export function createTextCnn(config: Partial<TextCnnConfig>): TextEncoder {
  const c: TextCnnConfig = { ...TEXTCNN_DEFAULTS, ...config };
  return defineEncoder({
    type: 'textcnn',
    modality: 'text',
    featureDim: c.filters * c.kernelWidths.length,
    config: c,
    specs: () => textCnnSpecs(c),
    tower: (o, p, x) => textCnnTower(o, p, c, x),
  });
}
