import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { atomicWriteJson, DistillError, sha256, type Dataset, type ImageItem, type Logger } from '@distill/base';
import { imagePath } from './datasets.js';

/**
 * The sha256 of every image file of a dataset, by content: what the teacher-feature cache key covers
 * (changed pixels under the same name give a new key) and what checks a built dataset's images against
 * the sha256 its manifest recorded (`ImageItem.sha256`).
 *
 * Hashing 28k files on every start would cost seconds, so each file's hash is remembered in a memo file
 * under the cache (`<cacheDir>/image-sha256/<sha256(imageRoot)>.json`) keyed by its absolute path, size,
 * mtime and ctime (ctime cannot be set back by `cp -p` or `touch`): a file whose stat is unchanged is
 * not read again. A memo that cannot be parsed is ignored (everything is rehashed).
 */
export interface ImageHashes {
  /** Per split, the sha256 of each image in split order ('' for a skipped one). */
  splits: Record<string, string[]>;
  /** Files that could not be read and were skipped (with skipBadImages), "path: why". */
  skipped: string[];
  /** One hash over all of the above (split names, hashes, skips): what a cache key takes. */
  digest: string;
  /** Files read and hashed this time (the rest came from the memo). */
  hashed: number;
}

const MEMO_VERSION = 1;
type MemoEntry = [size: number, mtimeMs: number, ctimeMs: number, sha: string];

export interface HashImagesOptions {
  /** Cache root: the memo lives under <cacheDir>/image-sha256/. No memo when undefined. */
  cacheDir?: string;
  /** An unreadable or missing file is skipped and listed (it becomes part of the digest) instead of an error. */
  skipBadImages?: boolean;
  log?: Logger;
}

function readMemo(file: string): Map<string, MemoEntry> {
  if (!existsSync(file)) return new Map();
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as { v: number; files: Record<string, MemoEntry> };
    if (v.v !== MEMO_VERSION || !v.files || typeof v.files !== 'object') return new Map();
    return new Map(Object.entries(v.files));
  } catch {
    return new Map();
  }
}

/** A one-line reason a file could not be read (what it is, not a stack). */
function why(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EISDIR') return 'a folder, not an image file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return String((e as Error).message ?? e).split('\n')[0];
}

/**
 * Hash every image of `dataset` (see ImageHashes). An image whose item carries an expected `sha256` (a
 * built benchmark's manifest) must match it: a mismatch is a DistillError naming the file and saying to
 * rebuild. A file that cannot be read is a DistillError, or with `skipBadImages` a listed skip.
 */
export function hashDatasetImages(
  dataset: Pick<Dataset, 'name' | 'imageRoot' | 'splits'>,
  opts: HashImagesOptions = {},
): ImageHashes {
  const memoFile = opts.cacheDir
    ? join(opts.cacheDir, 'image-sha256', `${sha256(dataset.imageRoot).slice(0, 24)}.json`)
    : undefined;
  const memo = memoFile ? readMemo(memoFile) : new Map<string, MemoEntry>();
  let changed = false;
  let hashed = 0;
  const skipped: string[] = [];
  const splits: Record<string, string[]> = {};
  const digest = createHash('sha256').update(`images v1\n`);
  const mismatched: string[] = [];
  for (const name of Object.keys(dataset.splits).sort()) {
    const out: string[] = [];
    digest.update(`#${name}\n`);
    for (const item of dataset.splits[name].images as (ImageItem & { sha256?: string })[]) {
      const path = imagePath(dataset, item);
      let sha = '';
      try {
        const st = statSync(path);
        if (!st.isFile())
          throw Object.assign(new Error('not a file'), { code: st.isDirectory() ? 'EISDIR' : 'EINVAL' });
        const m = memo.get(path);
        if (m && m[0] === st.size && m[1] === st.mtimeMs && m[2] === st.ctimeMs) sha = m[3];
        else {
          sha = sha256(readFileSync(path));
          hashed++;
          memo.set(path, [st.size, st.mtimeMs, st.ctimeMs, sha]);
          changed = true;
        }
      } catch (e) {
        if (!opts.skipBadImages) {
          throw new DistillError(
            `Could not read image ${path} (dataset '${dataset.name}', image root ${dataset.imageRoot}): ${why(e)}. ` +
              'Check --image-root/--data-root, fix or remove the file, or pass --skip-bad-images to skip unreadable images.',
          );
        }
        skipped.push(`${path}: ${why(e)}`);
        sha = '';
      }
      if (sha && item.sha256 && sha !== item.sha256) mismatched.push(path);
      out.push(sha);
      digest.update(sha ? `${sha}\n` : `skip\n`);
    }
    splits[name] = out;
  }
  if (memoFile && changed) {
    try {
      atomicWriteJson(memoFile, { v: MEMO_VERSION, files: Object.fromEntries(memo) });
    } catch (e) {
      // the memo only saves time: a cache that cannot be written costs a rehash next time
      opts.log?.warn(`could not write the image hash memo ${memoFile}: ${why(e)}`);
    }
  }
  if (mismatched.length) {
    const files = `${mismatched.slice(0, 3).join(', ')}${mismatched.length > 3 ? ', ...' : ''}`;
    const advice = dataset.name.startsWith('glyphs')
      ? `the build in ${dataset.imageRoot} was changed after it was built. Remove ${dataset.imageRoot} and build it again (distill data build glyphs).`
      : 'the files were changed after the dataset recorded them. Restore them or build the dataset again; to use changed pictures on purpose, drop the "sha256" field of their annotation lines.';
    throw new DistillError(
      `${mismatched.length} image(s) of dataset '${dataset.name}' differ from the sha256 its manifest recorded (${files}): ${advice}`,
    );
  }
  if (skipped.length)
    opts.log?.warn(
      `${skipped.length} unreadable image(s) skipped (--skip-bad-images): ${skipped.slice(0, 3).join('; ')}${skipped.length > 3 ? '; ...' : ''}`,
    );
  digest.update(`skipped\n${skipped.join('\n')}\n`);
  return { splits, skipped, digest: digest.digest('hex'), hashed };
}
