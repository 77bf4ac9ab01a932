import { describe, expect, it } from 'vitest';
import { findIcds, findLibvulkan, OnnxRunner, probeWebGpuSession } from '@distill/core';
import { buildDropoutMaskGraph, dropoutKey, hashIndex } from './dropout-graph.js';

// The device dropout generator: the graph's masks equal the JS reference bit for bit on the CPU
// provider and on WebGPU, keep 1 - rate of the elements, and are independent across steps, sites
// and neighbouring elements (statistics of ~0.5M draws: the bounds are ~5 standard deviations).
const hasVulkan = !!findLibvulkan() && findIcds().icds.length > 0;
const probe = hasVulkan ? await probeWebGpuSession() : undefined;

const SITES = [
  { name: 'dropout_0', shape: [8, 16, 64], rate: 0.1 },
  { name: 'dropout_1', shape: [8, 4, 16, 16], rate: 0.5 },
  { name: 'dropout_2', shape: [8, 16, 64], rate: 0.1 },
];

async function masks(ep: string, seed: number, step: number): Promise<Float32Array[]> {
  const r = await OnnxRunner.create(buildDropoutMaskGraph(SITES), { executionProviders: [ep], threads: 1 });
  try {
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
    SITES.forEach((_, s) => {
      const k = dropoutKey(seed, step, s);
      feeds[`key_hi_${s}`] = { data: Float32Array.of(k.hi), dims: [] };
      feeds[`key_lo_${s}`] = { data: Float32Array.of(k.lo), dims: [] };
    });
    return await r.run(
      feeds,
      SITES.map((s) => s.name),
    );
  } finally {
    await r.release();
  }
}
const kept = (m: Float32Array) => m.reduce((a, x) => a + (x > 0 ? 1 : 0), 0) / m.length;

it('dropoutKey splits a 32-bit key into exact float halves and differs by seed, step and site', () => {
  const k = dropoutKey(3, 7, 2);
  expect(k.hi * 65536 + k.lo).toBe(k.key);
  expect(Number.isInteger(k.hi) && k.hi >= -32768 && k.hi < 32768 && k.lo >= 0 && k.lo < 65536).toBe(true);
  const keys = new Set(
    [dropoutKey(3, 7, 2), dropoutKey(4, 7, 2), dropoutKey(3, 8, 2), dropoutKey(3, 7, 3), dropoutKey(3, 7, 2)].map(
      (x) => x.key,
    ),
  );
  expect(keys.size).toBe(4);
});

for (const ep of ['cpu', 'webgpu'] as const) {
  const skip = ep === 'webgpu' && !probe?.ok;
  describe.skipIf(skip)(`device dropout masks on ${ep}${skip ? ' (skipped: no WebGPU session)' : ''}`, () => {
    it('equal the JS reference bit for bit: mask = [hash >= rate] / (1 - rate)', async () => {
      const [m0, m1] = await masks(ep, 5, 11);
      const k0 = dropoutKey(5, 11, 0).key;
      const t0 = 0.1 * 2 ** 24 - 2 ** 23;
      m0.forEach((x, e) => {
        if (x !== (hashIndex(e, k0) >= t0 ? Math.fround(1 / 0.9) : 0)) throw new Error(`site 0 element ${e}: ${x}`);
      });
      const k1 = dropoutKey(5, 11, 1).key;
      m1.forEach((x, e) => {
        if (x !== (hashIndex(e, k1) >= 0 ? 2 : 0)) throw new Error(`site 1 element ${e}: ${x}`);
      });
    });

    it('keep 1 - rate, independently across steps, sites and neighbouring elements', async () => {
      const n = 64;
      const all: Float32Array[][] = [];
      for (let step = 1; step <= n / 8; step++) all.push(await masks(ep, 1, step));
      const a = Float32Array.from(all.flatMap((m) => Array.from(m[0])));
      const N = a.length; // 65,536 x 8 draws at rate 0.1
      expect(Math.abs(kept(a) - 0.9)).toBeLessThan(5 * Math.sqrt(0.09 / N));
      const half = Float32Array.from(all.flatMap((m) => Array.from(m[1])));
      expect(Math.abs(kept(half) - 0.5)).toBeLessThan(5 * Math.sqrt(0.25 / half.length));
      // P(dropped at step t and t+1), P(dropped at sites 0 and 2 of one step), P(element e and e+1 dropped): rate^2
      const both = (x: Float32Array, y: Float32Array) =>
        x.reduce((c, v, i) => c + (v === 0 && y[i] === 0 ? 1 : 0), 0) / x.length;
      const M = all[0][0].length;
      let steps = 0;
      let sites = 0;
      for (let t = 0; t + 1 < all.length; t++) steps += both(all[t][0], all[t + 1][0]) / (all.length - 1);
      for (const m of all) sites += both(m[0], m[2]) / all.length;
      const nb = both(a.subarray(0, N - 1), a.subarray(1));
      for (const [what, p, draws] of [
        ['consecutive steps', steps, M * (all.length - 1)],
        ['two sites', sites, M * all.length],
        ['neighbours', nb, N - 1],
      ] as const)
        expect(Math.abs(p - 0.01), what).toBeLessThan(5 * Math.sqrt((0.01 * 0.99) / draws));
      // the masks of two steps differ (a fixed mask would pass the rate test)
      expect(all[0][0]).not.toEqual(all[1][0]);
    });
  });
}

