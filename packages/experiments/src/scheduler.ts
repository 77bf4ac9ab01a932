import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { acquireRunLock, atomicWriteJson, DistillError, readJsonFile, type Logger, type RunLock } from '@distill/core';
import { baselineWorkerCommand, cacheRoot, hasCheckpoint, readRunRecord, type TrainConfig, type TrainResult } from '@distill/training';
import type { PlannedRun } from './spec.js';
import type { RunRanks } from './stats.js';

/**
 * The run store: one folder per resolved config + seed, named by its configHash, shared by every
 * experiment that uses the same store (default: <cache>/runs, beside the teacher-feature cache). A
 * finished run (result.json) is reused, a killed one (a checkpoint) resumed, any other started afresh.
 */
export function defaultStore(): string {
  return join(cacheRoot(), 'runs');
}

export function runDirOf(store: string, hash: string): string {
  return join(store, hash.slice(0, 16));
}

export type RunStatus = 'reused' | 'resumed' | 'trained';

export interface RunOutcome {
  run: PlannedRun;
  dir: string;
  status: RunStatus;
  result: TrainResult;
}

/** Trains one run in `dir` (resume: continue its checkpoint); resolves to its result.json. */
export type Trainer = (job: { config: TrainConfig; dir: string; label: string; resume: boolean }, log: Logger) => Promise<TrainResult>;

const children = new Set<ChildProcess>();
let hooksInstalled = false;

/** Children die with the experiment: on exit, SIGINT and SIGTERM each running child gets SIGTERM. */
function installChildHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const killAll = () => {
    for (const c of children) c.kill('SIGTERM');
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const on = () => {
      killAll();
      process.removeListener(sig, on);
      // Re-raise once every handler has run (the run locks' handlers release their locks first).
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, on);
  }
}

