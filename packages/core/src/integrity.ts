import { createHash } from 'node:crypto';
import { DistillError } from './fs.js';

/**
 * Integrity of the tensor files distill writes and reads back (checkpoints, teacher-feature caches):
 * a sha256 over every tensor (name, shape, float32 bytes, in name order) and an optional JSON text,
 * stored in the safetensors header's `__metadata__.checksum` and verified on load.
 */
export type TensorMap = Record<string, { shape: number[]; data: Float32Array }>;

/** `sha256:<hex>` of the tensors (sorted by name) and `extra` (e.g. the state JSON). */
export function tensorChecksum(tensors: TensorMap, extra = ''): string {
  const h = createHash('sha256');
  for (const name of Object.keys(tensors).sort()) {
    const { shape, data } = tensors[name];
    h.update(`${name}\0${JSON.stringify(shape)}\0`);
    h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  h.update('\0');
  h.update(extra);
  return `sha256:${h.digest('hex')}`;
}

export interface SafetensorsHeader {
  metadata: Record<string, string>;
  tensors: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  /** Byte offset where the data section starts. */
  dataStart: number;
}

/**
 * Parse and check a safetensors header: the header length, the JSON, and that every tensor's bytes
 * lie inside the file (a truncated file fails here, naming `where`).
 */
export function readSafetensorsHeader(bytes: Uint8Array, where: string): SafetensorsHeader {
  if (bytes.length < 8) throw new DistillError(`${where} is truncated (${bytes.length} bytes).`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.length) throw new DistillError(`${where} is truncated (header of ${n} bytes, file of ${bytes.length}).`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new DistillError(`${where} is corrupt (its safetensors header is not JSON).`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new DistillError(`${where} is corrupt (its safetensors header is not an object).`);
  const dataStart = 8 + n;
  const tensors: SafetensorsHeader['tensors'] = {};
  for (const [name, info] of Object.entries(raw)) {
    if (name === '__metadata__') continue;
    const t = info as SafetensorsHeader['tensors'][string];
    const off = t?.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !Array.isArray(t.shape) || !(off[0] >= 0 && off[1] >= off[0])) {
      throw new DistillError(`${where} is corrupt (tensor '${name}' has a malformed header entry).`);
    }
    if (dataStart + off[1] > bytes.length) {
      throw new DistillError(`${where} is truncated (tensor '${name}' ends at byte ${dataStart + off[1]}, file has ${bytes.length}).`);
    }
    tensors[name] = t;
  }
  const metadata = (raw.__metadata__ ?? {}) as Record<string, string>;
  return { metadata, tensors, dataStart };
}
