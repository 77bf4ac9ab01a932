import { DistillError, type Ops, type TensorParams } from '@distill/core';
import { defineEncoder, type ImageEncoder, type TowerOptions, type TowerOutput } from './encoder.js';
import { activation, attention, checkHeads, dense, norm, patchify, type HiddenAct } from './ops.js';
import { P, type ParamSpec } from './params.js';

/** ViT / DeiT configuration (Hugging Face ViTConfig / DeiTConfig fields, camelCased). */
export interface VitConfig {
  imageSize: number;
  patchSize: number;
  numChannels: number;
  hiddenSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  intermediateSize: number;
  hiddenAct: HiddenAct;
  layerNormEps: number;
  qkvBias: boolean;
  /** DeiT: a distillation token after CLS. */
  distillationToken: boolean;
  /** Feature: 'cls' = last_hidden_state[:,0] (DSMD); 'cls-dist' = mean of CLS and distillation tokens (DeiT); 'pooler'. */
  feature: 'cls' | 'cls-dist' | 'pooler';
  /** Build the pooler (tanh dense on CLS); needed for feature 'pooler' and HF parity. */
  addPooler: boolean;
  poolerAct: HiddenAct;
  hiddenDropout: number;
  attentionDropout: number;
  initializerRange: number;
}

export const VIT_DEFAULTS: VitConfig = {
  imageSize: 224,
  patchSize: 16,
  numChannels: 3,
  hiddenSize: 768,
  numHiddenLayers: 12,
  numAttentionHeads: 12,
  intermediateSize: 3072,
  hiddenAct: 'gelu',
  layerNormEps: 1e-12,
  qkvBias: true,
  distillationToken: false,
  feature: 'cls',
  addPooler: false,
  poolerAct: 'tanh',
  hiddenDropout: 0,
  attentionDropout: 0,
  initializerRange: 0.02,
};

export function vitSpecs(c: VitConfig): ParamSpec[] {
  const D = c.hiddenSize;
  const std = c.initializerRange;
  const nPatches = (c.imageSize / c.patchSize) ** 2;
  const nTok = nPatches + 1 + (c.distillationToken ? 1 : 0);
  const s: ParamSpec[] = [
    { name: 'embeddings.cls_token', shape: [1, 1, D], init: { kind: 'normal', std } },
    ...(c.distillationToken
      ? [{ name: 'embeddings.distillation_token', shape: [1, 1, D], init: { kind: 'normal', std } } as ParamSpec]
      : []),
    { name: 'embeddings.position_embeddings', shape: [1, nTok, D], init: { kind: 'normal', std } },
    // the patch conv as a linear map over flattened (channel, row, col) patches: HF [D, C, p, p] = [D, C*p*p]
    {
      name: 'embeddings.patch_embeddings.projection.weight',
      shape: [c.numChannels * c.patchSize * c.patchSize, D],
      init: { kind: 'normal', std },
      hf: 'linear',
      hfDims: [D, c.numChannels, c.patchSize, c.patchSize],
    },
    { name: 'embeddings.patch_embeddings.projection.bias', shape: [D], init: { kind: 'zeros' } },
  ];
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const p = `encoder.layer.${l}`;
    s.push(
      ...P.linear(`${p}.attention.attention.query`, D, D, std, c.qkvBias),
      ...P.linear(`${p}.attention.attention.key`, D, D, std, c.qkvBias),
      ...P.linear(`${p}.attention.attention.value`, D, D, std, c.qkvBias),
      ...P.linear(`${p}.attention.output.dense`, D, D, std),
      ...P.linear(`${p}.intermediate.dense`, D, c.intermediateSize, std),
      ...P.linear(`${p}.output.dense`, c.intermediateSize, D, std),
      ...P.layerNorm(`${p}.layernorm_before`, D),
      ...P.layerNorm(`${p}.layernorm_after`, D),
    );
  }
  s.push(...P.layerNorm('layernorm', D));
  if (c.addPooler || c.feature === 'pooler') s.push(...P.linear('pooler.dense', D, D, std));
  return s;
}

