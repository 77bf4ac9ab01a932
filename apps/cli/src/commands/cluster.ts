import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createLogger, DistillError, type Logger } from '@distill/core';
import {
  defaultStore,
  experimentK8sJob,
  jobName,
  K8S_MOUNT,
  kubectlApply,
  manifestYaml,
  renderIndexedJob,
  runOnSlurm,
  thisDistill,
  type TaskArray,
  planExperiment,
  planJson,
  planFingerprints,
  runFingerprint,
  runExperimentOnSlurm,
  runTask,
  type ExperimentOptions,
  type K8sOptions,
  type SlurmOptions,
} from '@distill/experiments';
import {
  isShardPending,
  parseShard,
  shardManifestFile,
  type ShardPending,
  type ShardSpec,
  type TeacherFeatures,
} from '@distill/teacher-adapters';
import { cacheRoot } from '@distill/training';
import type { ArgumentsCamelCase, Argv } from 'yargs';

/** The flags of the cluster executors, shared by `distill experiment` and `distill teacher extract` (docs/distributed.md). */
export function clusterBuilder(y: Argv): Argv {
  return y
    .group(
      [
        'parallel',
        'cpus-per-task',
        'partition',
        'time',
        'sbatch',
        'slurm-dir',
        'image',
        'volume-claim',
        'mount',
        'namespace',
        'apply',
        'manifest',
        'distill-command',
      ],
      'Cluster executors (--executor slurm|k8s):',
    )
    .option('parallel', {
      type: 'number',
      describe: "tasks running at a time (Slurm --array ...%P, the Job's parallelism; default: all)",
    })
    .option('cpus-per-task', {
      type: 'number',
      describe:
        "cores per task (Slurm --cpus-per-task, the pod's cpu request; also its onnxruntime threads; default 1)",
    })
    .option('partition', { type: 'string', describe: 'Slurm partition' })
    .option('time', { type: 'string', describe: 'Slurm time limit per task, e.g. 2:00:00' })
    .option('sbatch', {
      type: 'string',
      array: true,
      describe: 'another sbatch line, e.g. --sbatch=--account=abc (repeatable)',
    })
    .option('slurm-dir', {
      type: 'string',
      describe: 'folder for the sbatch script and the task logs, on the shared file system (default <store>/slurm)',
    })
    .option('image', { type: 'string', describe: 'k8s: container image with the distill CLI on its PATH' })
    .option('volume-claim', {
      type: 'string',
      describe: 'k8s: PersistentVolumeClaim (ReadWriteMany) for the store and the teacher cache',
    })
    .option('mount', { type: 'string', describe: 'k8s: where the claim is mounted in the pods (default /distill)' })
    .option('namespace', { type: 'string', describe: 'k8s: namespace of the Job' })
    .option('apply', { type: 'boolean', describe: 'k8s: kubectl apply the Job (otherwise it is printed and written)' })
    .option('manifest', { type: 'string', describe: 'k8s: file to write the Job to (default <out>/<job>.job.yaml)' })
    .option('distill-command', {
      type: 'string',
      describe:
        'how a node starts distill (default: this node and distill; k8s: distill), e.g. "apptainer exec distill.sif distill"',
    });
}

type Args = ArgumentsCamelCase<Record<string, unknown>>;

const int = (flag: string, v: unknown): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new DistillError(`--${flag} expects a whole number >= 1, got ${String(v)}.`, 2);
  return n;
};

function distillCommand(args: Args): string[] | undefined {
  return args.distillCommand === undefined ? undefined : String(args.distillCommand).split(/\s+/).filter(Boolean);
}

export function slurmOptions(args: Args, gpu: boolean): Omit<SlurmOptions, 'dir'> & { dir?: string } {
  return {
    parallel: int('parallel', args.parallel),
    cpusPerTask: int('cpus-per-task', args.cpusPerTask),
    partition: args.partition as string | undefined,
    time: args.time as string | undefined,
    extra: (args.sbatch as string[] | undefined)?.map(String),
    dir: args.slurmDir === undefined ? undefined : resolve(String(args.slurmDir)),
    gpu,
    distill: distillCommand(args),
    pollSeconds: process.env.DISTILL_SLURM_POLL_S ? Number(process.env.DISTILL_SLURM_POLL_S) : undefined,
  };
}

export function k8sOptions(args: Args, gpu: boolean): K8sOptions & { apply?: boolean; manifest?: string } {
  if (!args.image)
    throw new DistillError(
      '--executor k8s needs --image <a container image with the distill CLI on its PATH> (docs/distributed.md).',
      2,
    );
  if (!args.volumeClaim)
    throw new DistillError(
      '--executor k8s needs --volume-claim <a ReadWriteMany PersistentVolumeClaim for the store> (docs/distributed.md).',
      2,
    );
  return {
    image: String(args.image),
    volumeClaim: String(args.volumeClaim),
    mount: args.mount as string | undefined,
    namespace: args.namespace as string | undefined,
    parallel: int('parallel', args.parallel),
    cpusPerTask: int('cpus-per-task', args.cpusPerTask),
    gpu,
    distill: distillCommand(args),
    apply: Boolean(args.apply),
    manifest: args.manifest as string | undefined,
  };
}

