import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
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
    const MiB = 2 ** 20;
    // The child writes version 1 (8 MiB of 7s) atomically, then starts version 2 (9s). A hook on
    // fs.writeSync (which atomicWriteFile calls) writes 1 MiB per call; after 3 MiB it reports
    // 'mid-write' and blocks, so the kill below lands while version 2 is partly on disk.
    const child = `
      import fs from 'node:fs';
      import { syncBuiltinESMExports } from 'node:module';
      import { atomicWriteFile } from ${JSON.stringify(new URL('./fs.ts', import.meta.url).pathname)};
      const P = ${JSON.stringify(p)};
      atomicWriteFile(P, new Uint8Array(8 * ${MiB}).fill(7));
      const write = fs.writeSync;
      let written = 0;
      fs.writeSync = (fd, buf, off, len) => {
        const n = write(fd, buf, off, Math.min(len, ${MiB}));
        written += n;
        if (written >= 3 * ${MiB}) {
          process.stdout.write('mid-write\\n');
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // until killed
        }
        return n;
      };
      syncBuiltinESMExports();
      atomicWriteFile(P, new Uint8Array(8 * ${MiB}).fill(9));
      process.stdout.write('finished\\n');
    `;
    const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the child never reported mid-write (stdout: ${out})`)), 30_000);
      proc.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('mid-write')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => reject(new Error(`the child exited (${code}) before writing`)));
    });
    // Alive and mid-write: version 2's temporary holds 3 of its 8 MiB; the target is still version 1.
    expect(proc.exitCode).toBeNull();
    expect(proc.signalCode).toBeNull();
    const partial = () => readdirSync(dir).filter((f) => f.startsWith(`.ckpt.bin.${proc.pid}.`) && f.endsWith('.tmp'));
    expect(partial()).toHaveLength(1);
    expect(statSync(join(dir, partial()[0])).size).toBe(3 * MiB);
    const exit = new Promise<[number | null, NodeJS.Signals | null]>((r) =>
      proc.once('exit', (code, signal) => r([code, signal])),
    );
    proc.kill('SIGKILL');
    expect(await exit).toEqual([null, 'SIGKILL']);
    expect(out).not.toContain('finished');
    // Version 1, whole; the interrupted temporary is left beside it, and never read as the file.
    const after = readFileSync(p);
    expect(after.length).toBe(8 * MiB);
    expect(after.every((b) => b === 7)).toBe(true);
    expect(partial()).toHaveLength(1);
  }, 60_000);

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
