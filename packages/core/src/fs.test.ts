import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { atomicWriteFile, readJsonFile, RunDirectory } from './fs.js';

describe('atomic writes', () => {
  it('replaces the file and leaves no temporary behind', () => {
    const dir = mkdtempSync(join(tmpdir(), 'distill-fs-'));
    const p = join(dir, 'a', 'state.json');
    atomicWriteFile(p, 'one');
    atomicWriteFile(p, 'two');
    expect(readFileSync(p, 'utf8')).toBe('two');
    expect(readdirSync(join(dir, 'a'))).toEqual(['state.json']);
  });

  it('a process killed mid-write leaves the old file intact', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'distill-fs-'));
    const p = join(dir, 'ckpt.bin');
    writeFileSync(p, 'old contents');
    // The child keeps rewriting a 200 MB file atomically; it is killed (SIGKILL) while a write is under way.
    const child = `
      import { atomicWriteFile } from ${JSON.stringify(new URL('./fs.ts', import.meta.url).pathname)};
      const big = new Uint8Array(200 * 2 ** 20).fill(7);
      for (;;) atomicWriteFile(${JSON.stringify(p)}, big);
    `;
    const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], { stdio: 'ignore' });
    const deadline = Date.now() + 30_000;
    // Wait until a temporary file exists, i.e. a write is in progress, then kill.
    while (!readdirSync(dir).some((f) => f.endsWith('.tmp')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    proc.kill('SIGKILL');
    await new Promise((r) => proc.once('exit', r));
    const after = readFileSync(p);
    // Either the old file or a complete new one, never a partial write.
    expect([12, 200 * 2 ** 20]).toContain(after.length);
    if (after.length === 12) expect(after.toString()).toBe('old contents');
  });

  it('RunDirectory writes JSON atomically and reads it back; createUnder never reuses a folder', () => {
    const parent = mkdtempSync(join(tmpdir(), 'distill-runs-'));
    const now = new Date('2026-01-02T03:04:05Z');
    const a = RunDirectory.createUnder(parent, 'run', now);
    const b = RunDirectory.createUnder(parent, 'run', now);
    expect(a.root).not.toBe(b.root);
    a.writeJson('config.json', { lr: 1e-4 });
    expect(a.readJson<{ lr: number }>('config.json').lr).toBe(1e-4);
  });

  it('readJsonFile names the file when it is missing or corrupt', () => {
    const dir = mkdtempSync(join(tmpdir(), 'distill-fs-'));
    expect(() => readJsonFile(join(dir, 'nope.json'))).toThrow(/File not found: .*nope\.json/);
    writeFileSync(join(dir, 'bad.json'), '{oops');
    expect(() => readJsonFile(join(dir, 'bad.json'))).toThrow(/Could not parse JSON in .*bad\.json/);
  });
});
