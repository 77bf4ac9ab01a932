import { readFileSync } from 'node:fs';
import { sha256, type Ops, type TensorParams } from '@distill/core';
import {
  loadMobileNetV2,
  MOBILENET_V2_FILE,
  mobilenetV2Config,
  type MobileNetV2Block,
  type WeightTensor,
} from '@distill/pretrained';
import { defineEncoder, type FrozenPart, type ImageEncoder, type TowerOutput } from './encoder.js';
import type { ParamSpec } from './params.js';

/**
 * MobileNetV2 (Sandler et al. 2018, alpha 1.0) with its batch norms folded into the convolutions, so
 * every conv has a bias and eval equals train: the stem (3x3 stride 2, 32 channels), 17 inverted
 * residual blocks (1x1 expand, 3x3 depthwise, 1x1 project; a residual where the shape allows), the last
 * 1x1 conv to 1280, and nsfwjs's dense head. ReLU6 = min(relu(x), 6). The weights come from
 * @distill/pretrained (`loadMobileNetV2`). Features = the global mean of the chosen layer's map.
 *
 * Padding: Keras pads (0, 1) before each stride-2 conv and then uses 'valid', which equals TensorFlow
 * 'same' when the input side is even: image sizes are multiples of 32 so that it always is.
 */
export interface MobileNetV2TowerConfig {
  imageSize: number;
  /** The feature layer: `block_0` ... `block_16` (a block's output), `last` (the 1280-d conv), `head_0` / `head_1` (the dense head's hidden layers). */
  layer: string;
  numChannels: number;
  /**
   * Frozen: the trunk (to `layer`) is the converted ImageNet weights as constants, not parameters (no
   * gradient, never updated, not saved: rebuilt from @distill/pretrained); the tower's parameters are a head
   * over the pooled features, LayerNorm + linear to `hidden` + GELU (`hidden` is then the feature size).
   * Training only forwards the trunk. Default false: every layer is a parameter (fine-tuned).
   */
  frozen?: boolean;
  /** The frozen tower's head width (default 512). */
  hidden?: number;
}

export const MOBILENET_V2_DEFAULTS: MobileNetV2TowerConfig = { imageSize: 224, layer: 'last', numChannels: 3 };
const FROZEN_HIDDEN = 512;

let assetHash: string | undefined;
/** sha256 of the converted MobileNetV2 file's bytes (once per process). */
function assetSha(): string {
  return (assetHash ??= sha256(readFileSync(MOBILENET_V2_FILE)));
}

const BLOCKS: MobileNetV2Block[] = mobilenetV2Config().blocks;
const HEAD = mobilenetV2Config().head;

/** The channels of a feature layer. */
export function mobilenetV2LayerDim(layer: string): number {
  const m = /^block_(\d+)$/.exec(layer);
  if (m && +m[1] < BLOCKS.length) return BLOCKS[+m[1]].outChannels;
  if (layer === 'last') return 1280;
  const h = /^head_([01])$/.exec(layer);
  if (h) return HEAD[+h[1]];
  throw new Error(
    `MobileNetV2 layer '${layer}' is not one of block_0..block_${BLOCKS.length - 1}, last, head_0, head_1`,
  );
}

/** How deep a layer is (blocks 0-16, then last = 17, head_0 = 18, head_1 = 19): the deepest of several layers needs the most weights. */
export function mobilenetV2Depth(layer: string): number {
  mobilenetV2LayerDim(layer);
  return depthOf(layer);
}

function depthOf(layer: string): number {
  const m = /^block_(\d+)$/.exec(layer);
  return m ? +m[1] : layer === 'last' ? BLOCKS.length : BLOCKS.length + 1 + Number(layer.slice(5));
}

