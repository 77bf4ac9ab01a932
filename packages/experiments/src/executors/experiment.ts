import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createLogger, DistillError } from '@distill/core';
import { cacheRoot, needsTeacher } from '@distill/training';
import { warmTeacherCache } from '../evaluate.js';
import { runExperiments, type ExperimentOptions, type ExperimentResults } from '../experiment.js';
import { runFingerprint, type RunFingerprint } from '../fingerprint.js';
import { markSharedStore, planExperiment, planFingerprints, planIdWith, type ExperimentPlan } from '../plan.js';
import { defaultStore, runDirOf } from '../scheduler.js';
import { K8S_MOUNT, kubectlApply, manifestYaml, renderIndexedJob, type K8sOptions } from './k8s.js';
import { runOnSlurm, type SlurmOptions } from './slurm.js';
import { jobName, type TaskArray } from './tasks.js';

/**
 * The task array of an experiment plan: task i runs
 * `distill experiment <spec> <forwarded flags> --store S --task i` (plus the plan and store ids it checks).
 */
export function experimentTaskArray(
  plan: ExperimentPlan,
  opts: {
    spec: string;
    forward: string[];
    store: string;
    storeId: string;
    planId: string;
    cacheDir?: string;
    localStore?: string;
    fingerprints?: Map<string, RunFingerprint>;
  },
): TaskArray {
  const local = opts.localStore ?? opts.store;
  // a task's folder is keyed by its config hash and fingerprint; without the fingerprints (the submitter of a
  // Kubernetes job cannot see the store) no task counts as done here: each task itself reuses a finished run
  const dirOf = (i: number) =>
    opts.fingerprints ? runDirOf(local, plan.tasks[i].hash, opts.fingerprints.get(plan.tasks[i].hash)) : undefined;
  return {
    name: jobName(
      'distill',
      plan.specs.length === 1
        ? plan.specs[0].name
        : plan.experiment.replace(/^.*[\\/]/, '').replace(/\.(ya?ml|json)$/, ''),
      plan.id.slice(0, 8),
    ),
    count: plan.tasks.length,
    args: (index) => [
      'experiment',
      opts.spec,
      ...opts.forward,
      '--threads',
      String(plan.threads),
      '--store',
      opts.store,
      '--store-id',
      opts.storeId,
      '--plan-id',
      opts.planId,
      '--task',
      index,
    ],
    done: (i) => {
      const d = dirOf(i);
      return d !== undefined && existsSync(join(d, 'result.json'));
    },
    describe: (i) => `${plan.tasks[i].label} seed ${plan.tasks[i].seed}`,
    runLog: (i) => join(dirOf(i) ?? runDirOf(local, plan.tasks[i].hash), 'train.log'),
    env: opts.cacheDir ? { DISTILL_CACHE_DIR: opts.cacheDir } : {},
  };
}

export interface ClusterExperimentOptions extends ExperimentOptions {
  /** The flags each task repeats (--scale, --seeds, --only, --dataset ...), as the command line had them. */
  forward: string[];
  slurm?: Omit<SlurmOptions, 'dir'> & { dir?: string };
  k8s?: K8sOptions & { apply?: boolean; manifest?: string; exec?: Parameters<typeof kubectlApply>[1] };
}

/**
 * `distill experiment <spec> --executor slurm`: mark the shared store, fill the teacher-feature cache
 * once here, submit the missing tasks as a Slurm job array, follow it, then report from the store
 * exactly as the local executor does (a run the cluster did not finish is named, never trained here).
 */
export async function runExperimentOnSlurm(
  spec: string,
  opts: ClusterExperimentOptions,
): Promise<{ results: ExperimentResults[]; table: string }> {
  const log = opts.logger ?? createLogger();
  const plan = planExperiment(spec, {
    ...opts,
    workers: opts.workers ?? 1,
    threads: opts.threads ?? opts.slurm?.cpusPerTask ?? 1,
  });
  const store = resolve(opts.store ?? defaultStore());
  const storeId = markSharedStore(store);
  const cacheDir = resolve(cacheRoot());
  // the teacher's features once, before the tasks start (they read them from the shared cache)
  await warmTeacherCache(
    plan.tasks.map((t) => t.config),
    (c) => needsTeacher(c, opts.container),
    opts.container,
    log,
  );
  const fingerprints = await planFingerprints(
    plan,
    opts.fingerprint ?? ((r) => runFingerprint(r.config, opts.container)),
  );
  const array = experimentTaskArray(plan, {
    spec,
    forward: opts.forward,
    store,
    storeId,
    planId: planIdWith(plan, fingerprints),
    cacheDir,
    fingerprints,
  });
  const dir = resolve(opts.slurm?.dir ?? join(store, 'slurm'));
  await runOnSlurm(
    array,
    {
      ...opts.slurm,
      dir,
      cpusPerTask: opts.slurm?.cpusPerTask ?? plan.threads,
      distill: opts.slurm?.distill ?? thisDistill(),
    },
    log,
  );
  return runExperiments(spec, { ...opts, threads: plan.threads, store, collect: true, logger: log });
}

/**
 * `distill experiment <spec> --executor k8s`: the Indexed Job of the plan (written to a file and
 * returned); with apply, `kubectl apply -f` it. The store and the teacher cache live on the volume claim.
 */
export function experimentK8sJob(
  spec: string,
  opts: ClusterExperimentOptions,
): { manifest: string; file: string; tasks: number; applied?: string } {
  if (!opts.k8s) throw new DistillError('--executor k8s needs --image and --volume-claim.', 2);
  const plan = planExperiment(spec, {
    ...opts,
    workers: opts.workers ?? 1,
    threads: opts.threads ?? opts.k8s.cpusPerTask ?? 1,
  });
  const mount = opts.k8s.mount ?? K8S_MOUNT;
  const store = `${mount}/runs`;
  // the submitter cannot write the mark on the claim: each pod checks that the mount exists, 'mount' as the id
  const array = experimentTaskArray(plan, {
    spec,
    forward: opts.forward,
    store,
    storeId: `mount:${mount}`,
    planId: `config:${plan.id}`,
    cacheDir: `${mount}/cache`,
  });
  const manifest = manifestYaml(
    renderIndexedJob(array, { ...opts.k8s, cpusPerTask: opts.k8s.cpusPerTask ?? plan.threads }),
  );
  const file = resolve(opts.k8s.manifest ?? join(opts.out, `${array.name}.job.yaml`));
  mkdirSync(resolve(file, '..'), { recursive: true });
  writeFileSync(file, manifest);
  const applied = opts.k8s.apply ? kubectlApply(file, opts.k8s.exec) : undefined;
  return { manifest, file, tasks: plan.tasks.length, ...(applied !== undefined ? { applied } : {}) };
}

/** How this process was started, to start the same distill on a node (node + the distill bin + its loader flags). */
export function thisDistill(): string[] {
  return [process.execPath, ...process.execArgv, process.argv[1]];
}
