import { describe, expect, it } from 'vitest';
import { readSafetensorsHeader, tensorChecksum } from './integrity.js';

const t = (data: number[], shape = [data.length]) => ({ shape, data: Float32Array.from(data) });

describe('tensor checksums', () => {
  it('change with any value, shape, name or the extra text; not with the order tensors are listed in', () => {
    const base = tensorChecksum({ a: t([1, 2]), b: t([3]) }, '{"step":1}');
    expect(base).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(tensorChecksum({ b: t([3]), a: t([1, 2]) }, '{"step":1}')).toBe(base);
    expect(tensorChecksum({ a: t([1, 2.0000002]), b: t([3]) }, '{"step":1}')).not.toBe(base);
    expect(tensorChecksum({ a: t([1, 2], [2, 1]), b: t([3]) }, '{"step":1}')).not.toBe(base);
    expect(tensorChecksum({ c: t([1, 2]), b: t([3]) }, '{"step":1}')).not.toBe(base);
    expect(tensorChecksum({ a: t([1, 2]), b: t([3]) }, '{"step":2}')).not.toBe(base);
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
    const h = readSafetensorsHeader(file({ __metadata__: { k: 'v' }, w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 8), 'f');
    expect(h.metadata).toEqual({ k: 'v' });
    expect(h.tensors.w.shape).toEqual([2]);
  });
  it('names the file when it is truncated or its header is broken', () => {
    expect(() => readSafetensorsHeader(new Uint8Array(3), '/x/a.safetensors')).toThrow('/x/a.safetensors is truncated (3 bytes).');
    expect(() => readSafetensorsHeader(file({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 4), '/x/b')).toThrow(/^\/x\/b is truncated \(tensor 'w' ends at byte/);
    const bad = file({ w: 1 }, 0);
    bad[8] = 'x'.charCodeAt(0);
    expect(() => readSafetensorsHeader(bad, '/x/c')).toThrow('/x/c is corrupt (its safetensors header is not JSON).');
    expect(() => readSafetensorsHeader(file({ w: { shape: [1] } }, 4), '/x/d')).toThrow(/\/x\/d is corrupt \(tensor 'w' has a malformed header entry\)/);
  });
});