function conv(name: string, k: number, cin: number, cout: number, depthwise = false): ParamSpec[] {
  return [
    {
      name: `${name}.weight`,
      shape: [k, k, depthwise ? 1 : cin, cout],
      init: { kind: 'heNormal', fanIn: k * k * (depthwise ? 1 : cin) },
    },
    { name: `${name}.bias`, shape: [cout], init: { kind: 'zeros' } },
  ];
}

/** The parameters up to the feature layer (names as @distill/pretrained's loadMobileNetV2 gives them). */
export function mobilenetV2Specs(c: MobileNetV2TowerConfig): ParamSpec[] {
  if (c.frozen) return frozenHeadSpecs(c);
  const depth = depthOf(c.layer);
  const s: ParamSpec[] = conv('stem', 3, c.numChannels, 32);
  BLOCKS.forEach((b, i) => {
    if (i > depth) return;
    const hidden = b.inChannels * b.expand;
    if (i > 0) s.push(...conv(`blocks.${i}.expand`, 1, b.inChannels, hidden));
    s.push(
      ...conv(`blocks.${i}.depthwise`, 3, hidden, hidden, true),
      ...conv(`blocks.${i}.project`, 1, hidden, b.outChannels),
    );
  });
  if (depth >= BLOCKS.length) s.push(...conv('last', 1, BLOCKS[BLOCKS.length - 1].outChannels, 1280));
  let din = 1280;
  for (let h = 0; h <= depth - BLOCKS.length - 1; h++) {
    s.push(
      { name: `head.${h}.weight`, shape: [din, HEAD[h]], init: { kind: 'heNormal', fanIn: din } },
      { name: `head.${h}.bias`, shape: [HEAD[h]], init: { kind: 'zeros' } },
    );
    din = HEAD[h];
  }
  return s;
}

/** The frozen tower's trained head: LayerNorm + linear (its names do not clash with the trunk's `head.{i}`). */
function frozenHeadSpecs(c: MobileNetV2TowerConfig): ParamSpec[] {
  const F = mobilenetV2LayerDim(c.layer);
  const H = c.hidden ?? FROZEN_HIDDEN;
  return [
    { name: 'pool_norm.weight', shape: [F], init: { kind: 'ones' } },
    { name: 'pool_norm.bias', shape: [F], init: { kind: 'zeros' } },
    { name: 'pool_fc.weight', shape: [F, H], init: { kind: 'normal', std: Math.sqrt(1 / F) } },
    { name: 'pool_fc.bias', shape: [H], init: { kind: 'zeros' } },
  ];
}

/** The converted trunk weights up to `c.layer` as constants of the engine (a frozen tower's trunk). */
export function frozenTrunkParams<T>(o: Ops<T>, like: T, c: MobileNetV2TowerConfig): TensorParams<T> {
  const weights = mobilenetV2AssetWeights(
    { ...c, frozen: false },
    (problem) => new Error(`The MobileNetV2 ${problem}.`),
  );
  return Object.fromEntries(Object.entries(weights).map(([name, w]) => [name, o.constant(like, w.data, w.shape)]));
}

/**
 * The converted weights of every parameter the (truncated, unfrozen) tower `c` has, checked by shape; `fail`
 * makes the error for a missing or mis-shaped tensor from its description.
 */
export function mobilenetV2AssetWeights(
  c: MobileNetV2TowerConfig,
  fail: (problem: string) => Error,
): Record<string, WeightTensor> {
  const { weights } = loadMobileNetV2();
  const out: Record<string, WeightTensor> = {};
  for (const s of mobilenetV2Specs(c)) {
    const w = weights[s.name];
    if (!w || w.shape.join() !== s.shape.join())
      throw fail(`asset has ${w ? `[${w.shape}]` : 'no tensor'} for ${s.name} (the tower needs [${s.shape}])`);
    out[s.name] = w;
  }
  return out;
}

/**
 * MobileNetV2 on any engine (NCHW pixels, already normalised as the weights expect). Returns the pooled
 * feature of `c.layer`, and the pooled features of `taps` (other layers on the way) in `taps`.
 */
