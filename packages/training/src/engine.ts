import { cpus } from 'node:os';
import {
  DistillError,
  loadOrt,
  webgpuReport,
  type BackendChoice,
  type Logger,
  type RuntimeInfo,
  type WebGpuReport,
} from '@distill/core';
import { OnnxStudentEngine, onnxSupport, type DualEncoderStudent, type LossHead } from '@distill/student-architectures';
import type { AdamWOptions } from './adamw.js';
import type { TrainBackend, TrainDevice } from './config.js';
import {
  checkMemory,
  estimateStepMemory,
  OnnxStepEngine,
  planOnnxStep,
  TfjsStepEngine,
  type MemoryEstimate,
  type StepEngine,
} from './step-engine.js';

/** The tfjs backend to initialise for a training backend ('onnx' still uses tfjs to build and save the student). */
export function tfjsBackendFor(backend: TrainBackend): BackendChoice {
  return backend === 'onnx' ? 'auto' : backend;
}

/**
 * Picks where the student's towers train. 'onnx': onnxruntime-node (an error says why when the
 * student cannot); 'auto': onnx unless a tensorflow backend loaded or the student cannot (then tfjs,
 * with the reason logged); any tfjs backend: tfjs. Returns the onnx engine, or undefined for tfjs.
 * The losses (`head`, their graph form: every method has one) run in the same onnxruntime graphs.
 */
export async function chooseStudentEngine(
  backend: TrainBackend,
  rt: RuntimeInfo,
  student: DualEncoderStudent,
  opts: { threads: number; seed: number; log: Logger; head: LossHead; device?: TrainDevice },
): Promise<OnnxStudentEngine | undefined> {
  const device = opts.device ?? 'cpu';
  const tfjs = (why: string) => {
    if (device === 'webgpu')
      throw new DistillError(
        `--device webgpu runs the onnx engine only, and ${why}. Use --backend onnx (or auto) with a student the onnx engine supports, or --device cpu.`,
        2,
      );
    return undefined;
  };
  if (backend !== 'onnx' && backend !== 'auto') return tfjs(`--backend ${backend} is tfjs`);
  // --device webgpu asks for the onnx engine: with --backend auto it wins over tensorflow
  if (backend === 'auto' && rt.backend === 'tensorflow' && device !== 'webgpu') return undefined;
  const why = onnxSupport(student);
  if (why) {
    if (backend === 'onnx')
      throw new DistillError(`--backend onnx: ${why}. Use --backend auto (it falls back to tfjs) or wasm.`, 2);
    opts.log.info(`engine: tfjs-${rt.backend} (${why})`);
    return tfjs(`this student cannot use it (${why})`);
  }
  try {
    await loadOrt();
  } catch (e) {
    if (backend === 'onnx') throw new DistillError((e as Error).message, 2);
    opts.log.warn(`engine: tfjs-${rt.backend} (${(e as Error).message})`);
    return tfjs((e as Error).message);
  }
  const threads = opts.threads || cpus().length;
  const ep = await resolveDevice(device, opts.log);
  const on =
    ep === 'webgpu'
      ? 'WebGPU (weights, AdamW state and activations resident on the device)'
      : `${threads} CPU thread${threads > 1 ? 's' : ''}`;
  // a frozen image trunk runs once per training image, not in every step (OnnxStepEngine.trainImages)
  const imageInput = student.imageEncoder.frozen ? 'features' : 'pixels';
  opts.log.info(
    `engine: onnx (student towers and losses on onnxruntime-node, ${on}${imageInput === 'features' ? '; the frozen image trunk once per training image' : ''})`,
  );
  return new OnnxStudentEngine(student, {
    threads,
    seed: opts.seed,
    head: opts.head,
    executionProviders: [ep],
    imageInput,
  });
}

let probed: Promise<WebGpuReport> | undefined;

