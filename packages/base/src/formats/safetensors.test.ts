import { describe, expect, it } from 'vitest';
import { encodeSafetensors, readSafetensors, readSafetensorsHeader } from './safetensors.js';

/** Build a safetensors file by hand with one tensor of the given dtype and raw bytes. */
function rawFile(dtype: string, shape: number[], bytes: Uint8Array): Uint8Array {
  const header = new TextEncoder().encode(
    JSON.stringify({ __metadata__: { format: 'pt' }, t: { dtype, shape, data_offsets: [0, bytes.length] } }),
  );
  const out = new Uint8Array(8 + header.length + bytes.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  out.set(bytes, 8 + header.length);
  return out;
}

describe('safetensors', () => {
  it('round-trips F32 tensors with names and shapes', () => {
    const bytes = encodeSafetensors({
      'a.weight': { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, -6.5]) },
      b: { shape: [1], data: Float32Array.from([7]) },
    });
    const m = readSafetensors(bytes);
    expect([...m.keys()]).toEqual(['a.weight', 'b']);
    expect(m.get('a.weight')!.shape).toEqual([2, 3]);
    expect([...m.get('a.weight')!.data]).toEqual([1, 2, 3, 4, 5, -6.5]);
    expect([...m.get('b')!.data]).toEqual([7]);
  });

  it('converts F16 and BF16 to float32', () => {
    // F16: 1.0 = 0x3c00, -2.0 = 0xc000, 0.5 = 0x3800 ; BF16: 1.0 = 0x3f80, -3.0 = 0xc040
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3800]).buffer);
    expect([...readSafetensors(rawFile('F16', [3], f16)).get('t')!.data]).toEqual([1, -2, 0.5]);
    const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc040]).buffer);
    expect([...readSafetensors(rawFile('BF16', [2], bf16)).get('t')!.data]).toEqual([1, -3]);
  });

  it('converts U8 (quantised weights) to float32', () => {
    expect([...readSafetensors(rawFile('U8', [4], new Uint8Array([0, 1, 128, 255]))).get('t')!.data]).toEqual([
      0, 1, 128, 255,
    ]);
  });

  it('rejects truncated data and unknown dtypes with the tensor name', () => {
    expect(() => readSafetensors(rawFile('F32', [4], new Uint8Array(8)))).toThrow(/'t' has 8 bytes, expected 16/);
    expect(() => readSafetensors(rawFile('U4', [1], new Uint8Array(1)))).toThrow(/unsupported dtype U4/);
    expect(() => readSafetensors(new Uint8Array(3))).toThrow(/not a safetensors file/);
  });
});

describe('safetensors header check', () => {
  const file = (header: object, dataBytes: number) => {
    let json = JSON.stringify(header);
    while (json.length % 8) json += ' ';
    const out = new Uint8Array(8 + json.length + dataBytes);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(new TextEncoder().encode(json), 8);
    return out;
  };
  it('reads metadata and tensor entries', () => {
    const h = readSafetensorsHeader(
      file({ __metadata__: { k: 'v' }, w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 8),
      'f',
    );
    expect(h.metadata).toEqual({ k: 'v' });
    expect(h.tensors.w.shape).toEqual([2]);
  });
  it('names the file when it is truncated or its header is broken', () => {
    expect(() => readSafetensorsHeader(new Uint8Array(3), '/x/a.safetensors')).toThrow(
      '/x/a.safetensors is truncated (3 bytes).',
    );
    expect(() =>
      readSafetensorsHeader(file({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 4), '/x/b'),
    ).toThrow(/^\/x\/b is truncated \(tensor 'w' ends at byte/);
    const bad = file({ w: 1 }, 0);
    bad[8] = 'x'.charCodeAt(0);
    expect(() => readSafetensorsHeader(bad, '/x/c')).toThrow('/x/c is corrupt (its safetensors header is not JSON).');
    expect(() => readSafetensorsHeader(file({ w: { shape: [1] } }, 4), '/x/d')).toThrow(
      /\/x\/d is corrupt \(tensor 'w' has a malformed header entry\)/,
    );
  });
});
