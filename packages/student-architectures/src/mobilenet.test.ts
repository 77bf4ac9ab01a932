import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Graph } from '@distill/autodiff';
import { graphOps, initRuntime, OnnxRunner, tf, tfOps } from '@distill/core';
import { loadMobileNetV2 } from '@distill/pretrained';
import {
  createMobileNetV2,
  mobilenetV2LayerDim,
  mobilenetV2Specs,
  mobilenetV2Tower,
  type MobileNetV2TowerConfig,
} from './mobilenet.js';

/**
 * distill's MobileNetV2 (one tower over Ops<T>, batch norms folded, depthwise = grouped conv) against
 * tfjs's own run of the same nsfwjs model on real images (fixtures/mobilenet-v2-tfjs.json, written by
 * tools/convert-pretrained from nsfwjs@4.4.0: pixels, and the pooled outputs of layers on the way).
 */
interface Run {
  size: number;
  images: string[];
  pixelsUint8NHWC: string;
  pooled: Record<string, number[]>;
  dense_1?: number[];
  probabilities?: number[];
  block_12_add_map_image0?: number[];
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/mobilenet-v2-tfjs.json', import.meta.url), 'utf8')) as {
  runs: Run[];
};
const TAP: Record<string, string> = {
  block_2_add: 'block_2',
  block_5_add: 'block_5',
  block_9_add: 'block_9',
  block_12_add: 'block_12',
  block_15_add: 'block_15',
  block_16_project_BN: 'block_16',
  out_relu: 'last',
};

/** NCHW float pixels / 255 from the fixture's uint8 NHWC. */
function pixelsOf(r: Run): { data: Float32Array; shape: number[] } {
  const u8 = Buffer.from(r.pixelsUint8NHWC, 'base64');
  const [B, S] = [r.images.length, r.size];
  const data = new Float32Array(B * 3 * S * S);
  for (let b = 0; b < B; b++)
    for (let y = 0; y < S; y++)
      for (let x = 0; x < S; x++)
        for (let c = 0; c < 3; c++) data[((b * 3 + c) * S + y) * S + x] = u8[((b * S + y) * S + x) * 3 + c] / 255;
  return { data, shape: [B, 3, S, S] };
}

/** max |got - want| / max |want| */
function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let worst = 0,
    scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
  return worst / scale;
}

const TOL = 1e-4;

