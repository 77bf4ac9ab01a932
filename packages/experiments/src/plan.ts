import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { join, resolve } from 'node:path';
import {
  atomicWriteJson,
  createLogger,
  DistillError,
  readJsonFile,
  sha256,
  type Container,
  type Logger,
} from '@distill/core';
import { runRanks } from './evaluate.js';
import { fingerprintId, runFingerprint, type RunFingerprint } from './fingerprint.js';
import { defaultStore, runDirOf, runScheduled, type RunOutcome, type Trainer } from './scheduler.js';
import {
  expandSpecs,
  findingLabels,
  planRows,
  type ExperimentSpec,
  type PlannedRow,
  type PlannedRun,
  type RunFlags,
  type Scale,
} from './spec.js';
import type { RunRanks } from './stats.js';
import type { TrainConfig } from '@distill/training';

/**
 * An experiment's plan: its specs (after `include` and --only), their rows, and the distinct runs as
 * numbered tasks. Task i is the i-th distinct run (by config hash) in the order the specs list them, so
 * every process that plans the same spec with the same flags numbers the tasks the same way: what a
 * cluster scheduler's array index (Slurm's SLURM_ARRAY_TASK_ID, Kubernetes' JOB_COMPLETION_INDEX) picks.
 */
export interface ExperimentPlan {
  experiment: string;
  specs: ExperimentSpec[];
  plans: { spec: ExperimentSpec; rows: PlannedRow[] }[];
  /** Every planned run, in row order (runs shared between rows or specs appear more than once). */
  runs: PlannedRun[];
  /** The distinct runs: task i is tasks[i]. */
  tasks: PlannedRun[];
  /** onnxruntime threads per training process (not part of a run's hash). */
  threads: number;
  /** sha256 over the tasks' hashes in order: a task started under another plan (a changed spec or flags) is refused. */
  id: string;
}

export interface PlanOptions {
  /** The registries the runs' configs are checked in and their datasets, teachers and methods chosen from (the CLI's, with its plugins). */
  container: Container;
  scale: Scale;
  /** Seeds per row, or 'auto' (the local executor only): every row starts with minSeeds (default 3). */
  seeds: number | 'auto';
  minSeeds?: number;
  maxSeeds?: number;
  /** Per spec (after --only), seeds per row label instead of `seeds` (--seeds auto's later rounds). */
  seedsFor?: Record<string, number>[];
  /** The preset every run starts from (default: the spec's for the scale). */
  preset?: string;
  flags?: RunFlags;
  only?: string[];
  /** Training processes at a time (for the default of threads). */
  workers?: number;
  threads?: number;
}

/** Plan an experiment: the specs a name stands for, --only applied, each row x seed resolved, the distinct runs numbered. */
export function planExperiment(nameOrPath: string, opts: PlanOptions): ExperimentPlan {
  const auto = opts.seeds === 'auto';
  const seeds = auto ? (opts.minSeeds ?? 3) : (opts.seeds as number);
  if (!Number.isInteger(seeds) || seeds < 1)
    throw new DistillError(
      auto
        ? `--min-seeds expects a whole number >= 1, got ${opts.minSeeds}.`
        : `--seeds expects a whole number >= 1 or 'auto', got ${opts.seeds}.`,
      2,
    );
  if (auto && (!Number.isInteger(opts.maxSeeds ?? 10) || (opts.maxSeeds ?? 10) < seeds))
    throw new DistillError(
      `--max-seeds expects a whole number >= ${seeds} (the seeds every row starts with), got ${opts.maxSeeds}.`,
      2,
    );
  const cores = availableParallelism();
  const workers = opts.workers ?? cores;
  if (!Number.isInteger(workers) || workers < 1)
    throw new DistillError(`--workers expects a whole number >= 1, got ${opts.workers}.`, 2);
  let specs = expandSpecs(nameOrPath);
  if (opts.only?.length) {
    const keep = new Set(opts.only);
    const known = new Set(specs.flatMap((s) => s.runs.map((r) => r.label)));
    const unknown = opts.only.filter((l) => !known.has(l));
    if (unknown.length)
      throw new DistillError(
        `--only: no row labelled ${unknown.map((l) => `'${l}'`).join(', ')} in '${nameOrPath}' (rows: ${[...known].join(', ')}).`,
        2,
      );
    specs = specs
      .map((s) => ({
        ...s,
        runs: s.runs.filter((r) => keep.has(r.label)),
        findings: s.findings.filter((f) => findingLabels(f).every((l) => keep.has(l))),
      }))
      .filter((s) => s.runs.length > 0);
  }
  if (opts.threads !== undefined && (!Number.isInteger(opts.threads) || opts.threads < 1))
    throw new DistillError(`--threads expects a whole number >= 1, got ${opts.threads}.`, 2);
  // each training process gets an equal share of the cores (one onnxruntime thread each by default)
  const threads = opts.threads ?? Math.max(1, Math.floor(cores / workers));
  const plans = specs.map((spec, i) => ({
    spec,
    rows: planRows(spec, {
      container: opts.container,
      scale: opts.scale,
      seeds,
      seedsFor: opts.seedsFor?.[i],
      flags: opts.flags,
      threads,
      preset: opts.preset,
    }),
  }));
  const runs = plans.flatMap((p) => p.rows.flatMap((r) => r.runs));
  const tasks = [...new Map(runs.map((r) => [r.hash, r])).values()];
  return {
    experiment: nameOrPath,
    specs,
    plans,
    runs,
    tasks,
    threads,
    id: sha256(tasks.map((t) => t.hash).join('\n')),
  };
}

