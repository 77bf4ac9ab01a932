import { describe, expect, it } from 'vitest';
import { findIcds, findLibvulkan, initRuntime, probeWebGpuSession, tf } from '@distill/core';
import { createStudent, OnnxStudentEngine } from '@distill/student-architectures';
import { resolveConfig } from './config.js';
import { methodFor } from './method-registry.js';
import { OnnxStepEngine, type EngineState, type StepHooks } from './step-engine.js';
import { createTrainingContainer as builtinsContainer } from './registries.js';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

// The resident step (weights, AdamW moments, gradients and saved activations kept in onnxruntime
// tensors: on the WebGPU device there, CPU tensors on the CPU provider) against the host-side step
// (Float32Arrays, AdamW in JS), and a checkpoint/resume of the resident step against an
// uninterrupted run.
const B = 4;
const L = 8;
const DIM = 32;
const ADAMW = {
  lr: 2e-3,
  weightDecay: 1e-2,
  betas: [0.9, 0.999] as [number, number],
  eps: 1e-8,
  groupLr: { head: 4e-3 },
};

/** A tiny vit-bert with the dsmd-official losses in its graph; `resident` picks the step form. */
async function setup(
  ep: 'cpu' | 'webgpu',
  resident: boolean,
  losses = 'dsmd-official',
  mode: 'split' | 'fused' = 'split',
  deviceQueues = true,
) {
  await initRuntime('wasm', { quiet: true });
  const student = createStudent('vit-bert', { preset: 'tiny', embedDim: DIM, seed: 1, maxLength: 16 });
  const cfg = resolveConfig({
    container: builtins,
    preset: 'smoke',
    overrides: { losses, batchSize: B, lossOptions: { queueSize: 8 } },
  });
  const method = await methodFor(cfg, builtins);
  const state = method.createState(DIM, cfg);
  const onnx = new OnnxStudentEngine(student, {
    threads: 1,
    seed: 3,
    head: state.graph?.head,
    executionProviders: [ep],
    resident,
    mode,
  });
  expect(onnx.resident).toBe(resident);
  const engine = new OnnxStepEngine(student, onnx, ADAMW);
  if (deviceQueues) engine.useMethodState(state); // as the trainer does: a resident step takes the queues to the device
  expect(!!state.deviceQueues).toBe(resident && deviceQueues && !!state.queues);
  const { crop } = student.preprocess;
  const step = async (k: number) => {
    const pixels = Float32Array.from({ length: B * 3 * crop * crop }, (_, i) => Math.sin(i * 0.013 + k));
    const ids = Int32Array.from({ length: B * L }, (_, i) => ((i * 31 + 7 * k) % 90) + 5);
    const mask = Int32Array.from({ length: B * L }, (_, i) => (i % L < 5 + (i % 3) ? 1 : 0));
    const teacherImage = Float32Array.from({ length: B * DIM }, (_, i) => Math.cos(i + k));
    const teacherText = Float32Array.from({ length: B * DIM }, (_, i) => Math.sin(i * 3 + k));
    const imageIds = Int32Array.of(0, 1, 2, 3);
    const hooks: StepHooks = {
      balance: (c) => state.balancer.weights(Object.values(c)),
      tfjsLoss: (sI, sT) => {
        const c = method.loss(
          {
            studentImage: sI,
            studentText: sT,
            teacherImage: tf.tensor2d(teacherImage, [B, DIM]),
            teacherText: tf.tensor2d(teacherText, [B, DIM]),
            imageIds,
          },
          state,
        );
        const names = Object.keys(c);
        const w = hooks.balance(Object.fromEntries(names.map((n) => [n, c[n].dataSync()[0]])));
        return names.map((n, i) => c[n].mul(w[i])).reduce((a, b) => a.add(b)) as tf.Scalar;
      },
      graphFeeds: () => state.graph.feeds({ batch: B, teacherImage, teacherText, imageIds }),
    };
    engine.lrScale = k < 2 ? 1 : 0.5;
    const loss = await engine.step({ pixels, ids, mask, batch: B, length: L, step: k }, hooks);
    if (teacherImage && teacherText) state.afterStep(teacherImage, teacherText, B);
    return loss;
  };
  const done = async () => {
    await engine.release();
    state.dispose();
    student.dispose();
  };
  return { engine, onnx, state, step, done };
}

