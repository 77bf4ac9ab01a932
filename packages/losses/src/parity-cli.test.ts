import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readJsonFile, repoRoot } from '@distill/core';

// The command runs in a child process (the repository's sources through tsx); in-process parity checks are in parity.test.ts.
const fixture = (f: string) => fileURLToPath(new URL(`./fixtures/${f}`, import.meta.url));
const BASELINE_KEYS = [
  'info_nce_image_text',
  'contrastive',
  'kd',
  'fitnet',
  'rkd_distance_image',
  'rkd_angle_image',
  'rkd',
  'clip_kd',
];

describe('distill parity losses <baselines-format file>', () => {
  const distill = (...args: string[]) =>
    spawnSync(process.execPath, ['apps/cli/bin/distill.js', 'parity', 'losses', ...args], {
      cwd: repoRoot(),
      encoding: 'utf8',
    });

  it('prints each key with its value and relative difference, worst last as worst_rel, exit 0', () => {
    const r = distill(fixture('baselines-seed7.json'));
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(BASELINE_KEYS.length + 1);
    const rels = lines.slice(0, -1).map((l) => {
      const [key, value, rel] = l.split(' ');
      expect(BASELINE_KEYS).toContain(key);
      expect(Number(value)).toBeGreaterThan(0);
      return Number(rel.replace('rel=', ''));
    });
    expect(rels).toEqual([...rels].sort((a, b) => a - b));
    const worst = Number(lines.at(-1)!.replace('worst_rel=', ''));
    expect(worst).toBe(rels.at(-1));
    expect(worst).toBeLessThanOrEqual(1e-5);
  });

  it('exits 1 when a value disagrees beyond --tolerance', () => {
    const dir = mkdtempSync(join(tmpdir(), 'distill-parity-'));
    const file = join(dir, 'wrong.json');
    const fx = readJsonFile<{ outputs: Record<string, number> }>(fixture('baselines.json'));
    writeFileSync(file, JSON.stringify({ ...fx, outputs: { ...fx.outputs, rkd: fx.outputs.rkd * (1 + 1e-4) } }));
    const r = distill(file);
    rmSync(dir, { recursive: true, force: true });
    expect(r.status).toBe(1);
    expect(r.stdout.trim().split('\n').at(-2)).toMatch(/^rkd /);
    expect(r.stderr).toMatch(/worst_rel 1\.00e-4 is above the tolerance 0\.00001/);
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
  });
});
