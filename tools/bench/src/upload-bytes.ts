/**
 * What a resident (`--device webgpu`) training step sends from the host to the device, by kind:
 * 'host' = the feature queues and dropout masks made on the host and fed each step (before), 'device'
 * = the queues on the device (`DeviceQueues`: the teacher rows and ring indices go to an enqueue
 * graph) and the masks drawn by the mask graph (`deviceDropout`), and the ms per step of both (median
 * of the steps after the first, same process, alternating). Also the JS time to draw a step's masks:
 *   node --conditions=@distill/source --import tsx tools/bench/src/upload-bytes.ts [device=webgpu] [steps=6] [sizes=tiny,small] [plan=base]
 * `plan` sizes only build the graphs (no run): the byte counts of a step at that size.
 */
import { initRuntime, Rng, tf } from '@distill/core';
import { createStudent, OnnxStudentEngine } from '@distill/student-architectures';
import { createTrainingContainer, resolveConfig, methodFor, OnnxStepEngine, type StepHooks } from '@distill/training';

const [device = 'webgpu', stepsArg = '6', sizesArg = 'tiny,small', planArg = 'base'] = process.argv.slice(2);
const STEPS = Number(stepsArg);
const MiB = 1024 ** 2;
const fmt = (b: number) => (b >= MiB ? `${(b / MiB).toFixed(2)} MiB` : `${(b / 1024).toFixed(1)} KiB`);
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/** The sizes of the setting a preset size trains in (smoke: tiny, batch 32, queue 256; paper: base, batch 64, queue 8192). */
const SETTING: Record<string, { batch: number; queue: number; length: number }> = {
  tiny: { batch: 32, queue: 256, length: 16 },
  small: { batch: 32, queue: 256, length: 16 },
  base: { batch: 64, queue: 8192, length: 32 },
};
const DIM = 256;

async function setup(size: string, deviceQueues: boolean) {
  const s = SETTING[size];
  const student = createStudent('vit-bert', {
    preset: size as 'tiny' | 'small' | 'base',
    embedDim: DIM,
    seed: 1,
    maxLength: s.length,
  });
  const container = createTrainingContainer();
  const cfg = resolveConfig({
    container,
    preset: 'smoke',
    overrides: { losses: 'dsmd-official', batchSize: s.batch, lossOptions: { queueSize: s.queue } },
  });
  const method = await methodFor(cfg, container);
  const state = method.createState(DIM, cfg);
  const onnx = new OnnxStudentEngine(student, {
    seed: 3,
    head: state.graph.head,
    executionProviders: [device],
    deviceDropout: deviceQueues,
  });
  return { student, state, onnx, s };
}

/** Bytes of one step by kind (from the compiled graphs' shapes). */
function breakdown(onnx: OnnxStudentEngine, s: { batch: number; queue: number; length: number }, crop: number) {
  const B = s.batch;
  const Lp = onnx.paddedLength(s.length);
  const plan = onnx.plan(B, s.length);
  return {
    batch: B * 3 * crop * crop * 4 + B * Lp * (8 + 4),
    masks: plan.maskFloats * 4,
    maskFloats: plan.maskFloats,
    teacherRows: 2 * B * DIM * 4,
    queues: 2 * s.queue * DIM * 4,
    enqueue: 2 * B * DIM * 4 + B * 8,
    maskKeys: 8 * (plan.maskSites ?? 0),
  };
}