/** The experiment flags every task repeats, as given (paths made absolute). */
function forwardedFlags(args: Args): string[] {
  const out: string[] = ['--scale', String(args.scale), '--seeds', String(args.seeds)];
  const put = (flag: string, v: unknown, path = false) => {
    if (v !== undefined) out.push(`--${flag}`, path ? resolve(String(v)) : String(v));
  };
  put('only', args.only);
  put('preset', args.preset);
  if (args.reuseStale) out.push('--reuse-stale');
  put('dataset', args.dataset);
  put('data-root', args.dataRoot, true);
  put('teacher', args.teacher);
  put('teacher-model', args.teacherModel, true);
  put('size', args.size);
  put('backend', args.backend);
  put('device', args.device);
  return out;
}

/**
 * `distill experiment` with --plan, --task or --executor slurm|k8s; undefined for the local executor
 * (the command's own path).
 */
export async function experimentOnCluster(
  name: string,
  args: Args,
  opts: ExperimentOptions,
): Promise<{ code: number } | undefined> {
  const log = opts.logger ?? createLogger();
  const store = resolve(opts.store ?? defaultStore());
  const executor = String(args.executor ?? 'local');
  const onCluster = args.plan || args.task !== undefined || executor !== 'local';
  if (onCluster && opts.seeds === 'auto')
    throw new DistillError(
      '--seeds auto runs on the local executor only (it decides the next seeds from the results so far); give --plan, --task and --executor slurm|k8s a number of seeds.',
      2,
    );
  if (args.plan) {
    const plan = planExperiment(name, opts);
    const j = planJson(plan, store, await planFingerprints(plan, (r) => runFingerprint(r.config, opts.container)));
    if (args.json) process.stdout.write(JSON.stringify(j, null, 2) + '\n');
    else {
      process.stdout.write(`${j.experiment}: ${j.tasks.length} tasks (plan ${j.plan.slice(0, 12)}), store ${store}\n`);
      for (const t of j.tasks)
        process.stdout.write(
          `  ${String(t.task).padStart(4)}  ${t.state.padEnd(8)}  ${t.label} seed ${t.seed}  ${t.dir}\n`,
        );
    }
    return { code: 0 };
  }
  if (args.task !== undefined) {
    if (executor !== 'local')
      throw new DistillError(
        '--task runs one task here: leave --executor out (the scheduler runs the task commands).',
        2,
      );
    const o = await runTask(name, {
      ...opts,
      task: Number(args.task),
      store,
      storeId: args.storeId as string | undefined,
      planId: args.planId as string | undefined,
      logger: log,
    });
    process.stdout.write(
      JSON.stringify({
        task: Number(args.task),
        label: o.run.label,
        seed: o.run.seed,
        status: o.status,
        dir: o.dir,
        rsum: o.result.test.rsum,
      }) + '\n',
    );
    return { code: 0 };
  }
  const gpu = opts.flags?.device === 'webgpu';
  if (executor === 'slurm') {
    const { results, table } = await runExperimentOnSlurm(name, {
      ...opts,
      store,
      forward: forwardedFlags(args),
      slurm: slurmOptions(args, gpu),
    });
    process.stdout.write(
      `\nresults: ${opts.out}/results.md (${results.length} table${results.length > 1 ? 's' : ''})\n\n${table}\n`,
    );
    return { code: 0 };
  }
  if (executor === 'k8s') {
    const k = experimentK8sJob(name, { ...opts, forward: forwardedFlags(args), k8s: k8sOptions(args, gpu) });
    if (k.applied !== undefined) {
      process.stdout.write(
        `${k.applied}\nIndexed Job of ${k.tasks} tasks applied (${k.file}). Follow it with kubectl get job; then collect the results on a machine (or pod) that mounts the claim: distill experiment ${name} --collect --store <mount>/runs\n`,
      );
    } else {
      process.stdout.write(k.manifest);
      log.info(`Indexed Job of ${k.tasks} tasks written to ${k.file}; kubectl apply -f it, or pass --apply`);
    }
    return { code: 0 };
  }
  return undefined;
}

