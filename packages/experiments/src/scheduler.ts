import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  acquireRunLock,
  atomicWriteJson,
  DistillError,
  readJsonFile,
  RUN_LOCK_FILE,
  type Logger,
  type RunLock,
} from '@distill/core';
import {
  baselineWorkerCommand,
  cacheRoot,
  hasCheckpoint,
  readRunRecord,
  type TrainConfig,
  type TrainResult,
} from '@distill/training';
import { fingerprintDiff, fingerprintId, type FingerprintPart, type RunFingerprint } from './fingerprint.js';
import type { PlannedRun } from './spec.js';
import type { RunRanks } from './stats.js';
import { readVerifiedRanks, readVerifiedResult, resultProblems, sealFile } from './store.js';

/**
 * The run store: one folder per run, keyed by {config hash (the seed included), code, teacher, dataset}
 * and named `<config hash:16>-<fingerprint:12>`, shared by every experiment that uses the same store
 * (default: <cache>/runs, beside the teacher-feature cache). A finished run (result.json, verified by its
 * checksum and ranges) is reused, a killed one (a checkpoint) resumed, any other started afresh. A run of
 * the same config stored under another fingerprint (older code, another teacher or dataset; or a folder
 * from before fingerprints, named by the config hash alone) is stale: it is retrained, or with
 * `reuseStale` reused and marked stale.
 */
export function defaultStore(): string {
  return join(cacheRoot(), 'runs');
}

export function runDirOf(store: string, hash: string, fp?: RunFingerprint): string {
  return join(store, fp ? `${hash.slice(0, 16)}-${fingerprintId(fp)}` : hash.slice(0, 16));
}

/** `stale`: a run of this config stored under another fingerprint, reused because of --reuse-stale. */
export type RunStatus = 'reused' | 'resumed' | 'trained' | 'stale';

export interface RunOutcome {
  run: PlannedRun;
  dir: string;
  status: RunStatus;
  result: TrainResult;
  /** The fingerprint the run was planned with (the stored run's own, for a stale one, is in its folder). */
  fingerprint?: RunFingerprint;
  /** Why it was reused or trained: 'fingerprint matches', 'new', 'stale: code, teacher changed', 'corrupt: ...'. */
  reason: string;
  /** For a stale run reused or retrained: the parts of the fingerprint that differ ('unrecorded' for folders from before fingerprints). */
  stale?: (FingerprintPart | 'unrecorded')[];
}

/** What <run>/fingerprint.json holds. */
export interface StoredFingerprint {
  configHash: string;
  fingerprint: RunFingerprint;
  created: string;
}

function readStoredFingerprint(dir: string): StoredFingerprint | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, 'fingerprint.json'), 'utf8')) as StoredFingerprint;
  } catch {
    return undefined;
  }
}

/** Finished runs of the same config under another fingerprint (or from before fingerprints), newest first. */
function staleRuns(
  store: string,
  hash: string,
  current: string,
): { dir: string; stale: (FingerprintPart | 'unrecorded')[] }[] {
  const prefix = hash.slice(0, 16);
  if (!existsSync(store)) return [];
  return readdirSync(store)
    .filter(
      (d) =>
        (d === prefix || (d.startsWith(`${prefix}-`) && /^[0-9a-f]{12}$/.test(d.slice(prefix.length + 1)))) &&
        join(store, d) !== current,
    )
    .map((d) => join(store, d))
    .filter((d) => existsSync(join(d, 'result.json')))
    .map((dir) => ({ dir, mtime: statSync(join(dir, 'result.json')).mtimeMs, rec: readStoredFingerprint(dir) }))
    .filter((x) => !x.rec || x.rec.configHash === hash)
    .sort((a, b) => b.mtime - a.mtime)
    .map((x) => ({ dir: x.dir, stale: x.rec ? [] : (['unrecorded'] as const).slice() }));
}

/** Say what differs, e.g. 'code, teacher changed' or 'stored before fingerprints'. */
export function staleReason(parts: (FingerprintPart | 'unrecorded')[]): string {
  return parts.includes('unrecorded')
    ? 'stored before fingerprints (code, teacher, dataset unknown)'
    : `${parts.join(', ')} changed`;
}

