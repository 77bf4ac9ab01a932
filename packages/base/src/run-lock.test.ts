import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from './log.js';
import { acquireRunLock, RUN_LOCK_FILE, type RunLockInfo } from './run-lock.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'distill-lock-'));
const readLock = (dir: string) => JSON.parse(readFileSync(join(dir, RUN_LOCK_FILE), 'utf8')) as RunLockInfo;
/** The pid of a process that has exited. */
const deadPid = () =>
  spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
function captureLog() {
  const lines: string[] = [];
  return { lines, log: createLogger({ format: 'text', level: 'info', sink: { write: (l) => lines.push(l) } }) };
}
const lockModule = new URL('./run-lock.ts', import.meta.url).pathname;

describe('run folder lock', () => {
  it('records pid, host and start time; a second lock on the folder is refused until the first is released', () => {
    const dir = tmp();
    const a = acquireRunLock(dir);
    const info = readLock(dir);
    expect(info.pid).toBe(process.pid);
    expect(info.host).toBe(hostname());
    expect(Date.now() - Date.parse(info.started)).toBeLessThan(60_000);
    expect(() => acquireRunLock(dir)).toThrow(
      new RegExp(
        `^Run folder .* is in use by another distill run \\(pid ${process.pid}, since .*\\)\\. Wait for it to finish or use another --run-dir\\.$`,
      ),
    );
    a.release();
    expect(existsSync(join(dir, RUN_LOCK_FILE))).toBe(false);
    const b = acquireRunLock(dir);
    a.release(); // a stale handle must not remove b's lock
    expect(readLock(dir).token).toBe(b.info.token);
    b.release();
  });

  it('takes over a lock left by a dead process of this host, with a warning', () => {
    const dir = tmp();
    const pid = Number(deadPid());
    writeFileSync(
      join(dir, RUN_LOCK_FILE),
      JSON.stringify({ pid, host: hostname(), started: '2026-01-01T00:00:00.000Z', token: 'old' }),
    );
    const { lines, log } = captureLog();
    const l = acquireRunLock(dir, { logger: log });
    expect(readLock(dir).pid).toBe(process.pid);
    expect(lines.join('\n')).toMatch(
      new RegExp(
        `took over the stale lock .*run\\.lock: pid ${pid} \\(started 2026-01-01T00:00:00.000Z\\) is no longer running`,
      ),
    );
    l.release();
  });

  it.skipIf(!existsSync('/proc/self/stat'))(
    'a live pid that was reused by another process is stale too (start time differs)',
    () => {
      const dir = tmp();
      writeFileSync(
        join(dir, RUN_LOCK_FILE),
        JSON.stringify({
          pid: process.pid,
          host: hostname(),
          started: '2026-01-01T00:00:00.000Z',
          procStart: '1',
          token: 'old',
        }),
      );
      const l = acquireRunLock(dir);
      expect(readLock(dir).token).toBe(l.info.token);
      l.release();
    },
  );

  it('a lock from another host is refused (its pid cannot be checked), saying which file to delete', () => {
    const dir = tmp();
    writeFileSync(
      join(dir, RUN_LOCK_FILE),
      JSON.stringify({ pid: 1, host: 'elsewhere', started: '2026-01-01T00:00:00.000Z', token: 'x' }),
    );
    expect(() => acquireRunLock(dir)).toThrow(
      /in use by another distill run \(pid 1 on host elsewhere, .*if that run is gone, delete .*run\.lock/,
    );
  });

  it('is released when the process exits after an error; a SIGKILLed holder leaves a lock the next run takes over', async () => {
    const dir = tmp();
    const child = (body: string) =>
      spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          '--input-type=module',
          '-e',
          `import { acquireRunLock } from ${JSON.stringify(lockModule)}; acquireRunLock(${JSON.stringify(dir)}); ${body}`,
        ],
        {
          stdio: 'ignore',
        },
      );
    const failing = child('throw new Error("boom");');
    const code = await new Promise((r) => failing.once('exit', r));
    expect(code).toBe(1);
    expect(existsSync(join(dir, RUN_LOCK_FILE))).toBe(false);

    const hung = child('setInterval(() => {}, 1000);');
    const deadline = Date.now() + 30_000;
    while (!existsSync(join(dir, RUN_LOCK_FILE)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(readLock(dir).pid).toBe(hung.pid);
    expect(() => acquireRunLock(dir)).toThrow(new RegExp(`in use by another distill run \\(pid ${hung.pid}`));
    hung.kill('SIGKILL');
    await new Promise((r) => hung.once('exit', r));
    const l = acquireRunLock(dir);
    expect(readLock(dir).pid).toBe(process.pid);
    l.release();

    const term = child('setInterval(() => {}, 1000);');
    while (!existsSync(join(dir, RUN_LOCK_FILE)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    term.kill('SIGTERM');
    const sig = await new Promise((r) => term.once('exit', (_c, s) => r(s)));
    expect(sig).toBe('SIGTERM'); // still ends as SIGTERM would
    expect(existsSync(join(dir, RUN_LOCK_FILE))).toBe(false);
  });
});
