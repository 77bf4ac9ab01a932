import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '@distill/core';

const fx = (f: string) => fileURLToPath(new URL(`./fixtures/${f}`, import.meta.url));
const distill = (...args: string[]) =>
  spawnSync(process.execPath, ['apps/cli/bin/distill.js', ...args], { cwd: repoRoot(), encoding: 'utf8' });

describe('distill eval embeddings', () => {
  it('prints the seven recall numbers as JSON on stdout', () => {
    // 50 unit images, 5 noisy captions each (numpy, seed 0): every caption is closest to its own image.
    const r = distill('eval', 'embeddings', '--images', fx('images.npy'), '--texts', fx('texts.npy'), '--text-image', fx('text-image.json'));
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ i2t_r1: 100, i2t_r5: 100, i2t_r10: 100, t2i_r1: 100, t2i_r5: 100, t2i_r10: 100, rsum: 600 });
  });

  it('explains a text-image list of the wrong length without a stack trace', () => {
    const r = distill('eval', 'embeddings', '--images', fx('images.npy'), '--texts', fx('texts.npy'), '--text-image', fx('images.npy'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/expected a 1-D array of indices/);
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
  });
});