/** The WebGPU doctor probe (a tiny session in a child process), once per process. */
function probeWebGpu(): Promise<WebGpuReport> {
  probed ??= webgpuReport();
  return probed;
}

/**
 * The onnxruntime execution provider for `--device`: 'cpu'; 'webgpu' after the doctor probe started a
 * WebGPU session (else a DistillError with its one-line fix: a broken driver would abort this
 * process); 'auto': webgpu when the probe ran on a real (non-software) adapter, else cpu — lavapipe
 * (Mesa's CPU Vulkan driver) is far slower than the CPU provider, so it is only used when asked for.
 */
export async function resolveDevice(
  device: TrainDevice,
  log: Logger,
  probe: () => Promise<WebGpuReport> = probeWebGpu,
): Promise<'cpu' | 'webgpu'> {
  if (device === 'cpu') return 'cpu';
  const r = await probe();
  const adapter = r.device ? `${r.device.name} via ${r.device.driver}` : 'an adapter the Vulkan loader did not name';
  if (device === 'webgpu') {
    if (!r.session.ok)
      throw new DistillError(
        `--device webgpu: no WebGPU session could start (${r.session.error ?? 'unknown error'}). Fix: ${r.fix ?? 'see npx distill doctor'}; or use --device cpu.`,
        2,
      );
    if (r.device?.software)
      log.warn(
        `device: webgpu on ${adapter}: a CPU Vulkan driver, slower than --device cpu (a correctness check, not a speed-up)`,
      );
    else log.info(`device: webgpu on ${adapter}`);
    return 'webgpu';
  }
  if (!r.session.ok) {
    log.info(`device auto: cpu (no WebGPU: ${r.session.error ?? 'the probe failed'})`);
    return 'cpu';
  }
  if (!r.device || r.device.software) {
    log.info(
      `device auto: cpu (the only WebGPU adapter is ${adapter}, a software driver slower than the CPU provider; --device webgpu forces it)`,
    );
    return 'cpu';
  }
  log.info(`device auto: webgpu on ${adapter}`);
  return 'webgpu';
}

/**
 * The step engine for a student: the onnx engine when `backend` allows it and the student supports it
 * (the method's losses in its graphs: every method has a graph form), else tfjs (the same loss
 * definition on tfOps). The step's memory is planned first: a configuration that cannot fit is
 * refused before any work, with the estimate.
 */
export async function createStepEngine(
  student: DualEncoderStudent,
  o: {
    backend: TrainBackend;
    device: TrainDevice;
    threads: number;
    seed: number;
    rt: RuntimeInfo;
    log: Logger;
    head: LossHead;
    adamw: AdamWOptions;
    batchSize: number;
    textLength: number;
    size: string;
  },
): Promise<{ engine: StepEngine; estimate: MemoryEstimate }> {
  const onnx = await chooseStudentEngine(o.backend, o.rt, student, {
    threads: o.threads,
    seed: o.seed,
    log: o.log,
    head: o.head,
    device: o.device,
  });
  const params = student.parameterCount().total;
  if (!onnx) {
    const estimate = estimateStepMemory({ engine: 'tfjs', params });
    checkMemory(estimate, { engine: 'tfjs', batchSize: o.batchSize, size: o.size });
    return { engine: new TfjsStepEngine(student, o.adamw, o.rt.backend), estimate };
  }
  const plan = planOnnxStep(onnx, { params, batchSize: o.batchSize, textLength: o.textLength, size: o.size });
  if (plan.warning) o.log.warn(plan.warning);
  if (plan.mode === 'fused') {
    o.log.info(
      `memory: ${(plan.estimate.bytes / 1024 ** 3).toFixed(1)} GB per step with the forward recomputed inside the backward run ('fused'; the faster 'split' form would need ${((plan.splitBytes ?? 0) / 1024 ** 3).toFixed(1)} GB)`,
    );
  }
  return { engine: new OnnxStepEngine(student, onnx, o.adamw), estimate: plan.estimate };
}
