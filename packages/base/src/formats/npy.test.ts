import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeNpy, parseNpy, readNpy, readNpyIndices, readNpyMatrixF32, writeNpy } from './npy.js';

const fx = (f: string) => fileURLToPath(new URL(`./fixtures/${f}`, import.meta.url));

describe('npy reader/writer', () => {
  it('reads files written by numpy.save (float32, float64, int64)', () => {
    // np.array([[1.5,-2],[3,4.25],[0,1e-8]], dtype=np.float32)
    const a = readNpyMatrixF32(fx('f32.npy'));
    expect([a.rows, a.cols]).toEqual([3, 2]);
    expect(Array.from(a.data)).toEqual([1.5, -2, 3, 4.25, 0, Math.fround(1e-8)]);
    // np.arange(6, dtype=np.float64).reshape(2,3)/4 -> converted to float32
    const b = readNpyMatrixF32(fx('f64.npy'));
    expect([b.rows, b.cols, ...b.data]).toEqual([2, 3, 0, 0.25, 0.5, 0.75, 1, 1.25]);
    expect(Array.from(readNpyIndices(fx('i64.npy')))).toEqual([0, 0, 1, 2]);
    expect(readNpy(fx('i64.npy')).dtype).toBe('<i8');
  });

  it('round-trips what it writes, with a header numpy accepts (64-byte aligned)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'npy-'));
    const data = Float32Array.from({ length: 12 }, (_, i) => i / 3);
    writeNpy(join(dir, 'a.npy'), data, [4, 3]);
    const bytes = readFileSync(join(dir, 'a.npy'));
    expect((10 + bytes.readUInt16LE(8)) % 64).toBe(0);
    const back = readNpy(join(dir, 'a.npy'));
    expect(back.shape).toEqual([4, 3]);
    expect(Array.from(back.data as Float32Array)).toEqual(Array.from(data));
    const idx = parseNpy(encodeNpy(Int32Array.from([3, 1, 2]), [3]));
    expect(idx.dtype).toBe('<i4');
    expect(Array.from(idx.data as Int32Array)).toEqual([3, 1, 2]);
  });

  it('gives clear errors for bad files and shapes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'npy-'));
    writeFileSync(join(dir, 'bad.npy'), 'hello world, not numpy');
    expect(() => readNpy(join(dir, 'bad.npy'))).toThrow(/bad\.npy is not a valid \.npy file/);
    expect(() => readNpy(join(dir, 'missing.npy'))).toThrow(/File not found/);
    expect(() => readNpyMatrixF32(fx('i64.npy'))).toThrow(/expected a 2-D array/);
    expect(() => readNpyIndices(fx('f32.npy'))).toThrow(/expected a 1-D array/);
    const truncated = encodeNpy(new Float32Array(8), [2, 4]).subarray(0, 100);
    expect(() => parseNpy(truncated, 'x.npy')).toThrow(/truncated/);
  });
});
