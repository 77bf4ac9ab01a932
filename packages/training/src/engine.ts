import { cpus } from 'node:os';
import { DistillError, loadOrt, type BackendChoice, type Logger, type RuntimeInfo } from '@distill/core';
import { OnnxStudentEngine, onnxSupport, type DualEncoderStudent, type LossHead } from '@distill/student-architectures';
import type { TrainBackend } from './config.js';

/** The tfjs backend to initialise for a training backend ('onnx' still uses tfjs for losses without a graph form and to build and save the student). */
export function tfjsBackendFor(backend: TrainBackend): BackendChoice {
  return backend === 'onnx' ? 'auto' : backend;
}

/**
 * Picks where the student's towers train. 'onnx': onnxruntime-node (an error says why when the
 * student cannot); 'auto': onnx unless a tensorflow backend loaded or the student cannot (then tfjs,
 * with the reason logged); any tfjs backend: tfjs. Returns the onnx engine, or undefined for tfjs.
 * With a `head` (the losses' graph form) the losses run in the same onnxruntime graphs.
 */
export async function chooseStudentEngine(
  backend: TrainBackend,
  rt: RuntimeInfo,
  student: DualEncoderStudent,
  opts: { threads: number; seed: number; log: Logger; head?: LossHead; lossName?: string },
): Promise<OnnxStudentEngine | undefined> {
  if (backend !== 'onnx' && backend !== 'auto') return undefined;
  if (backend === 'auto' && rt.backend === 'tensorflow') return undefined;
  const why = onnxSupport(student);
  if (why) {
    if (backend === 'onnx') throw new DistillError(`--backend onnx: ${why}. Use --backend auto (it falls back to tfjs) or wasm.`, 2);
    opts.log.info(`engine: tfjs-${rt.backend} (${why})`);
    return undefined;
  }
  try {
    await loadOrt();
  } catch (e) {
    if (backend === 'onnx') throw new DistillError((e as Error).message, 2);
    opts.log.warn(`engine: tfjs-${rt.backend} (${(e as Error).message})`);
    return undefined;
  }
  const threads = opts.threads || cpus().length;
  const where = opts.head ? 'losses in the same graphs' : `the '${opts.lossName ?? 'chosen'}' losses have no graph form: on tfjs-${rt.backend}`;
  opts.log.info(`engine: onnx (student towers on onnxruntime-node, ${threads} thread${threads > 1 ? 's' : ''}; ${where})`);
  return new OnnxStudentEngine(student, { threads, seed: opts.seed, head: opts.head });
}