export type TaskState = 'finished' | 'started' | 'missing';

/**
 * The id a task checks before it trains: the plan's runs and what each is computed from (config hash +
 * fingerprint), so a node that runs other code or sees another teacher or dataset than the submitter
 * refuses instead of training into folders the submitter never looks at.
 */
export function planIdWith(plan: ExperimentPlan, fps: Map<string, RunFingerprint>): string {
  return sha256(plan.tasks.map((t) => `${t.hash} ${fingerprintId(fps.get(t.hash)!)}`).join('\n'));
}

/** Each task's fingerprint (code, teacher, dataset), by config hash: with the hash, its folder in the store. */
export async function planFingerprints(
  plan: ExperimentPlan,
  fingerprint: (run: PlannedRun) => RunFingerprint | Promise<RunFingerprint>,
): Promise<Map<string, RunFingerprint>> {
  const out = new Map<string, RunFingerprint>();
  for (const t of plan.tasks) out.set(t.hash, await fingerprint(t));
  return out;
}

/** A task's state in a store: finished (result.json), started (a checkpoint or a record, resumable), missing. */
export function taskState(store: string, run: PlannedRun, fp?: RunFingerprint): TaskState {
  const dir = runDirOf(store, run.hash, fp);
  if (existsSync(join(dir, 'result.json'))) return 'finished';
  return existsSync(join(dir, 'config.json')) ? 'started' : 'missing';
}

/** `distill experiment <spec> --plan --json`: the tasks, each with its rows, seed, hash, folder (config hash + fingerprint) and state in the store. */
export function planJson(plan: ExperimentPlan, store: string, fps: Map<string, RunFingerprint>) {
  const labels = new Map<string, string[]>();
  for (const r of plan.runs) labels.set(r.hash, [...new Set([...(labels.get(r.hash) ?? []), r.label])]);
  return {
    experiment: plan.experiment,
    plan: planIdWith(plan, fps),
    store,
    threads: plan.threads,
    tasks: plan.tasks.map((t, i) => ({
      task: i,
      label: t.label,
      rows: labels.get(t.hash),
      seed: t.seed,
      hash: t.hash,
      dir: runDirOf(store, t.hash, fps.get(t.hash)),
      state: taskState(store, t, fps.get(t.hash)),
    })),
  };
}

/**
 * The mark of a run store that a cluster's tasks share: <store>/store.json with a random id. The
 * submitting process writes it; each task checks it sees the same file before training, so a node
 * that does not mount the shared file system (or mounts another one) fails at once instead of
 * training into a private folder nobody collects.
 */
export const STORE_MARK = 'store.json';

export function markSharedStore(store: string): string {
  const f = join(store, STORE_MARK);
  if (existsSync(f)) {
    const id = readJsonFile<{ id?: string }>(f).id;
    if (typeof id === 'string' && id) return id;
  }
  mkdirSync(store, { recursive: true });
  const id = randomBytes(8).toString('hex');
  atomicWriteJson(f, {
    id,
    created: new Date().toISOString(),
    host: hostname(),
    note: 'distill run store: every node that runs a task must see this file at this path',
  });
  return id;
}

/**
 * Refuses a store this process cannot see (or another store than the submitter's), without creating
 * anything. `mount:<dir>` (Kubernetes: the submitter cannot write on the claim) checks that the volume
 * is mounted at <dir>; the store is then made under it.
 */
