import { describe, expect, it } from 'vitest';
import { Rng } from './rng.js';

describe('Rng', () => {
  it('same seed gives the same numbers; another seed gives others', () => {
    const a = new Rng(42),
      b = new Rng(42),
      c = new Rng(43);
    const xs = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('state saves and restores exactly (for checkpoints)', () => {
    const r = new Rng(7);
    r.normal();
    const s = r.getState();
    const tail = [r.next(), r.normal(), r.int(100)];
    const back = new Rng(0);
    back.setState(s);
    expect([back.next(), back.normal(), back.int(100)]).toEqual(tail);
    expect(new Rng(s).next()).toBe(tail[0]);
  });

  it('normals have mean ~0 and std ~1; permutations are permutations', () => {
    const v = new Rng(1).normalArray(20000);
    const mean = v.reduce((s, x) => s + x, 0) / v.length;
    const sd = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(sd - 1)).toBeLessThan(0.03);
    const p = Array.from(new Rng(3).permutation(50)).sort((x, y) => x - y);
    expect(p).toEqual([...Array(50).keys()]);
  });

  it('fork gives independent, reproducible streams without advancing the parent', () => {
    const r = new Rng(9);
    const f1 = r.fork('data').next();
    const f2 = r.fork('model').next();
    expect(f1).not.toBe(f2);
    expect(new Rng(9).fork('data').next()).toBe(f1);
    expect(r.next()).toBe(new Rng(9).next());
  });

  it('rejects a non-finite seed', () => {
    expect(() => new Rng(Number.NaN)).toThrow(/finite/);
  });
});
