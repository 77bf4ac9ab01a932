import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCheckpoint, writeCheckpoint } from './checkpoint.js';

describe('checkpoints', () => {
  it('round-trip tensors and JSON state in one file', () => {
    const p = join(mkdtempSync(join(tmpdir(), 'ckpt-')), 'c.safetensors');
    writeCheckpoint(p, { tensors: { 'student/w': { shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) } }, state: { step: 12, rng: [1, 2, 3, 4] } });
    const c = readCheckpoint<{ step: number }>(p);
    expect(c.state.step).toBe(12);
    expect(Array.from(c.tensors['student/w'].data)).toEqual([1, 2, 3, 4]);
    expect(c.tensors['student/w'].shape).toEqual([2, 2]);
  });

  it('names the file when it is missing, truncated or not a distill checkpoint', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
    expect(() => readCheckpoint(join(dir, 'none.safetensors'))).toThrow(/Checkpoint not found: .*none\.safetensors/);
    writeFileSync(join(dir, 'short'), Buffer.from([1, 2]));
    expect(() => readCheckpoint(join(dir, 'short'))).toThrow(/truncated/);
  });
});