describe('OnnxStudentEngine with device dropout', () => {
  const drop = { hiddenDropout: 0.2, attentionDropout: 0.1 };
  const B = 4;
  const L = 8;
  const ids = Int32Array.from({ length: B * L }, (_, i) => ((i * 37) % 200) + 3);
  const mask = Int32Array.from({ length: B * L }, (_, i) => (i % L < 6 ? 1 : 0));
  const forward = async (o: { ep?: string; deviceDropout?: boolean; step: number; training?: boolean }) => {
    const { initRuntime } = await import('@distill/core');
    const { createStudent } = await import('./student.js');
    const { OnnxStudentEngine } = await import('./onnx-engine.js');
    await initRuntime('cpu', { quiet: true });
    const s = createStudent('vit-bert', {
      preset: 'tiny',
      embedDim: 16,
      seed: 1,
      vocabSize: 300,
      maxLength: 30,
      overrides: { image: { imageSize: 32, ...drop }, text: drop },
    });
    const S = s.preprocess.crop;
    const px = Float32Array.from({ length: B * 3 * S * S }, (_, i) => Math.cos(i * 0.21));
    const e = new OnnxStudentEngine(s, {
      threads: 1,
      seed: 5,
      executionProviders: [o.ep ?? 'cpu'],
      deviceDropout: o.deviceDropout,
      resident: false,
    });
    try {
      const out = await e.forward(px, ids, mask, B, L, { step: o.step, training: o.training });
      const g = await e.backward(new Float32Array(B * 16).fill(1), new Float32Array(B * 16).fill(1));
      return { ...out, g: [...g.entries()], up: e.lastHostFeedBytes };
    } finally {
      await e.release();
      s.dispose();
    }
  };
  const rel = (a: Float32Array, b: Float32Array) => {
    let d = 0;
    let m = 0;
    a.forEach((x, i) => ((d = Math.max(d, Math.abs(x - b[i]))), (m = Math.max(m, Math.abs(b[i])))));
    return d / m;
  };

  it('draws its own masks (not the host Rng ones), per step, off when not training', async () => {
    const dev = await forward({ deviceDropout: true, step: 3 });
    const again = await forward({ deviceDropout: true, step: 3 });
    const host = await forward({ step: 3 });
    const next = await forward({ deviceDropout: true, step: 4 });
    expect(Array.from(dev.text)).toEqual(Array.from(again.text));
    expect(rel(dev.text, host.text)).toBeGreaterThan(1e-3); // the CPU default keeps the host generator
    expect(rel(next.text, dev.text)).toBeGreaterThan(1e-3);
    const offDev = await forward({ deviceDropout: true, step: 3, training: false });
    const offHost = await forward({ step: 3, training: false });
    expect(Array.from(offDev.text)).toEqual(Array.from(offHost.text));
  });

  it.skipIf(!probe?.ok)(
    "WebGPU (its default) gives the CPU provider's device-dropout forward and gradients, and uploads no masks",
    async () => {
      const cpu = await forward({ deviceDropout: true, step: 2 });
      const gpu = await forward({ ep: 'webgpu', step: 2 });
      expect(rel(gpu.image, cpu.image)).toBeLessThan(1e-5);
      expect(rel(gpu.text, cpu.text)).toBeLessThan(1e-5);
      // (attention key biases: an exact gradient of zero, so theirs is rounding noise on either provider)
      gpu.g.forEach(([name, g], i) => /key\.bias$/.test(name) || expect(rel(g, cpu.g[i][1]), name).toBeLessThan(1e-4));
      // the masks stay on the device: the upload is the host masks' bytes smaller (two scalars per site go up instead)
      const hostMasks = await forward({ ep: 'webgpu', deviceDropout: false, step: 2 });
      expect(hostMasks.up - gpu.up).toBeGreaterThan(4 * B * L * 64);
    },
    60_000,
  );
});