export function checkSharedStore(store: string, id: string): void {
  const where = `on host ${hostname()}`;
  const shared =
    'Put the store on a file system every node mounts at the same path (NFS, Lustre, a Kubernetes volume claim) and pass that path as --store.';
  const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
  if (id.startsWith('mount:')) {
    const mount = id.slice('mount:'.length);
    if (!isDir(mount))
      throw new DistillError(
        `The volume with the run store is not mounted at ${mount} ${where}. Mount the claim there (the Job's volumeMounts).`,
        2,
      );
    return;
  }
  if (!isDir(store)) throw new DistillError(`The run store ${store} is not visible ${where}. ${shared}`, 2);
  const f = join(store, STORE_MARK);
  if (!existsSync(f))
    throw new DistillError(
      `The run store ${store} ${where} lacks ${STORE_MARK} (the mark the submitting process wrote): this node sees another folder at that path. ${shared}`,
      2,
    );
  const seen = readJsonFile<{ id?: string }>(f).id;
  if (seen !== id)
    throw new DistillError(
      `The run store ${store} ${where} is another store (id ${seen}, the submitter's is ${id}). ${shared}`,
      2,
    );
}

export interface TaskOptions extends PlanOptions {
  /** The task's index in the plan (0 .. tasks-1). */
  task: number;
  store?: string;
  /** The store's id (store.json) the submitter saw: checked before anything is written. */
  storeId?: string;
  /** The plan id the submitter saw (planIdWith; `config:<plan.id>` checks the configs only): a task of a changed plan is refused. */
  planId?: string;
  logger?: Logger;
  trainer?: Trainer;
  ranks?: (cfg: TrainConfig, dir: string) => Promise<RunRanks>;
  /** Each run's fingerprint (default: code, teacher files, dataset manifest). */
  fingerprint?: (run: PlannedRun) => RunFingerprint | Promise<RunFingerprint>;
  reuseStale?: boolean;
}

/**
 * `distill experiment <spec> --task <i>`: train the i-th distinct run of the plan into the store (the
 * same store, lock, reuse and resume as a local experiment), and cache its per-query ranks for the report.
 */
export async function runTask(nameOrPath: string, opts: TaskOptions): Promise<RunOutcome> {
  const log = opts.logger ?? createLogger();
  const plan = planExperiment(nameOrPath, opts);
  const n = plan.tasks.length;
  if (!Number.isInteger(opts.task) || opts.task < 0 || opts.task >= n) {
    throw new DistillError(
      `--task expects a whole number from 0 to ${n - 1} (the plan of '${nameOrPath}' has ${n} task${n === 1 ? '' : 's'}; --plan --json lists them), got ${opts.task}.`,
      2,
    );
  }
  const fingerprint = opts.fingerprint ?? ((r: PlannedRun) => runFingerprint(r.config, opts.container));
  if (opts.planId?.startsWith('config:')) {
    // Kubernetes: the image's code may differ from the submitter's checkout; the runs' configs must not
    if (opts.planId !== `config:${plan.id}`)
      throw new DistillError(
        `Task ${opts.task}: the plan of '${nameOrPath}' here differs from the submitter's: the spec or its flags changed since the Job was made. Make the Job again.`,
        2,
      );
  } else if (opts.planId && opts.planId !== planIdWith(plan, await planFingerprints(plan, fingerprint))) {
    throw new DistillError(
      `Task ${opts.task}: the plan of '${nameOrPath}' here differs from the submitter's: the spec or its flags changed since the job was submitted, or this node runs other code or sees another teacher or dataset (the runs' fingerprints). Submit it again from a checkout every node shares.`,
      2,
    );
  }
  const store = resolve(opts.store ?? defaultStore());
  if (opts.storeId !== undefined) checkSharedStore(store, opts.storeId);
  const run = plan.tasks[opts.task];
  log.info(`task ${opts.task}/${n}: ${run.label} seed ${run.seed} (${run.hash.slice(0, 16)}) in store ${store}`);
  const ranksOf = opts.ranks ?? ((c: TrainConfig, dir: string) => runRanks(c, dir, opts.container, log));
  const out = await runScheduled([run], {
    store,
    workers: 1,
    log,
    trainer: opts.trainer,
    fingerprint,
    reuseStale: opts.reuseStale,
    after: async (o) => void (await ranksOf(o.run.config, o.dir)),
  });
  const o = out.get(run.hash)!;
  log.info(`task ${opts.task}: ${o.status} (${o.reason}), test RSUM ${o.result.test.rsum.toFixed(2)} (${o.dir})`);
  return o;
}