/** A deep copy of an engine state (a checkpoint written and read back). */
const copy = (s: EngineState): EngineState => ({
  weights: Object.fromEntries(
    Object.entries(s.weights).map(([k, w]) => [k, { shape: [...w.shape], data: Float32Array.from(w.data) }]),
  ),
  optimizer: {
    ...s.optimizer,
    m: Object.fromEntries(Object.entries(s.optimizer.m).map(([k, a]) => [k, Float32Array.from(a)])),
    v: Object.fromEntries(Object.entries(s.optimizer.v).map(([k, a]) => [k, Float32Array.from(a)])),
  },
});

/** The method's checkpointed state (balancer, queue pointer, queues), deep-copied as a checkpoint would. */
const copyMethod = (m: ReturnType<Awaited<ReturnType<typeof setup>>['state']['save']>) => ({
  balancer: JSON.parse(JSON.stringify(m.balancer ?? null)) as unknown,
  queuePtr: m.queuePtr,
  tensors: Object.fromEntries(
    Object.entries(m.tensors).map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from(t.data) }]),
  ),
});

async function run(
  ep: 'cpu' | 'webgpu',
  resident: boolean,
  steps: number,
  o: { losses?: string; resumeAt?: number; mode?: 'split' | 'fused'; deviceQueues?: boolean } = {},
) {
  let s = await setup(ep, resident, o.losses, o.mode, o.deviceQueues);
  const losses: number[] = [];
  for (let k = 0; k < steps; k++) {
    if (k === o.resumeAt) {
      await s.engine.flush();
      const ckpt = copy(s.engine.state());
      const method = copyMethod(s.state.save());
      await s.done();
      s = await setup(ep, resident, o.losses, o.mode, o.deviceQueues);
      s.engine.load(ckpt);
      s.state.load(method.balancer, method.tensors, method.queuePtr);
    }
    losses.push(await s.step(k));
  }
  const queueWhere = s.state.deviceQueues
    ? [...new Set(Object.values(await s.state.deviceQueues.feeds()).map((t) => t.location))]
    : [];
  if (s.state.deviceQueues && steps > 0) expect(() => s.state.save()).toThrow(/flush\(\) first/);
  // where the state lives: device buffers on WebGPU (never read with getData(): it aborts the process)
  const where = resident ? [...new Set((await s.onnx.deviceParams()).map((t) => t.location))] : [];
  if (resident && steps > 0) expect(() => s.engine.state()).toThrow(/flush\(\) first/);
  await s.engine.flush();
  const st = copy(s.engine.state());
  const method = copyMethod(s.state.save());
  const uploaded = s.engine.lastStepUploadBytes;
  await s.done();
  return { losses, st, where, method, queueWhere, uploaded };
}

/**
 * max |a - b| / max |b| over the weights (`skip`: names left out). Attention key biases have a zero
 * gradient in exact arithmetic (softmax ignores a shift shared by a row's scores), so theirs is
 * rounding noise, and AdamW turns noise into steps of +-lr whatever its size: two float orders (this
 * AdamW graph vs ArrayAdamW, or two thread counts) move them apart by ~lr from the second step on.
 */
function relWeights(a: EngineState, b: EngineState, skip = /(?!)/): number {
  let d = 0;
  let m = 0;
  for (const [k, w] of Object.entries(b.weights))
    if (!skip.test(k))
      w.data.forEach((x, i) => {
        d = Math.max(d, Math.abs(a.weights[k].data[i] - x));
        m = Math.max(m, Math.abs(x));
      });
  return d / m;
}
const bits = (s: EngineState) =>
  Object.fromEntries(
    Object.entries(s.weights).map(([k, w]) => [
      k,
      Array.from(new Uint32Array(w.data.buffer, w.data.byteOffset, w.data.length)),
    ]),
  );

const hasVulkan = !!findLibvulkan() && findIcds().icds.length > 0;
const probe = hasVulkan ? await probeWebGpuSession() : undefined;
const N = 4;

