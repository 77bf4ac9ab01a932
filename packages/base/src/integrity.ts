import { createHash } from 'node:crypto';

/**
 * Integrity of the tensor files distill writes and reads back (checkpoints, teacher-feature caches):
 * a sha256 over every tensor (name, shape, float32 bytes, in name order) and an optional JSON text,
 * stored in the safetensors header's `__metadata__.checksum` (read with `readSafetensorsHeader`,
 * formats/safetensors.ts) and verified on load.
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
