import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DistillError, type Logger } from '@distill/core';
import { indexRanges, shellWord, type ClusterOptions, type TaskArray } from './tasks.js';

export interface SlurmOptions extends ClusterOptions {
  partition?: string;
  /** Wall-clock limit per task (Slurm's --time, e.g. 2:00:00). */
  time?: string;
  /** More sbatch lines (e.g. "--account=abc", "--qos=low"), each written as `#SBATCH <line>`. */
  extra?: string[];
  /** Folder for the script and the tasks' logs: it must be on the shared file system too. */
  dir: string;
  /** Folder the tasks start in (default: this process's). */
  cwd?: string;
  /** Seconds between looks at the queue (default 5). */
  pollSeconds?: number;
  /** Runs a Slurm command (tests replace it): its exit code and output. */
  exec?: (cmd: string, args: string[]) => { code: number; stdout: string; stderr: string };
}

const defaultExec = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new DistillError(
        `'${cmd}' was not found: --executor slurm needs the Slurm commands (sbatch, squeue, scontrol) on this machine's PATH (a Slurm login node; tools/cluster/slurm-local.sh start sets up a one-node Slurm here).`,
        2,
      );
    throw new DistillError(`Could not run ${cmd}: ${r.error.message}`);
  }
  return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
};

/** The task's log file name pattern (%x job name, %A array job id, %a task index). */
export const SLURM_LOG = '%x-%A_%a.log';

export function slurmLogOf(dir: string, name: string, jobId: string, i: number): string {
  return join(dir, `${name}-${jobId}_${i}.log`);
}

/** The sbatch script of a job array over `indices` of the task array (all of them on a first submission, the missing ones on a rerun). */
export function renderSbatch(array: TaskArray, indices: number[], opts: SlurmOptions): string {
  if (indices.length === 0) throw new DistillError('Nothing to submit: every task is done.', 2);
  const p = opts.parallel;
  const lines = [
    '#!/bin/bash',
    `#SBATCH --job-name=${array.name}`,
    `#SBATCH --array=${indexRanges(indices)}${p ? `%${p}` : ''}`,
    `#SBATCH --output=${join(opts.dir, SLURM_LOG)}`,
    '#SBATCH --ntasks=1',
    `#SBATCH --cpus-per-task=${opts.cpusPerTask ?? 1}`,
    ...(opts.partition ? [`#SBATCH --partition=${opts.partition}`] : []),
    ...(opts.time ? [`#SBATCH --time=${opts.time}`] : []),
    ...(opts.gpu ? ['#SBATCH --gres=gpu:1'] : []),
    ...(opts.extra ?? []).map((l) => (l.trim().startsWith('#SBATCH') ? l.trim() : `#SBATCH ${l.trim()}`)),
    `# distill: ${array.count} task${array.count === 1 ? '' : 's'}; each array index is one task, written into the shared store.`,
    `# A rerun of the same distill command submits only the tasks whose work is missing.`,
    'set -eu',
    `cd ${shellWord(opts.cwd ?? process.cwd())}`,
    ...Object.entries(array.env).map(([k, v]) => `export ${k}=${shellWord(v)}`),
    `exec ${[...(opts.distill ?? []), ...array.args('"$SLURM_ARRAY_TASK_ID"')].map(shellWord).join(' ')}`,
    '',
  ];
  return lines.join('\n');
}

interface QueuedTask {
  jobId: string;
  index: number;
  state: string;
}

/** The tasks of jobs named `name` still in the queue (pending, running, completing...). */
export function queuedTasks(name: string, opts: Pick<SlurmOptions, 'exec'>): QueuedTask[] {
  const exec = opts.exec ?? defaultExec;
  for (let attempt = 0; ; attempt++) {
    const r = exec('squeue', ['-h', '-r', '--name', name, '-o', '%A %K %T']);
    if (r.code === 0) {
      return r.stdout
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter((f) => f.length === 3 && /^\d+$/.test(f[1]))
        .map(([jobId, index, state]) => ({ jobId, index: Number(index), state }));
    }
    if (attempt >= 5)
      throw new DistillError(
        `squeue failed (${(r.stderr || r.stdout).trim().split('\n')[0]}): is slurmctld reachable from here?`,
      );
    spawnSync('sleep', ['2']);
  }
}

/** State and exit code of each task of a job that Slurm still remembers (scontrol; MinJobAge, 300 s by default). */
function taskEndings(jobIds: string[], opts: Pick<SlurmOptions, 'exec'>): Map<number, string> {
  const exec = opts.exec ?? defaultExec;
  const out = new Map<number, string>();
  for (const id of jobIds) {
    // sacct first (a cluster with accounting keeps every task); without slurmdbd it answers that accounting is disabled
    const acct = exec('sacct', ['-n', '-X', '-P', '-j', id, '-o', 'JobID,State,ExitCode']);
    if (acct.code === 0) {
      for (const l of acct.stdout.split('\n')) {
        const m = /^\d+_(\d+)\|([^|]+)\|(\S+)/.exec(l.trim());
        if (m) out.set(Number(m[1]), `${m[2]}, exit ${m[3]}`);
      }
    }
    const r = exec('scontrol', ['-o', 'show', 'job', id]);
    if (r.code !== 0) continue;
    for (const l of r.stdout.split('\n')) {
      const idx = /\bArrayTaskId=(\d+)\b/.exec(l);
      const st = /\bJobState=(\S+)/.exec(l);
      const ex = /\bExitCode=(\S+)/.exec(l);
      if (idx && st && !out.has(Number(idx[1]))) out.set(Number(idx[1]), `${st[1]}${ex ? `, exit ${ex[1]}` : ''}`);
    }
  }
  return out;
}