/** Trains one run in `dir` (resume: continue its checkpoint); resolves to its result.json. */
export type Trainer = (
  job: { config: TrainConfig; dir: string; label: string; resume: boolean },
  log: Logger,
) => Promise<TrainResult>;

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
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', out, out],
      env: { ...process.env, DISTILL_PROGRESS_INTERVAL_MS: '60000' },
    });
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
        const tail = existsSync(join(job.dir, 'train.log'))
          ? readFileSync(join(job.dir, 'train.log'), 'utf8')
              .trim()
              .split('\n')
              .filter((l) => l.startsWith('distill:'))
              .at(-1)
          : undefined;
        log.warn(`${job.label}: the training process stopped (${signal ?? `exit code ${code}`})`);
        reject(
          new DistillError(
            `Run '${job.label}' failed (${signal ?? `exit code ${code}`}${tail ? `: ${tail.replace(/^distill: /, '')}` : ''}); see ${join(job.dir, 'train.log')}. Re-run the same command to resume it.`,
          ),
        );
      }
    });
  });
};

/**
 * The run's lock; while another experiment (another process) trains the same run, wait for it to
 * release the lock (it seals the result first): then the finished run is reused, an unfinished one resumed here.
 */
async function lockOrWait(dir: string, run: PlannedRun, log: Logger): Promise<RunLock> {
  let said = false;
  for (;;) {
    try {
      return acquireRunLock(dir, { logger: log, command: `experiment run ${run.label} seed ${run.seed}` });
    } catch (e) {
      if (!(e instanceof DistillError) || !/in use by another distill run/.test(e.message) || /on host/.test(e.message))
        throw e;
    }
    if (!said) log.info(`${run.label} seed ${run.seed}: ${dir} is being trained by another experiment; waiting for it`);
    said = true;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Under the run's lock: move the files of a run whose result fails its checks out of the way (kept beside it), so it trains afresh. */
function quarantine(dir: string, file: string, problem: string, log: Logger): string {
  const to = `${dir}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  mkdirSync(to, { recursive: true });
  for (const f of readdirSync(dir)) if (f !== RUN_LOCK_FILE) renameSync(join(dir, f), join(to, f));
  log.warn(`${file}: ${problem}. The run is not reported; it is retrained (its files are kept in ${to}).`);
  return to;
}

/** Train (or reuse, or resume) one run in its store folder. */
async function runOne(
  run: PlannedRun,
  fp: RunFingerprint,
  store: string,
  trainer: Trainer,
  log: Logger,
  reuseStale: boolean,
): Promise<RunOutcome> {
  const dir = runDirOf(store, run.hash, fp);
  const done = join(dir, 'result.json');
  const rec = readRunRecord(dir);
  if (rec && (rec.configHash ?? '') !== run.hash) {
    throw new DistillError(
      `Run store folder ${dir} holds another config (hash ${rec.configHash}); it is not distill's, or the store was edited. Move it away or pass another --store.`,
      2,
    );
  }
  const base = { run, dir, fingerprint: fp };
  let corrupt: string | undefined;
  /** The finished run when its result passes its checks; under the lock (`locked`), a failing one is moved aside. */
  const verified = (locked: boolean): RunOutcome | undefined => {
    if (!existsSync(done)) return undefined;
    const v = readVerifiedResult(done);
    if (v.ok) return { ...base, status: 'reused', result: v.value, reason: 'fingerprint matches' };
    if (locked) {
      quarantine(dir, done, v.problem, log);
      corrupt = `${done}: ${v.problem}`;
    }
    return undefined;
  };
  const reused = verified(false);
  if (reused) return reused;
  const unfinished = !existsSync(done);
  // the same config stored under another fingerprint
  let stale: (FingerprintPart | 'unrecorded')[] | undefined;
  if (unfinished && !hasCheckpoint(dir)) {
    const old = staleRuns(store, run.hash, dir)[0];
    if (old) {
      stale = old.stale.length ? old.stale : fingerprintDiff(readStoredFingerprint(old.dir)?.fingerprint, fp);
      if (reuseStale) {
        const v = readVerifiedResult(join(old.dir, 'result.json'), false);
        if (v.ok)
          return {
            run,
            dir: old.dir,
            fingerprint: fp,
            status: 'stale',
            result: v.value,
            reason: `stale (${staleReason(stale)}), reused: --reuse-stale`,
            stale,
          };
        log.warn(`${join(old.dir, 'result.json')}: ${v.problem}; not reused`);
      }
    }
  }
  // a child of a killed experiment may still be exiting: give it a moment before refusing
  let orphan = liveOrphan(dir);
  for (let waited = 0; orphan && waited < 30_000; waited += 250) {
    await new Promise((r) => setTimeout(r, 250));
    orphan = liveOrphan(dir);
  }
  if (orphan)
    throw new DistillError(
      `Run ${dir} is still being trained by pid ${orphan}, left by an experiment that was killed: wait for it to finish (or end it), then re-run.`,
      2,
    );
  const lock = await lockOrWait(dir, run, log);
  try {
    const again = verified(true);
    if (again) return again;
    if (!readRunRecord(dir))
      atomicWriteJson(join(dir, 'config.json'), {
        config: run.config,
        configHash: run.hash,
        label: run.label,
        seed: run.seed,
        created: new Date().toISOString(),
      });
    if (!existsSync(join(dir, 'fingerprint.json')))
      atomicWriteJson(join(dir, 'fingerprint.json'), {
        configHash: run.hash,
        fingerprint: fp,
        created: new Date().toISOString(),
      } satisfies StoredFingerprint);
    const resume = hasCheckpoint(dir);
    log.info(
      `${run.label} seed ${run.seed}: ${resume ? 'resuming' : 'training'} in ${dir}${stale ? ` (a stored run of this config is stale: ${staleReason(stale)})` : ''}`,
    );
    const result = await trainer({ config: run.config, dir, label: run.label, resume }, log);
    const bad = resultProblems(result);
    if (bad.length)
      throw new DistillError(
        `Run '${run.label}' seed ${run.seed} wrote a result out of range (${bad.slice(0, 2).join('; ')}): ${done}. Not reported; see ${join(dir, 'train.log')}.`,
      );
    sealFile(done);
    const reason = corrupt
      ? `corrupt, retrained (${corrupt})`
      : stale
        ? `stale (${staleReason(stale)}), retrained`
        : resume
          ? 'resumed'
          : 'new';
    return { ...base, status: resume ? 'resumed' : 'trained', result, reason, ...(stale ? { stale } : {}) };
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
  opts: {
    store: string;
    workers: number;
    log: Logger;
    trainer?: Trainer;
    after?: (o: RunOutcome) => Promise<void>;
    /** Each run's fingerprint (code, teacher, dataset). */
    fingerprint: (run: PlannedRun) => RunFingerprint | Promise<RunFingerprint>;
    /** Reuse a finished run of the same config stored under another fingerprint, marked stale (default: retrain it). */
    reuseStale?: boolean;
  },
): Promise<Map<string, RunOutcome>> {
  mkdirSync(opts.store, { recursive: true });
  const unique = [...new Map(runs.map((r) => [r.hash, r])).values()];
  const fps = new Map<string, RunFingerprint>();
  for (const r of unique) fps.set(r.hash, await opts.fingerprint(r));
  // finished runs first (no work), then the rest in order
  const isDone = (r: PlannedRun) => existsSync(join(runDirOf(opts.store, r.hash, fps.get(r.hash)), 'result.json'));
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
        const o = await runOne(run, fps.get(run.hash)!, opts.store, trainer, opts.log, opts.reuseStale ?? false);
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

/** Ranks of a run from <dir>/ranks.json when it passes its checksum and range checks. */
export function readRanks(dir: string): RunRanks | undefined {
  const v = readVerifiedRanks(join(dir, 'ranks.json'));
  return v.ok ? v.value : undefined;
}

/** One line: how many runs were reused, trained, resumed, and why. */
export function reuseSummary(outcomes: Iterable<RunOutcome>): string {
  const os = [...outcomes];
  const count = (f: (o: RunOutcome) => boolean) => os.filter(f).length;
  const reused = count((o) => o.status === 'reused');
  const trained = os.filter((o) => o.status === 'trained');
  const fresh = trained.filter((o) => o.reason === 'new').length;
  const staleT = trained.filter((o) => o.stale);
  const corrupt = trained.filter((o) => o.reason.startsWith('corrupt')).length;
  const parts = (xs: RunOutcome[]) => {
    const by = new Map<string, number>();
    for (const o of xs) for (const p of o.stale ?? []) by.set(p, (by.get(p) ?? 0) + 1);
    return [...by]
      .map(([p, n]) => (p === 'unrecorded' ? `${n} stored before fingerprints` : `${p} changed: ${n}`))
      .join(', ');
  };
  const staleR = os.filter((o) => o.status === 'stale');
  return (
    `${os.length} distinct run${os.length === 1 ? '' : 's'}: ${reused} reused (same config, seed, code, teacher and dataset), ` +
    `${trained.length} trained (${fresh} new${staleT.length ? `, ${staleT.length} stale: ${parts(staleT)}` : ''}${corrupt ? `, ${corrupt} whose stored files failed their checks` : ''}), ` +
    `${count((o) => o.status === 'resumed')} resumed` +
    (staleR.length ? `, ${staleR.length} STALE reused (--reuse-stale; ${parts(staleR)})` : '')
  );
}