/**
 * ViT / DeiT on any engine: NCHW pixels -> patch embedding (the non-overlapping patch conv as one
 * matMul over (C, p, p)-flattened patches), [CLS, (distillation,)] tokens + positions, pre-LN blocks
 * h = h + Attn(LN(h)); h = h + MLP(LN(h)), final LN. Features: CLS, mean of CLS and distillation
 * tokens ('cls-dist'), or the pooler act(W h_CLS + b).
 */
export function vitTower<T>(
  o: Ops<T>,
  p: TensorParams<T>,
  c: VitConfig,
  pixels: T,
  opts: TowerOptions = {},
): TowerOutput<T> {
  const [B, C, H, W] = o.shape(pixels);
  const D = c.hiddenSize;
  if (C !== c.numChannels || H !== c.imageSize || W !== c.imageSize) {
    throw new DistillError(
      `ViT expects pixels [B, ${c.numChannels}, ${c.imageSize}, ${c.imageSize}], got [${[B, C, H, W].join(', ')}]: resize the images to the student's imageSize.`,
      2,
    );
  }
  const { patches, gh, gw } = patchify(o, pixels, c.patchSize);
  const emb = o.reshape(dense(o, p, 'embeddings.patch_embeddings.projection', patches), [B, gh * gw, D]);
  const toks = [o.expand(p['embeddings.cls_token'], [B, 1, D])];
  if (c.distillationToken) toks.push(o.expand(p['embeddings.distillation_token'], [B, 1, D]));
  let h = o.dropout(o.add(o.concat([...toks, emb], 1), p['embeddings.position_embeddings']), c.hiddenDropout);
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const q = `encoder.layer.${l}`;
    const a = `${q}.attention.attention`;
    const x = norm(o, p, `${q}.layernorm_before`, h, c.layerNormEps);
    const ctx = attention(
      o,
      dense(o, p, `${a}.query`, x),
      dense(o, p, `${a}.key`, x),
      dense(o, p, `${a}.value`, x),
      c.numAttentionHeads,
      undefined,
      c.attentionDropout,
    );
    h = o.add(h, o.dropout(dense(o, p, `${q}.attention.output.dense`, ctx), c.hiddenDropout));
    const y = norm(o, p, `${q}.layernorm_after`, h, c.layerNormEps);
    h = o.add(
      h,
      o.dropout(
        dense(o, p, `${q}.output.dense`, activation(o, dense(o, p, `${q}.intermediate.dense`, y), c.hiddenAct)),
        c.hiddenDropout,
      ),
    );
  }
  const last = norm(o, p, 'layernorm', h, c.layerNormEps);
  const cls = o.reshape(o.sliceAxis(last, 1, 0, 1), [B, D]);
  const pooler =
    c.feature === 'pooler' || (opts.pooler && p['pooler.dense.weight'])
      ? activation(o, dense(o, p, 'pooler.dense', cls), c.poolerAct)
      : undefined;
  let features = cls;
  if (c.feature === 'pooler') features = pooler!;
  else if (c.feature === 'cls-dist') features = o.reduceMean(o.sliceAxis(last, 1, 0, 2), [1]);
  return { features, lastHiddenState: last, pooler };
}

export function createVit(config: Partial<VitConfig>): ImageEncoder {
  const c: VitConfig = { ...VIT_DEFAULTS, ...config };
  if (c.imageSize % c.patchSize)
    throw new Error(`imageSize ${c.imageSize} is not a multiple of patchSize ${c.patchSize}`);
  checkHeads(c);
  if (c.feature === 'cls-dist' && !c.distillationToken)
    throw new DistillError(
      "ViT feature 'cls-dist' needs the distillation token (DeiT): use feature 'cls' or a DeiT image tower.",
      2,
    );
  return defineEncoder({
    type: c.distillationToken ? 'deit' : 'vit',
    modality: 'image',
    featureDim: c.hiddenSize,
    config: c,
    specs: () => vitSpecs(c),
    tower: (o, p, x, opts) => vitTower(o, p, c, x, opts),
    ignorable: (name) => name.startsWith('pooler.'),
  });
}
