import { tf } from '@distill/core';
import type { EncoderOutput, ImageEncoder } from './encoder.js';
import { conv2dSame, layerNorm, linear } from './ops.js';
import { patchify } from './vit.js';
import type { ParamSpec, Params } from './params.js';

/**
 * A small ResNet-style CNN image encoder. Basic blocks without batch norm: each residual branch is
 * scaled by a learned scalar that starts small (0.1, as in SkipInit/Fixup), so training needs no
 * batch statistics and eval equals train. Feature = LayerNorm(global average pool of the last stage).
 */
export interface ResNetConfig {
  imageSize: number;
  numChannels: number;
  /** Channels of the stem and of each stage. */
  stemChannels: number;
  stageChannels: number[];
  blocksPerStage: number[];
  /** The stem is a patchify conv (kernel = stride = stemPatch, as in ConvNeXt). Stages after the first halve the resolution. */
  stemPatch: number;
  layerNormEps: number;
}

export const RESNET_DEFAULTS: ResNetConfig = {
  imageSize: 224, numChannels: 3, stemChannels: 64, stageChannels: [64, 128, 256, 512], blocksPerStage: [2, 2, 2, 2], stemPatch: 4, layerNormEps: 1e-5,
};

function conv(name: string, k: number, cin: number, cout: number): ParamSpec[] {
  return [
    { name: `${name}.weight`, shape: [k, k, cin, cout], init: { kind: 'heNormal', fanIn: k * k * cin } },
    { name: `${name}.bias`, shape: [cout], init: { kind: 'zeros' } },
  ];
}

export function resnetSpecs(c: ResNetConfig): ParamSpec[] {
  const P = c.stemPatch;
  const s: ParamSpec[] = [
    { name: 'stem.weight', shape: [c.numChannels * P * P, c.stemChannels], init: { kind: 'heNormal', fanIn: c.numChannels * P * P } },
    { name: 'stem.bias', shape: [c.stemChannels], init: { kind: 'zeros' } },
  ];
  let cin = c.stemChannels;
  c.stageChannels.forEach((cout, si) => {
    for (let b = 0; b < c.blocksPerStage[si]; b++) {
      const q = `stages.${si}.blocks.${b}`;
      const inC = b === 0 ? cin : cout;
      s.push(...conv(`${q}.conv1`, 3, inC, cout), ...conv(`${q}.conv2`, 3, cout, cout));
      s.push({ name: `${q}.scale`, shape: [1], init: { kind: 'constant', value: 0.1 } });
      if (b === 0 && (si > 0 || inC !== cout)) s.push(...conv(`${q}.shortcut`, 1, inC, cout));
    }
    cin = cout;
  });
  s.push({ name: 'norm.weight', shape: [cin], init: { kind: 'ones' } }, { name: 'norm.bias', shape: [cin], init: { kind: 'zeros' } });
  return s;
}

function conv2d(p: Params, name: string, x: tf.Tensor4D, stride: number): tf.Tensor4D {
  return conv2dSame(x, p[`${name}.weight`], p[`${name}.bias`], stride as 1 | 2);
}

export function resnetForward(p: Params, c: ResNetConfig, pixels: tf.Tensor4D): EncoderOutput {
  const { patches, gh, gw } = patchify(pixels, c.stemPatch);
  let x = tf.reshape(linear(patches, p['stem.weight'], p['stem.bias'], 'relu'), [pixels.shape[0], gh, gw, c.stemChannels]) as tf.Tensor4D;
  c.stageChannels.forEach((_, si) => {
    for (let b = 0; b < c.blocksPerStage[si]; b++) {
      const q = `stages.${si}.blocks.${b}`;
      const stride = b === 0 && si > 0 ? 2 : 1;
      const y = conv2d(p, `${q}.conv2`, tf.relu(conv2d(p, `${q}.conv1`, x, stride)) as tf.Tensor4D, 1);
      const short = p[`${q}.shortcut.weight`] ? conv2d(p, `${q}.shortcut`, x, stride) : x;
      x = tf.relu(tf.add(short, tf.mul(y, p[`${q}.scale`]))) as tf.Tensor4D; // x = relu(shortcut(x) + alpha F(x))
    }
  });
  const pooled = tf.mean(x, [1, 2]) as tf.Tensor2D;
  return { features: layerNorm(pooled, p['norm.weight'], p['norm.bias'], c.layerNormEps) as tf.Tensor2D };
}

export function createResNet(config: Partial<ResNetConfig>): ImageEncoder {
  const c: ResNetConfig = { ...RESNET_DEFAULTS, ...config };
  if (c.stageChannels.length !== c.blocksPerStage.length) throw new Error('ResNet stageChannels and blocksPerStage must have the same length');
  if (c.imageSize % (c.stemPatch * 2 ** (c.stageChannels.length - 1))) throw new Error(`ResNet imageSize ${c.imageSize} must be a multiple of stemPatch * 2^(stages-1)`);
  return {
    type: 'resnet',
    modality: 'image',
    featureDim: c.stageChannels[c.stageChannels.length - 1],
    config: c,
    specs: () => resnetSpecs(c),
    forward: (p, x) => resnetForward(p, c, x),
  };
}
