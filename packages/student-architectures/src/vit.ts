import { tf } from '@distill/core';
import type { EncoderOutput, ImageEncoder } from './encoder.js';
import { activation, attention, dropout, layerNorm, linear, type HiddenAct } from './ops.js';
import { P, type ParamSpec, type Params } from './params.js';

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
  imageSize: 224, patchSize: 16, numChannels: 3, hiddenSize: 768, numHiddenLayers: 12, numAttentionHeads: 12,
  intermediateSize: 3072, hiddenAct: 'gelu', layerNormEps: 1e-12, qkvBias: true, distillationToken: false,
  feature: 'cls', addPooler: false, poolerAct: 'tanh', hiddenDropout: 0, attentionDropout: 0, initializerRange: 0.02,
};

export function vitSpecs(c: VitConfig): ParamSpec[] {
  const D = c.hiddenSize;
  const std = c.initializerRange;
  const nPatches = (c.imageSize / c.patchSize) ** 2;
  const nTok = nPatches + 1 + (c.distillationToken ? 1 : 0);
  const s: ParamSpec[] = [
    { name: 'embeddings.cls_token', shape: [1, 1, D], init: { kind: 'normal', std } },
    ...(c.distillationToken ? [{ name: 'embeddings.distillation_token', shape: [1, 1, D], init: { kind: 'normal', std } } as ParamSpec] : []),
    { name: 'embeddings.position_embeddings', shape: [1, nTok, D], init: { kind: 'normal', std } },
    // the patch conv as a linear map over flattened (channel, row, col) patches: HF [D, C, p, p] = [D, C*p*p]
    { name: 'embeddings.patch_embeddings.projection.weight', shape: [c.numChannels * c.patchSize * c.patchSize, D], init: { kind: 'normal', std }, hf: 'linear', hfDims: [D, c.numChannels, c.patchSize, c.patchSize] },
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

/** Non-overlapping P x P patches of NCHW pixels -> [B * gh * gw, C * P * P], row-major patch order, (c, y, x) inside. */
export function patchify(pixels: tf.Tensor4D, P: number): { patches: tf.Tensor2D; gh: number; gw: number } {
  const [B, C, H, W] = pixels.shape;
  const gh = H / P;
  const gw = W / P;
  const x = tf.reshape(pixels, [B * C, gh, P, gw, P]);
  const t = tf.transpose(x, [0, 1, 3, 2, 4]); // [B*C, gh, gw, P, P]
  const patches = tf.reshape(tf.transpose(tf.reshape(t, [B, C, gh * gw, P * P]), [0, 2, 1, 3]), [B * gh * gw, C * P * P]) as tf.Tensor2D;
  return { patches, gh, gw };
}

/**
 * Patch embedding: NCHW pixels -> [B, nPatches, D], patches in row-major order (as PyTorch's conv +
 * flatten). Non-overlapping patches make the conv one matMul over (C, p, p)-flattened patches.
 */
function patchEmbed(p: Params, c: VitConfig, pixels: tf.Tensor4D): tf.Tensor3D {
  const { patches, gh, gw } = patchify(pixels, c.patchSize);
  return tf.reshape(linear(patches, p['embeddings.patch_embeddings.projection.weight'], p['embeddings.patch_embeddings.projection.bias']), [pixels.shape[0], gh * gw, c.hiddenSize]);
}

export function vitForward(p: Params, c: VitConfig, pixels: tf.Tensor4D, training: boolean): EncoderOutput {
  const B = pixels.shape[0];
  const D = c.hiddenSize;
  if (pixels.shape[1] !== c.numChannels || pixels.shape[2] !== c.imageSize || pixels.shape[3] !== c.imageSize) {
    throw new Error(`ViT expects pixels [B, ${c.numChannels}, ${c.imageSize}, ${c.imageSize}], got [${pixels.shape}]`);
  }
  const patches = patchEmbed(p, c, pixels);
  const toks = [tf.broadcastTo(p['embeddings.cls_token'], [B, 1, D])];
  if (c.distillationToken) toks.push(tf.broadcastTo(p['embeddings.distillation_token'], [B, 1, D]));
  let h = tf.add(tf.concat([...toks, patches], 1), p['embeddings.position_embeddings']);
  h = dropout(h, c.hiddenDropout, training);
  const L = h.shape[1];
  for (let l = 0; l < c.numHiddenLayers; l++) {
    const q = `encoder.layer.${l}`;
    // pre-LN: h = h + Attn(LN(h)); h = h + MLP(LN(h))
    const x = layerNorm(h, p[`${q}.layernorm_before.weight`], p[`${q}.layernorm_before.bias`], c.layerNormEps);
    const a = `${q}.attention.attention`;
    const ctx = attention(
      linear(x, p[`${a}.query.weight`], p[`${a}.query.bias`]),
      linear(x, p[`${a}.key.weight`], p[`${a}.key.bias`]),
      linear(x, p[`${a}.value.weight`], p[`${a}.value.bias`]),
      c.numAttentionHeads, undefined, c.attentionDropout, training,
    );
    h = tf.add(h, dropout(linear(ctx, p[`${q}.attention.output.dense.weight`], p[`${q}.attention.output.dense.bias`]), c.hiddenDropout, training));
    const y = layerNorm(h, p[`${q}.layernorm_after.weight`], p[`${q}.layernorm_after.bias`], c.layerNormEps);
    const m = activation(linear(y, p[`${q}.intermediate.dense.weight`], p[`${q}.intermediate.dense.bias`]), c.hiddenAct);
    h = tf.add(h, dropout(linear(m, p[`${q}.output.dense.weight`], p[`${q}.output.dense.bias`]), c.hiddenDropout, training));
  }
  const last = layerNorm(h, p['layernorm.weight'], p['layernorm.bias'], c.layerNormEps) as tf.Tensor3D;
  const cls = tf.reshape(tf.slice(last, [0, 0, 0], [B, 1, D]), [B, D]) as tf.Tensor2D;
  let pooler: tf.Tensor2D | undefined;
  if (p['pooler.dense.weight']) pooler = activation(linear(cls, p['pooler.dense.weight'], p['pooler.dense.bias']), c.poolerAct) as tf.Tensor2D;
  let features = cls;
  if (c.feature === 'pooler') features = pooler!;
  else if (c.feature === 'cls-dist') {
    if (!c.distillationToken) throw new Error("ViT feature 'cls-dist' needs distillationToken (DeiT)");
    features = tf.mean(tf.slice(last, [0, 0, 0], [B, 2, D]), 1) as tf.Tensor2D;
  }
  void L;
  return { features, lastHiddenState: last, poolerOutput: pooler };
}

export function createVit(config: Partial<VitConfig>): ImageEncoder {
  const c: VitConfig = { ...VIT_DEFAULTS, ...config };
  if (c.imageSize % c.patchSize) throw new Error(`imageSize ${c.imageSize} is not a multiple of patchSize ${c.patchSize}`);
  if (c.hiddenSize % c.numAttentionHeads) throw new Error(`hiddenSize ${c.hiddenSize} is not a multiple of numAttentionHeads ${c.numAttentionHeads}`);
  return {
    type: c.distillationToken ? 'deit' : 'vit',
    modality: 'image',
    featureDim: c.hiddenSize,
    config: c,
    specs: () => vitSpecs(c),
    forward: (p, x, training) => vitForward(p, c, x, training),
    ignorable: (name) => name.startsWith('pooler.'),
  };
}
