import { readFileSync } from 'node:fs';
import { DistillError } from '@distill/core';

/** One tensor of a safetensors file, converted to float32. */
export interface SafeTensor {
  dtype: string;
  shape: number[];
  data: Float32Array;
}

const BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4 };

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
 * arrays. F32, F16, BF16, F64, I64 and I32 tensors are converted to float32.
 */
export function readSafetensors(source: string | Uint8Array): Map<string, SafeTensor> {
  const where = typeof source === 'string' ? source : '<buffer>';
  const buf = typeof source === 'string' ? readFileSync(source) : source;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.byteLength < 8) throw new DistillError(`${where}: not a safetensors file (too short).`, 2);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > buf.byteLength - 8) throw new DistillError(`${where}: not a safetensors file (bad header length).`, 2);
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
    const { dtype, shape, data_offsets: [start, end] } = info;
    const bytes = BYTES[dtype];
    if (!bytes) throw new DistillError(`${where}: tensor '${name}' has unsupported dtype ${dtype} (supported: ${Object.keys(BYTES).join(', ')}).`, 2);
    const n = shape.reduce((a, b) => a * b, 1);
    if (end - start !== n * bytes) throw new DistillError(`${where}: tensor '${name}' has ${end - start} bytes, expected ${n * bytes}.`, 2);
    const data = new Float32Array(n);
    const o = base + start;
    for (let i = 0; i < n; i++) {
      const p = o + i * bytes;
      switch (dtype) {
        case 'F32': data[i] = view.getFloat32(p, true); break;
        case 'F16': data[i] = f16ToF32(view.getUint16(p, true)); break;
        case 'BF16': data[i] = new Float32Array(new Uint32Array([view.getUint16(p, true) << 16]).buffer)[0]; break;
        case 'F64': data[i] = view.getFloat64(p, true); break;
        case 'I64': data[i] = Number(view.getBigInt64(p, true)); break;
        case 'I32': data[i] = view.getInt32(p, true); break;
      }
    }
    out.set(name, { dtype, shape, data });
  }
  return out;
}

/** Write float32 tensors as a safetensors file's bytes (F32 only; used for checkpoints and tests). */
export function encodeSafetensors(tensors: Record<string, { shape: number[]; data: Float32Array }>, metadata?: Record<string, string>): Uint8Array {
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