export function mobilenetV2Tower<T>(
  o: Ops<T>,
  p: TensorParams<T>,
  c: MobileNetV2TowerConfig,
  pixels: T,
  taps: string[] = [],
): TowerOutput<T> & { taps: Record<string, T> } {
  const relu6 = (x: T) => o.minimumConst(o.relu(x), 6);
  const cv = (name: string, x: T, stride: number, group = 1) =>
    o.conv2dSame(x, p[`${name}.weight`], p[`${name}.bias`], stride, group);
  const pool = (x: T) => o.reduceMean(x, [2, 3]);
  const depth = Math.max(depthOf(c.layer), ...taps.map(depthOf));
  const out: Record<string, T> = {};
  const tap = (name: string, x: () => T) => {
    if (name === c.layer || taps.includes(name)) out[name] = x();
  };
  let x = relu6(cv('stem', pixels, 2));
  for (let i = 0; i < BLOCKS.length && i <= depth; i++) {
    const b = BLOCKS[i];
    const hidden = b.inChannels * b.expand;
    let y = i > 0 ? relu6(cv(`blocks.${i}.expand`, x, 1)) : x;
    y = relu6(cv(`blocks.${i}.depthwise`, y, b.stride, hidden));
    y = cv(`blocks.${i}.project`, y, 1);
    x = b.residual ? o.add(x, y) : y;
    tap(`block_${i}`, () => pool(x));
  }
  if (depth >= BLOCKS.length) {
    let f = pool(relu6(cv('last', x, 1)));
    tap('last', () => f);
    for (let h = 0; h <= depth - BLOCKS.length - 1; h++) {
      f = o.relu(o.linear(f, p[`head.${h}.weight`], p[`head.${h}.bias`]));
      const fh = f;
      tap(`head_${h}`, () => fh);
    }
  }
  return { features: out[c.layer], taps: out };
}

export function createMobileNetV2(config: Partial<MobileNetV2TowerConfig>): ImageEncoder {
  const c: MobileNetV2TowerConfig = { ...MOBILENET_V2_DEFAULTS, ...config };
  if (c.imageSize % 32)
    throw new Error(`MobileNetV2 imageSize ${c.imageSize} must be a multiple of 32 (96, 128, 160, 224, ...)`);
  if (c.frozen && c.numChannels !== 3)
    throw new Error(`A frozen MobileNetV2 tower takes RGB pixels (numChannels 3), got ${c.numChannels}.`);
  if (!c.frozen) {
    return defineEncoder({
      type: 'mobilenet-v2',
      modality: 'image',
      featureDim: mobilenetV2LayerDim(c.layer),
      config: c,
      specs: () => mobilenetV2Specs(c),
      tower: (o, p, x) => mobilenetV2Tower(o, p, c, x),
    });
  }
  // f = GELU(fc(LayerNorm(pool(trunk(x))))), the trunk constant
  const frozen: FrozenPart = {
    dim: mobilenetV2LayerDim(c.layer),
    fingerprint: () => sha256(JSON.stringify({ v: 1, weights: assetSha(), imageSize: c.imageSize, layer: c.layer })),
    trunk: (o, x) => mobilenetV2Tower(o, frozenTrunkParams(o, x, c), { ...c, frozen: false }, x).features,
    head: (o, p, f) => ({
      features: o.geluErf(
        o.linear(
          o.layerNorm(f, p['pool_norm.weight'], p['pool_norm.bias'], 1e-5),
          p['pool_fc.weight'],
          p['pool_fc.bias'],
        ),
      ),
    }),
  };
  return {
    ...defineEncoder({
      type: 'mobilenet-v2',
      modality: 'image',
      featureDim: c.hidden ?? FROZEN_HIDDEN,
      config: c,
      specs: () => mobilenetV2Specs(c),
      tower: (o, p, x) => frozen.head(o, p, frozen.trunk(o, x)),
    }),
    frozen,
  };
}
