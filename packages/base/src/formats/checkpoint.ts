import { existsSync, readFileSync } from 'node:fs';
import { atomicWriteFile, DistillError } from '../fs.js';
import { tensorChecksum } from '../integrity.js';
import { encodeSafetensors, readSafetensors, readSafetensorsHeader } from './safetensors.js';

/**
 * A checkpoint is ONE safetensors file written atomically: named float32 arrays (student weights,
 * optimizer moments, feature queues) plus a JSON `state` in the metadata (step, epoch, sampler
 * position, RNG state, balancer state, metrics so far). One file means a crash can never leave a
 * checkpoint whose parts disagree. The metadata also holds `checksum`, a sha256 over every tensor and
 * the state, verified on load: a truncated or bit-flipped file is reported, never used.
 */
export interface Checkpoint<S = unknown> {
  tensors: Record<string, { shape: number[]; data: Float32Array }>;
  state: S;
}

const FORMAT = 'distill-checkpoint-v1';

export function writeCheckpoint<S>(path: string, ckpt: Checkpoint<S>): void {
  const state = JSON.stringify(ckpt.state);
  atomicWriteFile(
    path,
    encodeSafetensors(ckpt.tensors, { format: FORMAT, state, checksum: tensorChecksum(ckpt.tensors, state) }),
  );
}

/** Read and verify a checkpoint; any problem is a DistillError whose message starts with the path. */
export function readCheckpoint<S>(path: string): Checkpoint<S> {
  if (!existsSync(path)) throw new DistillError(`Checkpoint not found: ${path}`);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new DistillError(`Cannot read checkpoint ${path}: ${(e as Error).message}`);
  }
  const { metadata } = readSafetensorsHeader(bytes, path);
  if (metadata.format !== FORMAT || typeof metadata.state !== 'string') {
    throw new DistillError(`${path} is not a distill checkpoint (no ${FORMAT} metadata).`);
  }
  if (typeof metadata.checksum !== 'string')
    throw new DistillError(`${path} has no checksum (written by an older distill): it cannot be verified.`);
  const tensors: Checkpoint['tensors'] = {};
  for (const [name, t] of readSafetensors(bytes)) tensors[name] = { shape: t.shape, data: t.data };
  if (tensorChecksum(tensors, metadata.state) !== metadata.checksum) {
    throw new DistillError(`${path} is corrupt: its data does not match its checksum.`);
  }
  let state: S;
  try {
    state = JSON.parse(metadata.state) as S;
  } catch {
    throw new DistillError(`${path} is corrupt: its state is not JSON.`);
  }
  return { tensors, state };
}
