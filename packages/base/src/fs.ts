import { createHash, randomBytes } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/**
 * Write a file atomically: the bytes go to a temporary file in the same folder, are flushed to disk,
 * and the temporary file is renamed over the target. A crash at any point leaves either the old file
 * or the new one, never a half-written file.
 */
export function atomicWriteFile(path: string, data: string | Uint8Array): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    (e as NodeJS.ErrnoException).path ??= path; // fd writes (ENOSPC, EIO) carry no path: name the file
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
}

export function atomicWriteJson(path: string, value: unknown): void {
  atomicWriteFile(path, JSON.stringify(value, null, 2) + '\n');
}

/** Read and parse a JSON file with an error that names the file. */
export function readJsonFile<T = unknown>(path: string): T {
  if (!existsSync(path)) throw new DistillError(`File not found: ${path}`);
  const text = readFileSync(path, 'utf8');
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new DistillError(`Could not parse JSON in ${path}: ${(e as Error).message}`);
  }
}

/** The nearest ancestor of `path` (or `path` itself) that exists. */
export function nearestExistingParent(path: string): string {
  let p = resolve(path);
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

/**
 * The real cause of a file-system error, where Node reports a misleading one: a recursive mkdir (or an
 * open) that fails with ENOENT on a path whose nearest existing parent is read-only (EROFS), not
 * writable (EACCES) or a file (ENOTDIR); Node's SystemError ERR_FS_EISDIR (rm of a folder) as EISDIR.
 * Returns the error unchanged when there is nothing better to say, else a new error with the cause's
 * code and the nearest existing parent as its path (`syscall` kept).
 */
export function refineFsError(e: unknown): unknown {
  const err = e as NodeJS.ErrnoException & { info?: { code?: string; path?: string } };
  if (!err || typeof err !== 'object') return e;
  if (typeof err.code === 'string' && err.code.startsWith('ERR_FS_E') && err.info?.code) {
    return Object.assign(new Error(err.message), {
      code: err.info.code,
      syscall: err.syscall ?? 'rm',
      path: err.info.path ?? err.path,
    });
  }
  if (
    err.code !== 'ENOENT' ||
    !err.path ||
    !['mkdir', 'open', 'copyfile', 'rename', 'symlink', 'link'].includes(err.syscall ?? '')
  )
    return e;
  const target = err.syscall === 'mkdir' ? err.path : dirname(err.path);
  const parent = nearestExistingParent(target);
  if (parent === resolve(target) && err.syscall !== 'mkdir') return e; // the folder exists: a real ENOENT (the file itself)
  let code: string | undefined;
  try {
    if (!statSync(parent).isDirectory()) code = 'ENOTDIR';
    else accessSync(parent, constants.W_OK);
  } catch (x) {
    code = (x as NodeJS.ErrnoException).code;
  }
  if (!code || !['EROFS', 'EACCES', 'EPERM', 'ENOTDIR'].includes(code)) return e;
  return Object.assign(new Error(`${code}: ${err.syscall} '${parent}' (creating ${err.path})`), {
    code,
    syscall: 'mkdir',
    path: parent,
    dest: undefined,
    wanted: err.path,
  });
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * An error meant for the user: the CLI prints its message (no stack trace) and exits with `exitCode`.
 * The message should say what is wrong and what to do.
 */
export class DistillError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'DistillError';
  }
}

/** A run folder: every file written through it is written atomically. */
export class RunDirectory {
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    mkdirSync(this.root, { recursive: true });
  }

  /** A fresh run folder `<parent>/<prefix>-<timestamp>` (suffixed if taken). */
  static createUnder(parent: string, prefix = 'run', now = new Date()): RunDirectory {
    const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
    let dir = join(parent, `${prefix}-${stamp}`);
    for (let i = 2; existsSync(dir); i++) dir = join(parent, `${prefix}-${stamp}-${i}`);
    return new RunDirectory(dir);
  }

  path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  exists(...parts: string[]): boolean {
    return existsSync(this.path(...parts));
  }

  writeFile(rel: string, data: string | Uint8Array): string {
    const p = this.path(rel);
    atomicWriteFile(p, data);
    return p;
  }

  writeJson(rel: string, value: unknown): string {
    const p = this.path(rel);
    atomicWriteJson(p, value);
    return p;
  }

  readJson<T = unknown>(rel: string): T {
    return readJsonFile<T>(this.path(rel));
  }
}