/** pid of a training child left by a killed experiment that still runs, if any. */
function liveOrphan(dir: string): number | undefined {
  const f = join(dir, 'worker.pid');
  if (!existsSync(f)) return undefined;
  const pid = Number(readFileSync(f, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch {
    return undefined;
  }
  try {
    // only a process that is this folder's worker (pids are reused)
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes(dir) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The default trainer: @distill/training's worker module (baseline-worker) in a child process with
 * one onnxruntime thread (--threads) and its log in <dir>/train.log.
 */
export const childTrainer: Trainer = (job, log) => {
  installChildHooks();
  const cfgFile = join(job.dir, 'train-config.json');
  atomicWriteJson(cfgFile, job.config);
  const worker = baselineWorkerCommand();
  const args = [...worker.execArgv, worker.file, cfgFile, job.dir, job.label, ...(job.resume ? ['--resume'] : [])];
  return new Promise((resolvePromise, reject) => {
    const out = openSync(join(job.dir, 'train.log'), 'a');
    const child = spawn(process.execPath, args, { stdio: ['ignore', out, out], env: { ...process.env, DISTILL_PROGRESS_INTERVAL_MS: '60000' } });
    children.add(child);
    if (child.pid) atomicWriteJson(join(job.dir, 'worker.pid'), child.pid);
    child.on('error', (e) => {
      children.delete(child);
      closeSync(out);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      children.delete(child);
      closeSync(out);
      rmSync(join(job.dir, 'worker.pid'), { force: true });
      const done = join(job.dir, 'result.json');
      if (code === 0 && existsSync(done)) resolvePromise(readJsonFile<TrainResult>(done));
      else {
        const tail = existsSync(join(job.dir, 'train.log')) ? readFileSync(join(job.dir, 'train.log'), 'utf8').trim().split('\n').filter((l) => l.startsWith('distill:')).at(-1) : undefined;
        log.warn(`${job.label}: the training process stopped (${signal ?? `exit code ${code}`})`);
        reject(new DistillError(`Run '${job.label}' failed (${signal ?? `exit code ${code}`}${tail ? `: ${tail.replace(/^distill: /, '')}` : ''}); see ${join(job.dir, 'train.log')}. Re-run the same command to resume it.`));
      }
    });
  });
};

/**
 * The run's lock; while another experiment (another process) trains the same run, wait for it: undefined
 * when that run finished meanwhile (reuse it), the lock when it stopped without finishing (resume it here).
 */
async function lockOrWait(dir: string, run: PlannedRun, log: Logger): Promise<RunLock | undefined> {
  let said = false;
  for (;;) {
    try {
      return acquireRunLock(dir, { logger: log, command: `experiment run ${run.label} seed ${run.seed}` });
    } catch (e) {
      if (!(e instanceof DistillError) || !/in use by another distill run/.test(e.message) || /on host/.test(e.message)) throw e;
    }
    if (!said) log.info(`${run.label} seed ${run.seed}: ${dir} is being trained by another experiment; waiting for it`);
    said = true;
    await new Promise((r) => setTimeout(r, 2000));
    if (existsSync(join(dir, 'result.json'))) return undefined;
  }
}

/** Train (or reuse, or resume) one run in its store folder. */
async function runOne(run: PlannedRun, store: string, trainer: Trainer, log: Logger): Promise<RunOutcome> {
  const dir = runDirOf(store, run.hash);
  const done = join(dir, 'result.json');
  const rec = readRunRecord(dir);
  if (rec && (rec.configHash ?? '') !== run.hash) {
    throw new DistillError(`Run store folder ${dir} holds another config (hash ${rec.configHash}); it is not distill's, or the store was edited. Move it away or pass another --store.`, 2);
  }
  if (existsSync(done)) return { run, dir, status: 'reused', result: readJsonFile<TrainResult>(done) };
  // a child of a killed experiment may still be exiting: give it a moment before refusing
  let orphan = liveOrphan(dir);
  for (let waited = 0; orphan && waited < 30_000; waited += 250) {
    await new Promise((r) => setTimeout(r, 250));
    orphan = liveOrphan(dir);
  }
  if (orphan) throw new DistillError(`Run ${dir} is still being trained by pid ${orphan}, left by an experiment that was killed: wait for it to finish (or end it), then re-run.`, 2);
  const lock = await lockOrWait(dir, run, log);
  if (!lock) return { run, dir, status: 'reused', result: readJsonFile<TrainResult>(done) };
  try {
    if (existsSync(done)) return { run, dir, status: 'reused', result: readJsonFile<TrainResult>(done) };
    if (!rec) atomicWriteJson(join(dir, 'config.json'), { config: run.config, configHash: run.hash, label: run.label, seed: run.seed, created: new Date().toISOString() });
    const resume = hasCheckpoint(dir);
    log.info(`${run.label} seed ${run.seed}: ${resume ? 'resuming' : 'training'} in ${dir}`);
    const result = await trainer({ config: run.config, dir, label: run.label, resume }, log);
    return { run, dir, status: resume ? 'resumed' : 'trained', result };
  } finally {
    lock.release();
  }
}

/**
 * Run every planned run with at most `workers` at a time; runs with the same hash (shared between
 * rows or experiments) train once. `after` runs for each finished run (its evaluation), in order of
 * completion. The first failure stops scheduling new runs; the running ones finish, then it throws.
 */
export async function runScheduled(
  runs: PlannedRun[],
  opts: { store: string; workers: number; log: Logger; trainer?: Trainer; after?: (o: RunOutcome) => Promise<void> },
): Promise<Map<string, RunOutcome>> {
  mkdirSync(opts.store, { recursive: true });
  const unique = [...new Map(runs.map((r) => [r.hash, r])).values()];
  // finished runs first (no work), then the rest in order
  const isDone = (r: PlannedRun) => existsSync(join(runDirOf(opts.store, r.hash), 'result.json'));
  const queue = [...unique.filter(isDone), ...unique.filter((r) => !isDone(r))];
  const out = new Map<string, RunOutcome>();
  let failure: unknown;
  const trainer = opts.trainer ?? childTrainer;
  const slot = async () => {
    for (;;) {
      if (failure) return;
      const run = queue.shift();
      if (!run) return;
      try {
        const o = await runOne(run, opts.store, trainer, opts.log);
        if (opts.after) await opts.after(o);
        out.set(run.hash, o);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.workers) }, slot));
  if (failure) throw failure;
  return out;
}

/** Ranks of a run, cached in <dir>/ranks.json. */
export function readRanks(dir: string): RunRanks | undefined {
  const f = join(dir, 'ranks.json');
  return existsSync(f) ? readJsonFile<RunRanks>(f) : undefined;
}
