import { existsSync, readFileSync } from 'node:fs';
import { atomicWriteFile, DistillError } from '@distill/core';
import { encodeSafetensors, readSafetensors } from '@distill/student-architectures';

/**
 * A checkpoint is ONE safetensors file written atomically: named float32 arrays (student weights,
 * optimizer moments, feature queues) plus a JSON `state` in the metadata (step, epoch, sampler
 * position, RNG state, balancer state, metrics so far). One file means a crash can never leave a
 * checkpoint whose parts disagree.
 */
export interface Checkpoint<S = unknown> {
  tensors: Record<string, { shape: number[]; data: Float32Array }>;
  state: S;
}

export function writeCheckpoint<S>(path: string, ckpt: Checkpoint<S>): void {
  atomicWriteFile(path, encodeSafetensors(ckpt.tensors, { format: 'distill-checkpoint-v1', state: JSON.stringify(ckpt.state) }));
}

export function readCheckpoint<S>(path: string): Checkpoint<S> {
  if (!existsSync(path)) throw new DistillError(`Checkpoint not found: ${path}`);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new DistillError(`Cannot read checkpoint ${path}: ${(e as Error).message}`);
  }
  const header = readSafetensorsMetadata(bytes);
  if (header.format !== 'distill-checkpoint-v1' || typeof header.state !== 'string') {
    throw new DistillError(`${path} is not a distill checkpoint (no distill-checkpoint-v1 metadata).`);
  }
  const tensors: Checkpoint['tensors'] = {};
  for (const [name, t] of readSafetensors(bytes)) tensors[name] = { shape: t.shape, data: t.data };
  return { tensors, state: JSON.parse(header.state) as S };
}

function readSafetensorsMetadata(bytes: Uint8Array): Record<string, string> {
  if (bytes.length < 8) throw new DistillError('Checkpoint file is truncated.');
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.length) throw new DistillError('Checkpoint header is truncated.');
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) as { __metadata__?: Record<string, string> };
  return header.__metadata__ ?? {};
}
