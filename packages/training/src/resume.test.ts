import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '@distill/core';
import { EMOJI_TEACHER_DIR } from './teacher-features.js';

// End to end through the CLI, as a user runs it: `distill train --preset smoke`, killed with SIGKILL
// after its first checkpoints, then `--resume`, must reach exactly the uninterrupted run's metrics.
const root = repoRoot();
const bin = join(root, 'apps', 'cli', 'bin', 'distill.js');
const args = (dir: string) => ['train', '--preset', 'smoke', '--student', 'vit-bert', '--run-dir', dir, '--checkpoint-every', '3'];
const result = (dir: string) => JSON.parse(readFileSync(join(dir, 'student', 'result.json'), 'utf8')) as { test: Record<string, number>; val: unknown[]; steps: number };
const stepLines = (dir: string) => {
  const f = join(dir, 'student', 'metrics.jsonl');
  return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter((l) => l.includes('"components"')).length : 0;
};

describe.skipIf(!existsSync(join(EMOJI_TEACHER_DIR, 'student.json')))('a killed run resumes to the same result', () => {
  it('kill after 7 steps, --resume, identical final metrics', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'distill-resume-'));
    const a = join(tmp, 'a');
    const b = join(tmp, 'b');
    const full = spawnSync(process.execPath, [bin, ...args(a)], { cwd: root, encoding: 'utf8' });
    expect(full.status, full.stderr).toBe(0);
    expect(full.stdout).toMatch(/test RSUM \d+\.\d\d\n$/);

    const child = spawn(process.execPath, [bin, ...args(b)], { cwd: root, stdio: 'ignore' });
    const deadline = Date.now() + 120_000;
    while (stepLines(b) < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(stepLines(b)).toBeGreaterThanOrEqual(7);
    expect(existsSync(join(b, 'student', 'result.json'))).toBe(false);

    const resumed = spawnSync(process.execPath, [bin, 'train', '--resume', b], { cwd: root, encoding: 'utf8' });
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resumed from step [3-9]/);
    expect(result(b).steps).toBe(result(a).steps);
    expect(result(b).val).toEqual(result(a).val);
    expect(result(b).test).toEqual(result(a).test);
    expect(stepLines(b)).toBe(stepLines(a));
  });

  it('a NaN loss stops the run naming the loss and step, keeping the last good checkpoint', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'distill-nan-')), 'run');
    const r = spawnSync(process.execPath, [bin, ...args(dir), '--lr', '1e30'], { cwd: root, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Loss '\w+' is (NaN|Infinity|-Infinity) at step \d+/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});
