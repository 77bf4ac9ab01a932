import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DistillError, readCheckpoint, writeCheckpoint, type Checkpoint, type Logger } from '@distill/core';

/** The verified single-file format (one atomic safetensors file, checksummed) lives in @distill/core's formats. */
export { readCheckpoint, writeCheckpoint, type Checkpoint } from '@distill/core';

/** The checkpoint files of a run folder: the latest, the one before it, and where a corrupt latest is moved. */
export const CHECKPOINT_FILES = {
  latest: 'checkpoint.safetensors',
  previous: 'checkpoint.prev.safetensors',
  corrupt: 'checkpoint.corrupt.safetensors',
} as const;

/** Whether the run folder holds a checkpoint to resume from (the latest or the previous one). */
export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, CHECKPOINT_FILES.latest)) || existsSync(join(dir, CHECKPOINT_FILES.previous));
}

/**
 * Save a run's checkpoint, keeping the one before it: the latest is renamed to
 * checkpoint.prev.safetensors (atomic), then the new one is written atomically. A crash between the
 * two leaves only the previous one, which `loadRunCheckpoint` then uses.
 */
export function saveRunCheckpoint<S>(dir: string, ckpt: Checkpoint<S>): string {
  const latest = join(dir, CHECKPOINT_FILES.latest);
  if (existsSync(latest)) renameSync(latest, join(dir, CHECKPOINT_FILES.previous));
  writeCheckpoint(latest, ckpt);
  return latest;
}

/** Remove a run folder's checkpoints (a run that starts over must not later resume an earlier attempt's state). */
export function clearRunCheckpoints(dir: string): void {
  for (const f of Object.values(CHECKPOINT_FILES)) rmSync(join(dir, f), { force: true });
}

/**
 * The newest good checkpoint of a run folder: the latest if it verifies, else the previous one. A
 * corrupt latest is reported (warning with its path) and moved to checkpoint.corrupt.safetensors,
 * so the next save cannot rotate it over the good previous one. Undefined when the folder has no
 * checkpoint; a DistillError naming every file when none verifies.
 */
export function loadRunCheckpoint<S>(dir: string, log?: Logger): { ckpt: Checkpoint<S>; path: string } | undefined {
  const latest = join(dir, CHECKPOINT_FILES.latest);
  const previous = join(dir, CHECKPOINT_FILES.previous);
  const problems: string[] = [];
  let latestBad = false;
  for (const path of [latest, previous]) {
    if (!existsSync(path)) continue;
    try {
      const ckpt = readCheckpoint<S>(path);
      if (latestBad) {
        renameSync(latest, join(dir, CHECKPOINT_FILES.corrupt));
        log?.warn(
          `the corrupt checkpoint was moved to ${join(dir, CHECKPOINT_FILES.corrupt)}; continuing from the previous checkpoint ${path}`,
        );
      } else if (path === previous) {
        log?.warn(
          `${latest} is missing (the run stopped while saving it): continuing from the previous checkpoint ${path}`,
        );
      }
      return { ckpt, path };
    } catch (e) {
      if (!(e instanceof DistillError)) throw e;
      problems.push(e.message);
      log?.warn(`${e.message}${path === latest ? ' Trying the previous checkpoint.' : ''}`);
      if (path === latest) latestBad = true;
    }
  }
  if (problems.length === 0) return undefined;
  throw new DistillError(
    `No usable checkpoint in ${dir}: ${problems.join(' ')} Start the run over: run the same command without --resume (or use a new --run-dir).`,
  );
}

/** The newest checkpoint of a run folder that exists, verifies and holds only finite values, with its step; undefined if none. */
export function lastGoodCheckpoint(dir: string): { path: string; step?: number } | undefined {
  for (const f of [CHECKPOINT_FILES.latest, CHECKPOINT_FILES.previous]) {
    const path = join(dir, f);
    if (!existsSync(path)) continue;
    try {
      const { state, tensors } = readCheckpoint<{ step?: number }>(path);
      if (Object.values(tensors).some((t) => !t.data.every(Number.isFinite))) continue;
      return { path, step: state?.step };
    } catch {
      /* not good: try the older one */
    }
  }
  return undefined;
}

/**
 * The message that stops a run at a non-finite loss: what happened, where, the newest checkpoint
 * that exists and verifies (or that there is none), and what to try. It does not guess the cause.
 */
export function nonFiniteLossMessage(o: {
  loss: string;
  value: number;
  step: number;
  epoch: number;
  runDir: string;
}): string {
  const good = lastGoodCheckpoint(o.runDir);
  const stopped = good
    ? `The run stopped; its last good checkpoint (checksum verified, finite values) is ${good.path}${good.step !== undefined ? ` (step ${good.step})` : ''}.`
    : `The run stopped before its first good checkpoint (none in ${o.runDir}).`;
  return (
    `Loss '${o.loss}' is ${o.value} at step ${o.step} (epoch ${o.epoch}). ${stopped} ` +
    'Things to try: a lower learning rate (--lr), a learning-rate warm-up, checking the inputs (dataset, teacher features); ' +
    'start the changed run in a new --run-dir.'
  );
}
