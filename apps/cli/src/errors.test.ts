import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { atomicWriteFile, DistillError, repoRoot } from '@distill/core';
import { fsErrorMessage, userFacingError } from './errors.js';

/** The error a file-system call really throws here (from the kernel, not hand-built). */
function thrown(f: () => unknown): NodeJS.ErrnoException {
  try {
    f();
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
  throw new Error('expected the call to fail');
}

const tmp = () => mkdtempSync(join(tmpdir(), 'distill-fs-'));

describe('file-system errors as one actionable line', () => {
  it('EEXIST, ENOTDIR, ENOENT, EISDIR from real calls name the path and what to do', () => {
    const d = tmp();
    const file = join(d, 'runs');
    writeFileSync(file, 'not a folder');
    expect(fsErrorMessage(thrown(() => mkdirSync(file)))).toBe(
      `cannot create the folder ${file} (EEXIST): a file or folder of that name already exists. Choose another path, or move the existing one away.`,
    );
    expect(fsErrorMessage(thrown(() => mkdirSync(join(file, 'run-1'), { recursive: true })))).toMatch(
      new RegExp(`^cannot create the folder ${file}/run-1 \\(ENOTDIR\\): a part of this path is a file, not a folder`),
    );
    expect(fsErrorMessage(thrown(() => writeFileSync(join(d, 'no', 'such', 'x.json'), '')))).toMatch(
      /^cannot open .*\/no\/such\/x\.json \(ENOENT\): no such file or folder/,
    );
    expect(fsErrorMessage(thrown(() => writeFileSync(d, '')))).toMatch(
      /\(EISDIR\): this is a folder where a file was expected/,
    );
  });

  it('ENOSPC from a real full device (/dev/full) names the file distill was writing', () => {
    // atomicWriteFile writes through a descriptor, whose errors carry no path: it adds the file's.
    const e = thrown(() => writeFileSync('/dev/full', 'x'));
    expect(e.code).toBe('ENOSPC');
    e.path ??= '/runs/r/checkpoint.safetensors';
    expect(fsErrorMessage(e)).toBe(
      'cannot write /runs/r/checkpoint.safetensors (ENOSPC): no space left on the device. Free some space (old runs/, .cache/distill) or write to another disk (--run-dir, DISTILL_CACHE_DIR); --resume continues from the last checkpoint.',
    );
  });

  it('atomicWriteFile attaches the path to descriptor errors', () => {
    const d = tmp();
    // A folder where the file should go: opening the temp file works, the rename fails with a path.
    mkdirSync(join(d, 'config.json'));
    const e = thrown(() => atomicWriteFile(join(d, 'config.json'), '{}'));
    expect(fsErrorMessage(e)).toMatch(/config\.json \((EISDIR|ENOTEMPTY|EEXIST)\)/);
  });

  it('EACCES/EPERM/EROFS advice points at a writable folder; DistillErrors pass through; bugs are not dressed up', () => {
    for (const code of ['EACCES', 'EPERM', 'EROFS']) {
      const e = Object.assign(new Error(`${code}: x, mkdir '/data/runs'`), {
        code,
        syscall: 'mkdir',
        path: '/data/runs',
      });
      expect(fsErrorMessage(e)).toMatch(
        new RegExp(`^cannot create the folder /data/runs \\(${code}\\): .*(--run-dir, --out, DISTILL_CACHE_DIR)`),
      );
      expect(userFacingError(e)?.exitCode).toBe(73);
    }
    expect(userFacingError(new DistillError('bad flag', 2))).toEqual({ message: 'bad flag', exitCode: 2, usage: true });
    expect(userFacingError(new TypeError('x is undefined'))).toBeUndefined();
    expect(userFacingError(Object.assign(new Error('odd'), { code: 'ERR_INVALID_ARG_TYPE' }))).toBeUndefined();
    const wrapped = new Error('saving failed', { cause: thrown(() => mkdirSync(tmpdir())) });
    expect(userFacingError(wrapped)?.message).toMatch(/\(EEXIST\)/);
  });
});

/** `distill <args>` as a user runs it (a new process), in `cwd`. */
function distill(args: string[], cwd: string): { code: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [join(repoRoot(), 'apps', 'cli', 'bin', 'distill.js'), ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 90_000,
  });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

describe('the distill command on folders it cannot write', () => {
  it('a run folder under a file (ENOTDIR): one line with the path, exit 73, no stack trace', () => {
    const d = tmp();
    writeFileSync(join(d, 'runs'), 'a file where distill puts run folders');
    const r = distill(['train', '--max-steps', '1'], d);
    expect(r.stderr).toMatch(
      new RegExp(
        `^distill: cannot create the folder ${d}/runs/glyphs-mobilenet-glove-[0-9-]+ \\(ENOTDIR\\): a part of this path is a file, not a folder\\. Check the path\\.\\n$`,
      ),
    );
    expect(r.code).toBe(73);
  });

  it('a run folder where the user may not write (EACCES as a user; as root, /sys: EPERM/EROFS)', () => {
    // root ignores chmod: then use /sys, which the kernel refuses to root as well.
    const root = process.getuid?.() === 0;
    let cwd = '/sys';
    if (!root) {
      cwd = tmp();
      chmodSync(cwd, 0o555);
    }
    try {
      const r = distill(['train', '--max-steps', '1'], cwd);
      expect(r.stderr).toMatch(
        /^distill: cannot create the folder \/.*runs\/glyphs-mobilenet-glove-[0-9-]+ \((EACCES|EPERM|EROFS)\): .*point distill at a (writable )?folder/i,
      );
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.code).toBe(73);
    } finally {
      if (!root) rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('data build into a path under a file: one line (ENOTDIR)', () => {
    const d = tmp();
    writeFileSync(join(d, 'out'), '');
    const r = distill(['data', 'build', 'emoji', '--out', join(d, 'out', 'emoji')], d);
    expect(r.stderr).toMatch(new RegExp(`^distill: cannot create the folder ${d}/out/emoji/images/\\w+ \\(ENOTDIR\\)`));
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