/** The `teacher extract` flags every shard repeats (paths made absolute). */
function teacherForward(args: Args): string[] {
  const out: string[] = [];
  const put = (flag: string, v: unknown, path = false) => {
    if (v !== undefined && v !== false)
      out.push(`--${flag}`, ...(v === true ? [] : [path ? resolve(String(v)) : String(v)]));
  };
  put('teacher', args.teacher);
  put('teacher-model', args.teacherModel, true);
  put('dataset', args.dataset);
  put('data-root', args.dataRoot, true);
  put('annotations', args.annotations, true);
  put('image-root', args.imageRoot, true);
  put('batch-size', args.batchSize);
  put('skip-bad-images', args.skipBadImages);
  put('train-subset', args.trainSubset);
  put('eval-subset', args.evalSubset);
  put('device', args.device);
  return out;
}

/** What `distill teacher extract` prints: the cache file, its key and the rows per split. */
export function featuresSummary(f: TeacherFeatures): Record<string, unknown> {
  const counts = Object.fromEntries(
    Object.entries(f.splits).map(([k, v]) => [k, { images: v.images.length / f.dim, texts: v.texts.length / f.dim }]),
  );
  return { teacher: f.name, dim: f.dim, cache: f.file, key: f.fingerprint, splits: counts };
}

/**
 * `distill teacher extract` with --shard i/N (one shard here) or --executor slurm|k8s (the N shards
 * as a job array / an Indexed Job); undefined for a plain extraction.
 */
export async function teacherExtractOnCluster(
  args: Args,
  shardOf: (shard: ShardSpec) => Promise<TeacherFeatures | ShardPending>,
  log: Logger,
): Promise<Record<string, unknown> | undefined> {
  const executor = String(args.executor ?? 'local');
  if (args.shard !== undefined) {
    if (executor !== 'local')
      throw new DistillError(
        '--shard computes one shard here: leave --executor out (with --executor, --shards N says how many).',
        2,
      );
    const shard = parseShard(String(args.shard));
    const r = await shardOf(shard);
    return isShardPending(r)
      ? {
          shard: `${shard.index}/${shard.count}`,
          complete: false,
          cache: r.file,
          key: r.key,
          missing: r.missing.map((i) => `${i}/${shard.count}`),
        }
      : { shard: `${shard.index}/${shard.count}`, complete: true, ...featuresSummary(r) };
  }
  if (executor === 'local') return undefined;
  const count = int('shards', args.shards);
  if (count === undefined)
    throw new DistillError(
      `--executor ${executor} on teacher extract needs --shards <N> (how many tasks share the extraction).`,
      2,
    );
  const gpu = args.device === 'webgpu';
  const forward = teacherForward(args);
  if (executor === 'k8s') {
    const k = k8sOptions(args, gpu);
    const mount = k.mount ?? K8S_MOUNT;
    const array: TaskArray = {
      name: jobName('distill-teacher', String(args.teacher ?? 'teacher'), String(args.dataset ?? '')),
      count,
      args: (i) => ['teacher', 'extract', ...forward, '--shard', `${i}/${count}`],
      done: () => false,
      describe: (i) => `shard ${i}/${count}`,
      env: { DISTILL_CACHE_DIR: `${mount}/cache` },
    };
    const manifest = manifestYaml(renderIndexedJob(array, k));
    const file = resolve(k.manifest ?? `${array.name}.job.yaml`);
    writeFileSync(file, manifest);
    if (k.apply) process.stdout.write(`${kubectlApply(file)}\n`);
    else process.stdout.write(manifest);
    log.info(
      `Indexed Job of ${count} shards written to ${file}${k.apply ? ' and applied' : ''}; the last shard to finish merges them into the cache on the claim`,
    );
    return { job: array.name, manifest: file, shards: count, applied: Boolean(k.apply) };
  }
  // slurm: where the cache file is (and whether it is complete already)
  const first = await shardOf({ index: 0, count, merge: true });
  if (!isShardPending(first))
    return { ...featuresSummary(first), shards: count, note: 'already complete in the cache: nothing submitted' };
  const parts = `${first.file}.parts`;
  const cacheDir = resolve(cacheRoot());
  const array: TaskArray = {
    name: jobName('distill-teacher', String(args.teacher ?? 'teacher'), first.key.slice(0, 8)),
    count,
    args: (i) => ['teacher', 'extract', ...forward, '--shard', `${i}/${count}`],
    done: (i) => existsSync(first.file) || existsSync(shardManifestFile(parts, i, count)),
    describe: (i) => `shard ${i}/${count}`,
    env: { DISTILL_CACHE_DIR: cacheDir },
  };
  const s = slurmOptions(args, gpu);
  await runOnSlurm(array, { ...s, dir: s.dir ?? join(cacheDir, 'slurm'), distill: s.distill ?? thisDistill() }, log);
  const merged = await shardOf({ index: 0, count, merge: true });
  if (isShardPending(merged))
    throw new DistillError(
      `Shards ${merged.missing.map((i) => `${i}/${count}`).join(', ')} of ${merged.file} are missing after the Slurm job: run the same command again (it submits only those).`,
      1,
    );
  return { ...featuresSummary(merged), shards: count };
}