describe('MobileNetV2 tower = tfjs running nsfwjs (real images, 1e-4)', () => {
  const { weights } = loadMobileNetV2();
  beforeAll(async () => {
    await initRuntime('wasm', { quiet: true });
  });

  for (const r of fixture.runs) {
    const cfg: MobileNetV2TowerConfig = {
      imageSize: r.size,
      layer: r.size === 224 ? 'head_0' : 'last',
      numChannels: 3,
    };
    const taps = Object.values(TAP);
    const check = (out: Record<string, ArrayLike<number>>) => {
      for (const [k, name] of Object.entries(TAP)) expect(relErr(out[name], r.pooled[k]), name).toBeLessThan(TOL);
      if (r.dense_1) expect(relErr(out.head_0, r.dense_1), 'head_0 (dense_1)').toBeLessThan(TOL);
    };

    it(`graphOps -> onnxruntime at ${r.size} px (${r.images.length} images)`, async () => {
      const px = pixelsOf(r);
      const g = new Graph();
      const o = graphOps();
      const specs = mobilenetV2Specs(cfg);
      const p = Object.fromEntries(specs.map((s) => [s.name, g.input(s.name, s.shape)]));
      const t = mobilenetV2Tower(o, p, cfg, g.input('pixels', px.shape), taps);
      const names = Object.keys(t.taps);
      const runner = await OnnxRunner.create(
        g.encode(
          names.map((n) => t.taps[n]),
          names,
        ),
        { threads: 1 },
      );
      const feeds: Record<string, { data: Float32Array; dims: number[] }> = {
        pixels: { data: px.data, dims: px.shape },
      };
      for (const s of specs) feeds[s.name] = { data: weights[s.name].data, dims: weights[s.name].shape };
      const outs = await runner.run(feeds, names);
      await runner.release();
      check(Object.fromEntries(names.map((n, i) => [n, outs[i]])));
    });

    it(`tfOps at ${r.size} px`, () => {
      const out = tf.tidy(() => {
        const p = Object.fromEntries(
          mobilenetV2Specs(cfg).map((s) => [s.name, tf.tensor(weights[s.name].data, weights[s.name].shape)]),
        );
        const px = pixelsOf(r);
        const t = mobilenetV2Tower(tfOps(), p, cfg, tf.tensor(px.data, px.shape), taps);
        return Object.fromEntries(Object.entries(t.taps).map(([k, v]) => [k, v.dataSync().slice()]));
      });
      check(out);
    });
  }

  it('the whole block_12 map (every position, not only the mean) at 96 px', () => {
    const r = fixture.runs.find((x) => x.block_12_add_map_image0)!;
    const got = tf.tidy(() => {
      const cfg: MobileNetV2TowerConfig = { imageSize: r.size, layer: 'block_12', numChannels: 3 };
      const p = Object.fromEntries(
        mobilenetV2Specs(cfg).map((s) => [s.name, tf.tensor(weights[s.name].data, weights[s.name].shape)]),
      );
      const px = pixelsOf(r);
      const x = tf.slice(
        tf.tensor4d(px.data, px.shape as [number, number, number, number]),
        [0, 0, 0, 0],
        [1, -1, -1, -1],
      );
      // an Ops wrapper whose reduceMean over space returns the map itself: the tower's pooled tap is then the map
      const o = {
        ...tfOps(),
        reduceMean: (v: tf.Tensor, axes: number[]) => (axes.join() === '2,3' ? v : tf.mean(v, axes)),
      };
      const map = mobilenetV2Tower(o, p, cfg, x).features; // [1, 96, 6, 6] NCHW
      return tf.transpose(map, [0, 2, 3, 1]).dataSync().slice();
    });
    expect(relErr(got, r.block_12_add_map_image0!)).toBeLessThan(TOL);
  });

  it("the head gives nsfwjs's class probabilities (softmax of dense_3) at 224 px", () => {
    const r = fixture.runs.find((x) => x.probabilities)!;
    const probs = tf.tidy(() => {
      const h = tf.tensor2d(r.dense_1!, [r.images.length, 256]);
      const h2 = tf.relu(
        tf.add(
          tf.matMul(h, tf.tensor(weights['head.1.weight'].data, weights['head.1.weight'].shape as [number, number])),
          tf.tensor(weights['head.1.bias'].data),
        ),
      );
      return tf
        .softmax(
          tf.add(
            tf.matMul(h2, tf.tensor(weights['head.2.weight'].data, weights['head.2.weight'].shape as [number, number])),
            tf.tensor(weights['head.2.bias'].data),
          ),
        )
        .dataSync()
        .slice();
    });
    expect(relErr(probs, r.probabilities!)).toBeLessThan(TOL);
  });

  it('knows its layers: widths, the specs it needs, refuses sizes that break the padding', () => {
    expect(mobilenetV2LayerDim('block_12')).toBe(96);
    expect(mobilenetV2LayerDim('last')).toBe(1280);
    expect(mobilenetV2LayerDim('head_0')).toBe(256);
    expect(() => mobilenetV2LayerDim('block_17')).toThrow(/not one of/);
    expect(
      mobilenetV2Specs({ imageSize: 96, layer: 'block_5', numChannels: 3 }).some((s) => s.name.startsWith('blocks.6.')),
    ).toBe(false);
    expect(createMobileNetV2({ layer: 'block_12' }).featureDim).toBe(96);
    expect(() => createMobileNetV2({ imageSize: 100 })).toThrow(/multiple of 32/);
  });
});
