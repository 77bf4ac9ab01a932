import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DistillError } from './fs.js';
import type { Logger } from './log.js';

/** What a run lock file holds. */
export interface RunLockInfo {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  started: string;
  /** The process's start time in clock ticks since boot (Linux), so a reused pid is not taken for the owner. */
  procStart?: string;
  /** Random token: release() removes the file only while it is still this lock. */
  token: string;
  command?: string;
}

export interface RunLock {
  readonly path: string;
  readonly info: RunLockInfo;
  /** Remove the lock file (only if it is still ours). Safe to call twice. */
  release(): void;
}

export const RUN_LOCK_FILE = 'run.lock';

function procStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime); the command name (field 2) may contain spaces, so count after its ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote `info` (on this host) is still running. */
export function lockOwnerAlive(info: RunLockInfo): boolean {
  try {
    process.kill(info.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  // Alive (or not ours to signal): the same process only if its start time matches, where known.
  const now = procStart(info.pid);
  return !(info.procStart && now && now !== info.procStart);
}

function readLock(path: string): RunLockInfo | undefined {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as RunLockInfo;
    return typeof v.pid === 'number' && typeof v.host === 'string' ? v : undefined;
  } catch {
    return undefined;
  }
}

const held = new Set<RunLock>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const releaseAll = () => {
    for (const l of [...held]) l.release();
  };
  process.on('exit', releaseAll);
  // A signal that would end the process: release, then let the signal act as it would have.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    if (process.listenerCount(sig) > 0) continue;
    const onSignal = () => {
      releaseAll();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/**
 * Lock a run folder for this process: `<dir>/run.lock` (pid, host, start time) is created
 * exclusively (written to a temporary file, then hard-linked into place, which fails when the lock
 * exists, so a reader never sees a half-written lock). A lock left by a process of this host that
 * is no longer running is taken over with a warning; any other existing lock is a DistillError.
 * The lock is released by `release()`, and on exit (also after an error or SIGINT/SIGTERM).
 */
export function acquireRunLock(dir: string, opts: { logger?: Logger; command?: string } = {}): RunLock {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, RUN_LOCK_FILE);
  const info: RunLockInfo = {
    pid: process.pid,
    host: hostname(),
    started: new Date().toISOString(),
    procStart: procStart(process.pid),
    token: randomBytes(8).toString('hex'),
    command: opts.command,
  };
  const tmp = `${path}.${process.pid}.${info.token}.tmp`;
  const fd = openSync(tmp, 'wx');
  try {
    writeSync(fd, JSON.stringify(info) + '\n');
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw e;
      }
      const other = readLock(path);
      if (!other) {
        if (!existsSync(path)) continue; // released meanwhile
        throw new DistillError(
          `Run folder ${dir} is locked by ${path}, which is unreadable. If no distill run uses this folder, delete ${path}.`,
        );
      }
      if (other.host !== info.host || lockOwnerAlive(other)) {
        const where = other.host === info.host ? `pid ${other.pid}` : `pid ${other.pid} on host ${other.host}`;
        throw new DistillError(
          `Run folder ${dir} is in use by another distill run (${where}, since ${other.started}). ` +
            `Wait for it to finish or use another --run-dir${other.host === info.host ? '' : `; if that run is gone, delete ${path}`}.`,
        );
      }
      // Stale: move it aside (atomic), and check that what moved is the stale lock, not a fresh one
      // another process took over a moment ago (then put that back and look again).
      const aside = `${path}.stale.${process.pid}.${info.token}`;
      try {
        renameSync(path, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      const moved = readLock(aside);
      if (moved && moved.token !== other.token) {
        try {
          linkSync(aside, path);
        } catch {
          /* someone else holds it now: the next attempt reports them */
        }
        rmSync(aside, { force: true });
        continue;
      }
      rmSync(aside, { force: true });
      opts.logger?.warn(
        `took over the stale lock ${path}: pid ${other.pid} (started ${other.started}) is no longer running`,
      );
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  installExitHooks();
  const lock: RunLock = {
    path,
    info,
    release() {
      if (!held.has(lock)) return;
      held.delete(lock);
      if (readLock(path)?.token === info.token) rmSync(path, { force: true });
    },
  };
  held.add(lock);
  return lock;
}
