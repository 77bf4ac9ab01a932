import { readFileSync, existsSync } from 'node:fs';
import { atomicWriteFile, DistillError } from '../fs.js';

/**
 * A small reader/writer for NumPy `.npy` files (format versions 1.0, 2.0 and 3.0, C order, little endian).
 * Read dtypes: float32 (`<f4`), float64 (`<f8`), int32 (`<i4`), int64 (`<i8`), uint8 (`|u1`).
 * Written dtypes: float32, int32, uint8.
 */
export type NpyData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
export interface NpyArray<T extends NpyData = NpyData> {
  dtype: '<f4' | '<f8' | '<i4' | '<i8' | '|u1';
  shape: number[];
  data: T;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Parse the bytes of an .npy file. `name` is used in error messages. */
export function parseNpy(bytes: Uint8Array, name = '<buffer>'): NpyArray {
  const bad = (why: string) =>
    new DistillError(`${name} is not a valid .npy file: ${why}. Save it with numpy.save (float32, C order).`);
  if (bytes.length < 10 || MAGIC.some((m, i) => bytes[i] !== m)) throw bad('missing the \\x93NUMPY magic');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    headerLen = view.getUint32(8, true);
    start = 12;
  } else throw bad(`unsupported format version ${major}`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw bad(`unreadable header ${JSON.stringify(header.trim())}`);
  if (fortran === 'True') throw bad('fortran_order=True is not supported (use numpy.ascontiguousarray before saving)');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const off = start + headerLen;
  const d = descr === '<u1' ? '|u1' : descr;
  const sizes: Record<string, number> = { '<f4': 4, '<f8': 8, '<i4': 4, '<i8': 8, '|u1': 1 };
  const size = sizes[d];
  if (!size) throw bad(`dtype '${descr}' is not supported (use float32 '<f4', float64, int32, int64 or uint8)`);
  if (bytes.length - off < count * size)
    throw bad(`data is truncated: ${bytes.length - off} bytes for shape (${shape.join(', ')}) of ${descr}`);
  // Copy so the result is aligned and independent of the file buffer.
  const raw = new Uint8Array(bytes.subarray(off, off + count * size)); // a copy (Buffer.slice would be a view)
  const buf = raw.buffer;
  let data: NpyData;
  if (d === '<f4') data = new Float32Array(buf, 0, count);
  else if (d === '<f8') data = new Float64Array(buf, 0, count);
  else if (d === '<i4') data = new Int32Array(buf, 0, count);
  else if (d === '<i8') data = new BigInt64Array(buf, 0, count);
  else data = new Uint8Array(buf, 0, count);
  return { dtype: d as NpyArray['dtype'], shape, data };
}

export function readNpy(path: string): NpyArray {
  if (!existsSync(path)) throw new DistillError(`File not found: ${path} (expected a NumPy .npy file).`);
  return parseNpy(readFileSync(path), path);
}

/** Read an .npy as float32 (float64 is converted), checking that it is 2-D: returns [rows, cols]. */
export function readNpyMatrixF32(path: string): { data: Float32Array; rows: number; cols: number } {
  const a = readNpy(path);
  if (a.shape.length !== 2)
    throw new DistillError(`${path}: expected a 2-D array [N, D], got shape (${a.shape.join(', ')}).`);
  let data: Float32Array;
  if (a.data instanceof Float32Array) data = a.data;
  else if (a.data instanceof Float64Array) data = Float32Array.from(a.data);
  else throw new DistillError(`${path}: expected float32 embeddings, got dtype '${a.dtype}'.`);
  return { data, rows: a.shape[0], cols: a.shape[1] };
}

/** Read an integer .npy (int32/int64/uint8) as a 1-D Int32Array. */
export function readNpyIndices(path: string): Int32Array {
  const a = readNpy(path);
  if (a.shape.length !== 1)
    throw new DistillError(`${path}: expected a 1-D array of indices, got shape (${a.shape.join(', ')}).`);
  if (a.data instanceof Int32Array) return a.data;
  if (a.data instanceof BigInt64Array) return Int32Array.from(a.data, (x) => Number(x));
  if (a.data instanceof Uint8Array) return Int32Array.from(a.data);
  const out = new Int32Array(a.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = a.data[i];
    if (!Number.isInteger(v)) throw new DistillError(`${path}: expected integer indices, found ${v} at position ${i}.`);
    out[i] = v;
  }
  return out;
}

/** Encode an array as .npy (version 1.0) bytes. */
export function encodeNpy(data: Float32Array | Int32Array | Uint8Array, shape: number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length)
    throw new Error(`encodeNpy: shape (${shape.join(', ')}) holds ${count} values, data has ${data.length}`);
  const descr = data instanceof Float32Array ? '<f4' : data instanceof Int32Array ? '<i4' : '|u1';
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** Write an array as a .npy file (atomically). */
export function writeNpy(path: string, data: Float32Array | Int32Array | Uint8Array, shape: number[]): void {
  atomicWriteFile(path, encodeNpy(data, shape));
}
