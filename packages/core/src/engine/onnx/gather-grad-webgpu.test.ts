/**
 * The gather gradient's WebGPU form (@distill/autodiff gather-grad-webgpu.ts) against its CPU form, on
 * the CPU provider and, where a WebGPU session starts (lavapipe on CPU-only machines), on WebGPU.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { Rng } from '@distill/base';
import { buildingFor, graphDevice, Graph, onnxOps as op } from '@distill/autodiff';
import { findIcds, findLibvulkan, probeWebGpuSession } from './webgpu.js';

const [V, W] = [11, 5];
/** ids [3, 4]: id 2 four times, 7 twice, one id never used. */
const IDS = [2, 7, 0, 2, 5, 2, 7, 1, 2, 9, 3, 4];

/** The backward model of `gather` (inputs seed_0, ids; output grad_0 = dtable), built for `device`. */
function backwardModel(device: 'cpu' | 'webgpu', ids = IDS): { model: Uint8Array; ops: string[] } {
  const g = new Graph();
  const table = g.input('table', [V, W], { requiresGrad: true });
  const idSym = g.input('ids', [3, ids.length / 3], { dtype: 'int64' });
  const y = op.gather(table, idSym);
  const n = g.nodes.length;
  const tg = buildingFor(device, () => g.compileTraining([y], [table]));
  return { model: tg.backward.model, ops: [...new Set(g.nodes.slice(n).map((x) => x.op))] };
}

async function run(model: Uint8Array, ep: string, ids: number[], seed: Float32Array): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(model, { executionProviders: [ep], graphOptimizationLevel: 'all' });
  try {
    const r = await s.run({
      ids: new ort.Tensor(
        'int64',
        BigInt64Array.from(ids, (x) => BigInt(x)),
        [3, ids.length / 3],
      ),
      seed_0: new ort.Tensor('float32', seed, [3, ids.length / 3, W]),
    });
    return r.grad_0.data as Float32Array;
  } finally {
    await s.release();
  }
}

/** dtable[v] = sum of the seed rows whose id is v, in float64. */
function reference(ids: number[], seed: Float32Array): Float64Array {
  const out = new Float64Array(V * W);
  ids.forEach((id, n) => {
    for (let k = 0; k < W; k++) out[id * W + k] += seed[n * W + k];
  });
  return out;
}

const hasVulkan = !!findLibvulkan() && findIcds().icds.length > 0;
const probe = hasVulkan ? await probeWebGpuSession() : undefined;

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i])));

describe('gather gradient, WebGPU form (onehot(ids)^T g)', () => {
  const seed = new Rng(3).normalArray(IDS.length * W);

  it('is chosen only while building for webgpu, and the choice does not outlive the build', () => {
    expect(backwardModel('cpu').ops).toEqual(expect.arrayContaining(['TopK', 'Unique', 'CumSum']));
    const dev = backwardModel('webgpu').ops;
    expect(dev).toEqual(expect.arrayContaining(['Gemm', 'Equal']));
    for (const cpuOnly of ['TopK', 'Unique', 'CumSum']) expect(dev).not.toContain(cpuOnly);
    expect(() =>
      buildingFor('webgpu', () => {
        throw new Error('x');
      }),
    ).toThrow('x');
    expect(graphDevice()).toBe('cpu');
  });

  it('equals the CPU form: exactly for ids that occur once, within float32 rounding for repeated ones', async () => {
    const cpuForm = await run(backwardModel('cpu').model, 'cpu', IDS, seed);
    const devForm = await run(backwardModel('webgpu').model, 'cpu', IDS, seed);
    const ref = reference(IDS, seed);
    expect(maxAbs(cpuForm, ref)).toBeLessThan(1e-6);
    expect(maxAbs(devForm, cpuForm)).toBeLessThan(1e-6);
    // rows of ids used once are copies, unused rows exact zeros
    for (const v of [0, 1, 3, 4, 5, 9, 6, 8, 10])
      expect(Array.from(devForm.subarray(v * W, v * W + W))).toEqual(Array.from(cpuForm.subarray(v * W, v * W + W)));
    const unique = [4, 0, 9, 2, 7, 1, 10, 3, 5]; // [3, 3], distinct
    const s9 = seed.subarray(0, unique.length * W);
    expect(Array.from(await run(backwardModel('webgpu', unique).model, 'cpu', unique, s9))).toEqual(
      Array.from(await run(backwardModel('cpu', unique).model, 'cpu', unique, s9)),
    );
  });

  it.skipIf(!probe?.ok)(
    `runs on WebGPU with the CPU form's values, the same bits run after run${probe?.ok ? '' : ' (skipped: no WebGPU session)'}`,
    async () => {
      const { model } = backwardModel('webgpu');
      const a = await run(model, 'webgpu', IDS, seed);
      const b = await run(model, 'webgpu', IDS, seed);
      expect(Array.from(a)).toEqual(Array.from(b));
      expect(maxAbs(a, await run(backwardModel('cpu').model, 'cpu', IDS, seed))).toBeLessThan(1e-6);
    },
  );
});