for (const ep of ['cpu', 'webgpu'] as const) {
  const skip = ep === 'webgpu' && !probe?.ok;
  describe.skipIf(skip)(
    `resident step state on ${ep}${skip ? ' (skipped: no WebGPU session; lavapipe runs it on the CPU)' : ''}`,
    () => {
      it(`${N} resident steps give the host-side steps' losses and weights (AdamW graph vs ArrayAdamW: float32 rounding)`, async () => {
        // one step: the same gradients, so only AdamW's rounding differs (measured 6e-8)
        expect(relWeights((await run(ep, true, 1)).st, (await run(ep, false, 1)).st)).toBeLessThan(1e-6);
        const host = await run(ep, false, N);
        const dev = await run(ep, true, N);
        dev.losses.forEach((l, i) =>
          expect(Math.abs(l - host.losses[i]) / Math.abs(host.losses[i]), `loss at step ${i + 1}`).toBeLessThan(1e-5),
        );
        expect(relWeights(dev.st, host.st, /attention\.(attention|self)\.key\.bias$/)).toBeLessThan(1e-5);
        expect(dev.st.optimizer.step).toBe(N);
        expect(dev.where).toEqual([ep === 'webgpu' ? 'gpu-buffer' : 'cpu']);
        expect(relWeights(dev.st, (await run(ep, true, 0)).st)).toBeGreaterThan(1e-4); // trained: the weights moved
      }, 120_000);

      it("the 'fused' step form, resident, trains as the 'split' one", async () => {
        const split = await run(ep, true, 2);
        const fused = await run(ep, true, 2, { mode: 'fused' });
        fused.losses.forEach((l, i) =>
          expect(Math.abs(l - split.losses[i]) / Math.abs(split.losses[i]), `loss at step ${i + 1}`).toBeLessThan(1e-5),
        );
        // other graphs, other float orders: AdamW makes near-zero gradients' rounding a step of ~lr (measured 4e-5 on the CPU)
        expect(relWeights(fused.st, split.st, /attention\.(attention|self)\.key\.bias$/)).toBeLessThan(2e-4);
        expect(fused.where).toEqual([ep === 'webgpu' ? 'gpu-buffer' : 'cpu']);
      }, 120_000);

      it('a checkpoint (flush, state, load into a fresh engine) continues bit-identically to the uninterrupted run', async () => {
        const straight = await run(ep, true, N, { losses: 'none' });
        const resumed = await run(ep, true, N, { losses: 'none', resumeAt: 2 });
        expect(resumed.losses).toEqual(straight.losses);
        expect(bits(resumed.st)).toEqual(bits(straight.st));
        for (const k of Object.keys(straight.st.optimizer.v))
          expect(Array.from(resumed.st.optimizer.v[k])).toEqual(Array.from(straight.st.optimizer.v[k]));
      }, 120_000);

      it('feature queues on the device: the same losses and queues as the host queues, and a checkpoint resumes bit-identically', async () => {
        // dsmd-official has cd, so queues (8 rows, batch 4: the ring wraps at the second step)
        const hostQ = await run(ep, true, N, { deviceQueues: false });
        const devQ = await run(ep, true, N);
        expect(devQ.queueWhere).toEqual([ep === 'webgpu' ? 'gpu-buffer' : 'cpu']);
        expect(hostQ.queueWhere).toEqual([]);
        // the enqueue is a copy: the device queues hold the host queues' bits, so the steps are the same runs
        expect(devQ.losses).toEqual(hostQ.losses);
        expect(bits(devQ.st)).toEqual(bits(hostQ.st));
        expect(devQ.method.queuePtr).toBe(hostQ.method.queuePtr);
        for (const k of ['queue/image', 'queue/text'])
          expect(Array.from(devQ.method.tensors[k].data)).toEqual(Array.from(hostQ.method.tensors[k].data));
        // after the first step the queues cross no more: the step uploads the batch's rows and indices
        // instead of both queues (on the CPU provider the queue tensors are host memory, counted in both)
        const rowsUp = 2 * B * DIM * 4 + B * 8;
        expect(hostQ.uploaded - devQ.uploaded).toBe(ep === 'webgpu' ? 2 * 8 * DIM * 4 - rowsUp : -rowsUp);
        // checkpoint at step 3, after the wrap-around (12 rows into 8: the pointer is at 4)
        const resumed = await run(ep, true, N, { resumeAt: 3 });
        expect(resumed.losses).toEqual(devQ.losses);
        expect(bits(resumed.st)).toEqual(bits(devQ.st));
        for (const k of ['queue/image', 'queue/text'])
          expect(Array.from(resumed.method.tensors[k].data)).toEqual(Array.from(devQ.method.tensors[k].data));
        expect(resumed.method.queuePtr).toBe(devQ.method.queuePtr);
      }, 180_000);
    },
  );
}
