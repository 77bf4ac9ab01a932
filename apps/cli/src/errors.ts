import { DistillError, refineFsError } from '@distill/core';

/**
 * File-system errors (Node's ErrnoException: code, syscall, path, dest) as one line a user can act on:
 * what happened to which path, and what to do. Anything else returns undefined (a bug: the caller
 * prints it with its stack).
 */
const VERB: Record<string, string> = {
  open: 'open',
  mkdir: 'create the folder',
  rmdir: 'remove the folder',
  write: 'write',
  read: 'read',
  rename: 'rename',
  unlink: 'remove',
  rm: 'remove',
  copyfile: 'copy',
  scandir: 'list the folder',
  stat: 'read',
  lstat: 'read',
  access: 'access',
  symlink: 'link',
  chmod: 'change permissions of',
  fsync: 'flush',
  close: 'close',
  ftruncate: 'truncate',
};

const ADVICE: Record<string, (path: string) => string> = {
  EACCES: () =>
    'permission denied. Fix its permissions, or point distill at a folder you can write (--run-dir, --out, DISTILL_CACHE_DIR).',
  EPERM: () =>
    'operation not permitted. Fix its permissions, or point distill at a folder you can write (--run-dir, --out, DISTILL_CACHE_DIR).',
  EROFS: () =>
    'the file system is read-only. Point distill at a writable folder (--run-dir, --out, DISTILL_CACHE_DIR).',
  ENOSPC: () =>
    'no space left on the device. Free some space (old runs/, .cache/distill) or write to another disk (--run-dir, DISTILL_CACHE_DIR); --resume continues from the last checkpoint.',
  EDQUOT: () =>
    'disk quota exceeded. Free some space or write to another disk (--run-dir, DISTILL_CACHE_DIR); --resume continues from the last checkpoint.',
  EEXIST: () => 'a file or folder of that name already exists. Choose another path, or move the existing one away.',
  ENOENT: () => 'no such file or folder. Check the path (and that its parent folder exists).',
  ENOTDIR: () => 'a part of this path is a file, not a folder. Check the path.',
  EISDIR: () => 'this is a folder where a file was expected. Check the path.',
  ENOTEMPTY: () => 'the folder is not empty. Choose another path, or move the folder away.',
  EMFILE: () => 'too many open files. Raise the limit (ulimit -n) or use fewer --threads.',
  ENFILE: () => 'too many open files on this system. Close other programs or raise the limit.',
  ENAMETOOLONG: () => 'the path is too long. Use a shorter path.',
  ELOOP: () => 'too many symbolic links. Check the path.',
  EBUSY: () => 'the file or folder is busy. Close the program that uses it and retry.',
  EIO: () => 'an input/output error on the device. Check the disk.',
};

/** Exit code for file-system failures (sysexits.h EX_IOERR / EX_CANTCREAT / EX_NOINPUT). */
export const FS_EXIT: Record<string, number> = {
  ENOENT: 66,
  EACCES: 73,
  EPERM: 73,
  EROFS: 73,
  EEXIST: 73,
  ENOTDIR: 73,
  EISDIR: 73,
};

export function isErrnoException(e: unknown): e is NodeJS.ErrnoException {
  return (
    e instanceof Error &&
    typeof (e as NodeJS.ErrnoException).code === 'string' &&
    /^E[A-Z]+$/.test((e as NodeJS.ErrnoException).code!)
  );
}

/** One line for a file-system error, or undefined when `e` is not one distill knows how to explain. */
export function fsErrorMessage(e: unknown): string | undefined {
  e = refineFsError(e);
  if (!isErrnoException(e) || !e.code || !(e.code in ADVICE)) return undefined;
  const path = e.path ?? (e.message.match(/'([^']+)'/)?.[1] as string | undefined);
  const verb = e.syscall ? (VERB[e.syscall] ?? e.syscall) : 'use';
  const dest = (e as NodeJS.ErrnoException & { dest?: string }).dest;
  const wanted = (e as { wanted?: string }).wanted;
  const where = path ? `${path}${dest ? ` -> ${dest}` : ''}` : 'a file';
  // a path under a folder that cannot be written: the folder that fails is the nearest existing parent
  if (wanted && wanted !== path)
    return `cannot create ${wanted}: its nearest existing parent ${path} ${e.code === 'ENOTDIR' ? 'is a file, not a folder' : 'cannot be written'} (${e.code}): ${ADVICE[e.code](where)}`;
  return `cannot ${verb} ${where} (${e.code}): ${ADVICE[e.code](where)}`;
}

/** The message and exit code a user sees for an error that reached the top level. */
export function userFacingError(e: unknown): { message: string; exitCode: number; usage: boolean } | undefined {
  if (e instanceof DistillError) return { message: e.message, exitCode: e.exitCode, usage: e.exitCode === 2 };
  const fs = fsErrorMessage(e);
  if (fs)
    return { message: fs, exitCode: FS_EXIT[(refineFsError(e) as NodeJS.ErrnoException).code!] ?? 74, usage: false };
  // An error wrapping a file-system error (e.g. `new Error(msg, { cause })`).
  if (e instanceof Error && e.cause !== undefined && e.cause !== e) return userFacingError(e.cause);
  return undefined;
}
