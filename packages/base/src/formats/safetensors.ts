/**
 * safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header length, a JSON
 * header (dtype, shape and byte range of each tensor, optional `__metadata__` strings), then the raw data.
 * `readSafetensors` reads Hugging Face checkpoints (any float/int dtype, to float32), `encodeSafetensors`
 * writes float32 tensors (checkpoints, saved students, feature caches), `readSafetensorsHeader` checks a
 * file distill wrote (truncation, a broken header) before its tensors are read.
 */
import { readFileSync } from 'node:fs';
import { DistillError } from '../fs.js';

/** One tensor of a safetensors file, converted to float32. */
export interface SafeTensor {
  dtype: string;
  shape: number[];
  data: Float32Array;
}

const BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, U8: 1 };

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/**
 * Read a safetensors file (8-byte little-endian header length, JSON header, raw data) into float32
 * arrays. F32, F16, BF16, F64, I64, I32 and U8 tensors are converted to float32.
 */
export function readSafetensors(source: string | Uint8Array): Map<string, SafeTensor> {
  const where = typeof source === 'string' ? source : '<buffer>';
  const buf = typeof source === 'string' ? readFileSync(source) : source;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.byteLength < 8) throw new DistillError(`${where}: not a safetensors file (too short).`, 2);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > buf.byteLength - 8)
    throw new DistillError(`${where}: not a safetensors file (bad header length).`, 2);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  try {
    header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + headerLen)));
  } catch {
    throw new DistillError(`${where}: not a safetensors file (header is not JSON).`, 2);
  }
  const base = 8 + headerLen;
  const out = new Map<string, SafeTensor>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const {
      dtype,
      shape,
      data_offsets: [start, end],
    } = info;
    const bytes = BYTES[dtype];
    if (!bytes)
      throw new DistillError(
        `${where}: tensor '${name}' has unsupported dtype ${dtype} (supported: ${Object.keys(BYTES).join(', ')}).`,
        2,
      );
    const n = shape.reduce((a, b) => a * b, 1);
    if (end - start !== n * bytes)
      throw new DistillError(`${where}: tensor '${name}' has ${end - start} bytes, expected ${n * bytes}.`, 2);
    const data = new Float32Array(n);
    const o = base + start;
    for (let i = 0; i < n; i++) {
      const p = o + i * bytes;
      switch (dtype) {
        case 'F32':
          data[i] = view.getFloat32(p, true);
          break;
        case 'F16':
          data[i] = f16ToF32(view.getUint16(p, true));
          break;
        case 'BF16':
          data[i] = new Float32Array(new Uint32Array([view.getUint16(p, true) << 16]).buffer)[0];
          break;
        case 'F64':
          data[i] = view.getFloat64(p, true);
          break;
        case 'I64':
          data[i] = Number(view.getBigInt64(p, true));
          break;
        case 'I32':
          data[i] = view.getInt32(p, true);
          break;
        case 'U8':
          data[i] = view.getUint8(p);
          break;
      }
    }
    out.set(name, { dtype, shape, data });
  }
  return out;
}

/** Write float32 tensors as a safetensors file's bytes (F32 only; used for checkpoints and tests). */
export function encodeSafetensors(
  tensors: Record<string, { shape: number[]; data: Float32Array }>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const names = Object.keys(tensors);
  for (const name of names) {
    const { shape, data } = tensors[name];
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.length * 4] };
    offset += data.length * 4;
  }
  let json = JSON.stringify(header);
  while ((json.length + 8) % 8 !== 0) json += ' ';
  const hbytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hbytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hbytes.length), true);
  out.set(hbytes, 8);
  let p = 8 + hbytes.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), p);
    p += d.byteLength;
  }
  return out;
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
  if (8 + n > bytes.length)
    throw new DistillError(`${where} is truncated (header of ${n} bytes, file of ${bytes.length}).`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new DistillError(`${where} is corrupt (its safetensors header is not JSON).`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw))
    throw new DistillError(`${where} is corrupt (its safetensors header is not an object).`);
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
      throw new DistillError(
        `${where} is truncated (tensor '${name}' ends at byte ${dataStart + off[1]}, file has ${bytes.length}).`,
      );
    }
    tensors[name] = t;
  }
  const metadata = (raw.__metadata__ ?? {}) as Record<string, string>;
  return { metadata, tensors, dataStart };
}