export interface SlurmOutcome {
  /** Job ids submitted now (none when every task was done or already queued). */
  submitted: string[];
  /** Indices submitted now. */
  indices: number[];
  script?: string;
  finished: number;
  failed: { index: number; what: string; ending?: string; log?: string; runLog?: string }[];
}

/**
 * Submit the missing tasks of the array as one sbatch job array (tasks still queued under the same
 * job name are followed, not submitted again), follow them with squeue until none is queued (progress
 * as finished / running / pending / failed), and name each failed task with its logs. Resolves when
 * every task is done; throws a DistillError naming the failed ones otherwise.
 */
export async function runOnSlurm(
  array: TaskArray,
  opts: SlurmOptions,
  log: Logger,
  hooks: { submitOnly?: boolean } = {},
): Promise<SlurmOutcome> {
  const exec = opts.exec ?? defaultExec;
  mkdirSync(opts.dir, { recursive: true });
  const all = Array.from({ length: array.count }, (_, i) => i);
  const queued = queuedTasks(array.name, opts);
  const inQueue = new Set(queued.map((q) => q.index));
  const missing = all.filter((i) => !array.done(i) && !inQueue.has(i));
  const doneBefore = all.filter((i) => array.done(i)).length;
  const jobIds = new Set(queued.map((q) => q.jobId));
  const jobOf = new Map(queued.map((q) => [q.index, q.jobId]));
  const outcome: SlurmOutcome = { submitted: [], indices: missing, finished: 0, failed: [] };
  log.info(
    `slurm ${array.name}: ${array.count} task${array.count === 1 ? '' : 's'}: ${doneBefore} done in the store, ${inQueue.size} already queued, ${missing.length} to submit`,
  );
  if (missing.length) {
    const script = join(opts.dir, `${array.name}.sbatch`);
    writeFileSync(script, renderSbatch(array, missing, opts), { mode: 0o755 });
    outcome.script = script;
    const r = exec('sbatch', ['--parsable', script]);
    if (r.code !== 0)
      throw new DistillError(
        `sbatch refused ${script}: ${(r.stderr || r.stdout).trim().split('\n').slice(-1)[0]}. Check the partition, --time and the extra sbatch lines.`,
        2,
      );
    const jobId = r.stdout.trim().split(';')[0];
    if (!/^\d+$/.test(jobId))
      throw new DistillError(`sbatch answered '${r.stdout.trim()}' instead of a job id (${script}).`);
    outcome.submitted.push(jobId);
    jobIds.add(jobId);
    for (const i of missing) jobOf.set(i, jobId);
    log.info(
      `slurm ${array.name}: submitted job ${jobId} (array ${indexRanges(missing)}${opts.parallel ? `%${opts.parallel}` : ''}), script ${script}, logs ${join(opts.dir, `${array.name}-${jobId}_<task>.log`)}`,
    );
  }
  if (hooks.submitOnly) return outcome;
  const poll = (opts.pollSeconds ?? 5) * 1000;
  let said = '';
  for (;;) {
    const q = queuedTasks(array.name, opts);
    for (const t of q) {
      jobIds.add(t.jobId);
      jobOf.set(t.index, t.jobId);
    }
    const running = q.filter((t) => /RUNNING|COMPLETING|CONFIGURING/.test(t.state)).length;
    const pending = q.length - running;
    const qIdx = new Set(q.map((t) => t.index));
    const finished = all.filter((i) => array.done(i)).length;
    const failed = all.filter((i) => !qIdx.has(i) && !array.done(i)).length;
    const line = `slurm ${array.name}: ${finished}/${array.count} finished, ${running} running, ${pending} pending, ${failed} failed`;
    if (line !== said) log.info(line);
    said = line;
    if (q.length === 0) break;
    await new Promise((r) => setTimeout(r, poll));
  }
  const endings = taskEndings([...jobIds], opts);
  outcome.finished = all.filter((i) => array.done(i)).length;
  for (const i of all.filter((i) => !array.done(i))) {
    const jobId = jobOf.get(i);
    outcome.failed.push({
      index: i,
      what: array.describe(i),
      ending: endings.get(i),
      log: jobId ? slurmLogOf(opts.dir, array.name, jobId, i) : undefined,
      runLog: array.runLog?.(i),
    });
  }
  if (outcome.failed.length) {
    const lines = outcome.failed.map(
      (f) =>
        `task ${f.index} (${f.what})${f.ending ? ` ${f.ending}` : ' did not finish'}: see ${f.log}${f.runLog ? ` and ${f.runLog}` : ''}`,
    );
    for (const l of lines) log.warn(l);
    throw new DistillError(
      `${outcome.failed.length} of ${array.count} Slurm task${array.count === 1 ? '' : 's'} did not finish (${lines.join('; ')}). Run the same command again: it submits only the missing tasks, and a killed run resumes from its checkpoint.`,
      1,
    );
  }
  return outcome;
}
