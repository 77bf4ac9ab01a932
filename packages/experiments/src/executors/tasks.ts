import { DistillError } from '@distill/core';

/** Where the units of work run: in processes here, as a Slurm job array, as a Kubernetes Indexed Job. */
export type ExecutorKind = 'local' | 'slurm' | 'k8s';
export const EXECUTORS: readonly ExecutorKind[] = ['local', 'slurm', 'k8s'];

/**
 * N numbered units of work, each one `distill` command that takes its index from the scheduler
 * (experiment runs: `--task <i>`; teacher extraction: `--shard <i>/<N>`), all writing into a store that
 * every node shares. What a cluster executor submits, follows and reports.
 */
export interface TaskArray {
  /** Short name for the job (letters, digits, dashes). */
  name: string;
  /** Number of tasks (indices 0 .. count-1). */
  count: number;
  /** The distill arguments of the task whose index the shell / the container expands from `index` (e.g. "$SLURM_ARRAY_TASK_ID"). */
  args: (index: string) => string[];
  /** Whether task i's work is already in the store (finished tasks are never submitted again). */
  done: (i: number) => boolean;
  /** What task i is, for progress and failure messages (e.g. "dsmd-official seed 0"). */
  describe: (i: number) => string;
  /** Task i's own log in the store, when it has one (e.g. the run's train.log). */
  runLog?: (i: number) => string | undefined;
  /** Environment the tasks need (DISTILL_CACHE_DIR ...). */
  env: Record<string, string>;
}

/** Resources and placement shared by the cluster executors (flags of `distill experiment` and `distill teacher extract`). */
export interface ClusterOptions {
  /** Tasks running at a time (Slurm's %P, the Job's parallelism; default: all). */
  parallel?: number;
  cpusPerTask?: number;
  /** One GPU per task (`--device webgpu`): Slurm --gres=gpu:1, Kubernetes nvidia.com/gpu: 1. */
  gpu?: boolean;
  /** The command that starts distill on a node (default: this node's node + this distill; in a container: distill). */
  distill?: string[];
}

/** Sorted indices as Slurm writes an array: 0-3,5,7-9. */
export function indexRanges(indices: number[]): string {
  const s = [...new Set(indices)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < s.length;) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    out.push(j > i ? `${s[i]}-${s[j]}` : `${s[i]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** Quote one word for a POSIX shell (only when it needs it; a "$VAR" word is kept expandable). */
export function shellWord(w: string): string {
  if (/^[A-Za-z0-9_./:=@%+,-]+$/.test(w)) return w;
  if (/^"\$[A-Za-z_][A-Za-z0-9_]*"(\/[0-9]+)?$/.test(w)) return w;
  return `'${w.replace(/'/g, `'\\''`)}'`;
}

export function positiveInt(flag: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < 1) throw new DistillError(`--${flag} expects a whole number >= 1, got ${v}.`, 2);
  return v;
}

/** A name Slurm and Kubernetes both accept: lower case letters, digits and dashes, at most `max` characters. */
export function jobName(...parts: string[]): string {
  const s = parts
    .join('-')
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  return s.slice(0, 52).replace(/-$/, '') || 'distill';
}
