import { readFileSync } from 'node:fs';
import { DistillError, readSafetensors, readSafetensorsHeader } from '@distill/base';
import { ASSETS_DIR } from './glove.js';

export const MOBILENET_V2_FILE = `${ASSETS_DIR}mobilenet-v2.safetensors`;

/** One weight tensor in distill's layout (convolutions [kh, kw, in / group, out], dense [in, out]). */
export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}

/** A block of MobileNetV2: expand (1x1, absent in block 0), depthwise 3x3, project (1x1). */
export interface MobileNetV2Block {
  expand: number;
  stride: 1 | 2;
  inChannels: number;
  outChannels: number;
  residual: boolean;
}

/** The architecture of the converted model (alpha 1.0): enough to run it (`mobilenetV2Tower` in @distill/student-architectures). */
export interface MobileNetV2Config {
  alpha: 1;
  stemChannels: 32;
  blocks: MobileNetV2Block[];
  lastChannels: 1280;
  /** The nsfwjs head: dense 1280 -> 256 (relu) -> 128 (relu) -> 5 (softmax). */
  head: number[];
  classes: string[];
  /** ReLU6 after every expand, depthwise, stem and last conv (none after project). */
  clip: 6;
  /** nsfwjs feeds pixels / 255 (values in [0, 1]); the frozen ImageNet blocks (0-10) were trained on [-1, 1]. */
  inputRange: [0, 1];
  /** Trained at 224 px; fully convolutional up to the last conv, so any multiple of 32 runs. */
  imageSize: 224;
}

/** (expansion t, channels c, repeats n, first stride s) of MobileNetV2 (Sandler et al. 2018, Table 2). */
const SETTINGS: [number, number, number, 1 | 2][] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

export function mobilenetV2Config(): MobileNetV2Config {
  const blocks: MobileNetV2Block[] = [];
  let cin = 32;
  for (const [t, c, n, s] of SETTINGS) {
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? s : 1;
      blocks.push({ expand: t, stride, inChannels: cin, outChannels: c, residual: stride === 1 && cin === c });
      cin = c;
    }
  }
  return {
    alpha: 1,
    stemChannels: 32,
    blocks,
    lastChannels: 1280,
    head: [256, 128, 5],
    classes: ['drawing', 'hentai', 'neutral', 'porn', 'sexy'],
    clip: 6,
    inputRange: [0, 1],
    imageSize: 224,
  };
}

export interface MobileNetV2Weights {
  config: MobileNetV2Config;
  /**
   * Distill names, batch norms folded into the convolutions (w * gamma / sqrt(var + eps), beta - mean *
   * gamma / sqrt(var + eps), eps 1e-3): `stem`, `blocks.{i}.expand|depthwise|project`, `last`
   * (`.weight`, `.bias`; depthwise weights [3, 3, 1, C] for group = C), `head.{0,1,2}` (dense).
   */
  weights: Record<string, WeightTensor>;
  /** Where they came from (PROVENANCE.md). */
  source: string;
}

let cached: MobileNetV2Weights | undefined;

/**
 * The MobileNetV2 of nsfwjs@4.4.0 (ImageNet weights; blocks 11-16, the last conv and the head fine-tuned
 * on nsfwjs's 5 classes), shipped as the uint8-quantised tensors it came with (2.6 MB): dequantised
 * (float = min + scale * q, as tfjs does) and folded here in float32. Loaded once per process.
 */
export function loadMobileNetV2(): MobileNetV2Weights {
  if (cached) return cached;
  let raw: Map<string, { shape: number[]; data: Float32Array }>;
  let meta: Record<string, string>;
  try {
    const bytes = readFileSync(MOBILENET_V2_FILE);
    meta = readSafetensorsHeader(bytes, MOBILENET_V2_FILE).metadata;
    raw = readSafetensors(bytes);
  } catch (e) {
    if (e instanceof DistillError) throw e;
    throw new DistillError(
      `The MobileNetV2 asset of @distill/pretrained is missing or unreadable (${(e as Error).message}). Reinstall @distill/pretrained, or re-run tools/convert-pretrained (PROVENANCE.md).`,
    );
  }
  const quant = JSON.parse(meta.quantization ?? '{}') as Record<string, [number, number]>;
  const get = (name: string): WeightTensor => {
    const t = raw.get(name);
    const q = quant[name];
    if (!t || !q)
      throw new DistillError(`The MobileNetV2 asset lacks '${name}'. Re-run tools/convert-pretrained (PROVENANCE.md).`);
    const [min, scale] = q;
    return { shape: t.shape, data: t.data.map((v) => v * scale + min) };
  };
  const weights: Record<string, WeightTensor> = {};
  /** Conv (kernel [kh, kw, in, out] or depthwise [kh, kw, C, 1]) followed by a batch norm, folded. */
  const fold = (to: string, conv: string, bn: string, depthwise = false) => {
    const k = get(depthwise ? `${conv}/depthwise_kernel` : `${conv}/kernel`);
    const [gamma, beta, mean, variance] = ['gamma', 'beta', 'moving_mean', 'moving_variance'].map(
      (p) => get(`${bn}/${p}`).data,
    );
    const out = gamma.length;
    const s = gamma.map((g, i) => g / Math.sqrt(variance[i] + 1e-3));
    const w = k.data.map((v, i) => v * s[i % out]); // the last axis is the output channel in both layouts
    const shape = depthwise ? [k.shape[0], k.shape[1], 1, k.shape[2]] : k.shape;
    weights[`${to}.weight`] = { shape, data: w };
    weights[`${to}.bias`] = { shape: [out], data: beta.map((b, i) => b - mean[i] * s[i]) };
  };
  const config = mobilenetV2Config();
  fold('stem', 'Conv1', 'bn_Conv1');
  config.blocks.forEach((_, i) => {
    const p = i === 0 ? 'expanded_conv' : `block_${i}`;
    if (i > 0) fold(`blocks.${i}.expand`, `${p}_expand`, `${p}_expand_BN`);
    fold(`blocks.${i}.depthwise`, `${p}_depthwise`, `${p}_depthwise_BN`, true);
    fold(`blocks.${i}.project`, `${p}_project`, `${p}_project_BN`);
  });
  fold('last', 'Conv_1', 'Conv_1_bn');
  ['dense_1', 'dense_2', 'dense_3'].forEach((d, i) => {
    weights[`head.${i}.weight`] = get(`${d}/kernel`);
    weights[`head.${i}.bias`] = get(`${d}/bias`);
  });
  cached = { config, weights, source: meta.source ?? 'nsfwjs' };
  return cached;
}