async function measure(size: string) {
  const runs: Record<string, { ms: number[]; up: number[] }> = { host: { ms: [], up: [] }, device: { ms: [], up: [] } };
  const made = await Promise.all(
    (['host', 'device'] as const).map(async (form) => {
      const x = await setup(size, form === 'device');
      const engine = new OnnxStepEngine(x.student, x.onnx, {
        lr: 1e-3,
        weightDecay: 1e-4,
        betas: [0.9, 0.999],
        eps: 1e-8,
      });
      if (form === 'device') engine.useMethodState(x.state);
      return { form, engine, ...x };
    }),
  );
  const { crop } = made[0].student.preprocess;
  const B = made[0].s.batch;
  const L = made[0].s.length;
  for (let k = 0; k < STEPS; k++) {
    for (const m of made) {
      const pixels = Float32Array.from({ length: B * 3 * crop * crop }, (_, i) => Math.sin(i * 0.013 + k));
      const ids = Int32Array.from({ length: B * L }, (_, i) => ((i * 31 + 7 * k) % 90) + 5);
      const mask = Int32Array.from({ length: B * L }, (_, i) => (i % L < 5 + (i % 3) ? 1 : 0));
      const ti = Float32Array.from({ length: B * DIM }, (_, i) => Math.cos(i + k) / 11);
      const tt = Float32Array.from({ length: B * DIM }, (_, i) => Math.sin(i * 3 + k) / 11);
      const imageIds = Int32Array.from({ length: B }, (_, i) => i);
      const hooks: StepHooks = {
        balance: (c) => m.state.balancer.weights(Object.values(c)),
        tfjsLoss: () => {
          throw new Error('losses in the graph');
        },
        graphFeeds: () => m.state.graph.feeds({ batch: B, teacherImage: ti, teacherText: tt, imageIds }),
      };
      const t0 = performance.now();
      await m.engine.step({ pixels, ids, mask, batch: B, length: L, step: k }, hooks);
      m.state.afterStep(ti, tt, B);
      const ms = performance.now() - t0;
      if (k > 0) {
        runs[m.form].ms.push(ms);
        runs[m.form].up.push(m.engine.lastStepUploadBytes);
      }
    }
  }
  const bd = breakdown(made[0].onnx, made[0].s, crop);
  for (const m of made) {
    await m.engine.release();
    m.state.dispose();
    m.student.dispose();
  }
  return { runs, bd };
}

await initRuntime('wasm', { quiet: true });
console.log(`device ${device}, ${STEPS} steps (medians of steps 2..${STEPS}), vit-bert, dsmd-official, dim ${DIM}`);
for (const size of sizesArg.split(',').filter(Boolean)) {
  const { runs, bd } = await measure(size);
  const h = runs.host;
  const d = runs.device;
  console.log(
    `${size} B=${SETTING[size].batch} K=${SETTING[size].queue}: up per step host ${fmt(median(h.up))}, device ${fmt(median(d.up))} ` +
      `(batch ${fmt(bd.batch)}, dropout masks ${fmt(bd.masks)} -> ${bd.maskKeys} B of keys, teacher rows ${fmt(bd.teacherRows)}, queues ${fmt(bd.queues)} -> enqueue ${fmt(bd.enqueue)}); ` +
      `ms/step host ${median(h.ms).toFixed(0)}, device ${median(d.ms).toFixed(0)} (ratio ${(median(d.ms) / median(h.ms)).toFixed(2)})`,
  );
}
for (const size of planArg.split(',').filter(Boolean)) {
  const x = await setup(size, false);
  const bd = breakdown(x.onnx, x.s, x.student.preprocess.crop);
  // the JS cost of drawing one step's masks as the engine does (Rng.uniformArray per site)
  const t0 = performance.now();
  const u = new Rng(3).fork('dropout/1').fork('d').uniformArray(bd.maskFloats);
  const drawMs = performance.now() - t0;
  const before = bd.batch + bd.masks + bd.teacherRows + bd.queues;
  const after = bd.batch + bd.maskKeys + bd.teacherRows + bd.enqueue;
  console.log(
    `${size} B=${x.s.batch} K=${x.s.queue} (plan): up per step host ${fmt(before)}, device ${fmt(after)} ` +
      `(batch ${fmt(bd.batch)}, dropout masks ${fmt(bd.masks)} = ${bd.maskFloats} floats drawn in ${drawMs.toFixed(0)} ms of JS -> ${bd.maskKeys} B of keys, teacher rows ${fmt(bd.teacherRows)}, queues ${fmt(bd.queues)} -> enqueue ${fmt(bd.enqueue)}) [${u.length}]`,
  );
  x.state.dispose();
  x.student.dispose();
  tf.disposeVariables();
}
