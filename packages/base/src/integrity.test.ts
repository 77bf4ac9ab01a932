import { describe, expect, it } from 'vitest';
import { tensorChecksum } from './integrity.js';

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
