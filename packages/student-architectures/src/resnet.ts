import type { Ops, TensorParams } from '@distill/core';
import { defineEncoder, type ImageEncoder, type TowerOutput } from './encoder.js';
import { dense, norm, patchify } from './ops.js';
import type { ParamSpec } from './params.js';

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
  imageSize: 224,
  numChannels: 3,
  stemChannels: 64,
  stageChannels: [64, 128, 256, 512],
  blocksPerStage: [2, 2, 2, 2],
  stemPatch: 4,
  layerNormEps: 1e-5,
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
    {
      name: 'stem.weight',
      shape: [c.numChannels * P * P, c.stemChannels],
      init: { kind: 'heNormal', fanIn: c.numChannels * P * P },
    },
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
  s.push(
    { name: 'norm.weight', shape: [cin], init: { kind: 'ones' } },
    { name: 'norm.bias', shape: [cin], init: { kind: 'zeros' } },
  );
  return s;
}

/**
 * ResNet on any engine (NCHW): a patchify stem relu(W patches + b), residual blocks
 * x = relu(shortcut(x) + alpha F(x)) with F = conv2(relu(conv1(x))) ('same' convs, stride 2 in the
 * first block of every stage after the first), features = LayerNorm(global mean of the last stage).
 */
export function resnetTower<T>(o: Ops<T>, p: TensorParams<T>, c: ResNetConfig, pixels: T): TowerOutput<T> {
  const B = o.shape(pixels)[0];
  const { patches, gh, gw } = patchify(o, pixels, c.stemPatch);
  const stem = o.relu(dense(o, p, 'stem', patches));
  let x = o.transpose(o.reshape(stem, [B, gh, gw, c.stemChannels]), [0, 3, 1, 2]);
  const conv = (name: string, inp: T, stride: number) =>
    o.conv2dSame(inp, p[`${name}.weight`], p[`${name}.bias`], stride);
  c.stageChannels.forEach((_, si) => {
    for (let b = 0; b < c.blocksPerStage[si]; b++) {
      const q = `stages.${si}.blocks.${b}`;
      const stride = b === 0 && si > 0 ? 2 : 1;
      const y = conv(`${q}.conv2`, o.relu(conv(`${q}.conv1`, x, stride)), 1);
      const short = p[`${q}.shortcut.weight`] ? conv(`${q}.shortcut`, x, stride) : x;
      x = o.relu(o.add(short, o.mul(y, p[`${q}.scale`])));
    }
  });
  return { features: norm(o, p, 'norm', o.reduceMean(x, [2, 3]), c.layerNormEps) };
}

export function createResNet(config: Partial<ResNetConfig>): ImageEncoder {
  const c: ResNetConfig = { ...RESNET_DEFAULTS, ...config };
  if (c.stageChannels.length !== c.blocksPerStage.length)
    throw new Error('ResNet stageChannels and blocksPerStage must have the same length');
  if (c.imageSize % (c.stemPatch * 2 ** (c.stageChannels.length - 1)))
    throw new Error(`ResNet imageSize ${c.imageSize} must be a multiple of stemPatch * 2^(stages-1)`);
  return defineEncoder({
    type: 'resnet',
    modality: 'image',
    featureDim: c.stageChannels[c.stageChannels.length - 1],
    config: c,
    specs: () => resnetSpecs(c),
    tower: (o, p, x) => resnetTower(o, p, c, x),
  });
}
