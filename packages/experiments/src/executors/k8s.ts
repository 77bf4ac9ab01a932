import { spawnSync } from 'node:child_process';
import { DistillError } from '@distill/core';
import YAML from 'yaml';
import type { ClusterOptions, TaskArray } from './tasks.js';

export interface K8sOptions extends ClusterOptions {
  /** The container image with the distill CLI on its PATH (`distill` on its PATH). */
  image: string;
  /** The PersistentVolumeClaim that holds the store (ReadWriteMany: every pod mounts it). */
  volumeClaim: string;
  /** Where the claim is mounted in the pod (default /distill): the store is <mount>/runs, the cache <mount>/cache. */
  mount?: string;
  namespace?: string;
  /** Pod failures the Job retries before it fails (default 3 per task). */
  backoffLimit?: number;
}

export const K8S_MOUNT = '/distill';

/** The env var the pod reads its completion index from (downward API; the Job controller also sets JOB_COMPLETION_INDEX). */
export const K8S_TASK_ENV = 'DISTILL_TASK';

/**
 * A batch/v1 Job in Indexed completion mode: one completion per task (completions N, parallelism P),
 * each pod runs `distill <task args>` with its completion index as the task, the store on the volume claim.
 */
export function renderIndexedJob(array: TaskArray, opts: K8sOptions): Record<string, unknown> {
  if (!opts.image)
    throw new DistillError('--executor k8s needs --image <container image with the distill CLI on its PATH>.', 2);
  if (!opts.volumeClaim)
    throw new DistillError(
      '--executor k8s needs --volume-claim <a ReadWriteMany PersistentVolumeClaim for the store>.',
      2,
    );
  const mount = opts.mount ?? K8S_MOUNT;
  const distill = opts.distill ?? ['distill'];
  const parallelism = Math.min(opts.parallel ?? array.count, array.count);
  const cpu = String(opts.cpusPerTask ?? 1);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: array.name,
      ...(opts.namespace ? { namespace: opts.namespace } : {}),
      labels: { 'app.kubernetes.io/name': 'distill', 'app.kubernetes.io/component': 'task-array' },
    },
    spec: {
      completionMode: 'Indexed',
      completions: array.count,
      parallelism,
      backoffLimit: opts.backoffLimit ?? 3 * array.count,
      template: {
        metadata: { labels: { 'app.kubernetes.io/name': 'distill', 'distill/job': array.name } },
        spec: {
          restartPolicy: 'Never',
          containers: [
            {
              name: 'distill',
              image: opts.image,
              command: distill.slice(0, 1),
              args: [...distill.slice(1), ...array.args(`$(${K8S_TASK_ENV})`)],
              env: [
                {
                  name: K8S_TASK_ENV,
                  valueFrom: {
                    fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" },
                  },
                },
                ...Object.entries(array.env).map(([name, value]) => ({ name, value })),
              ],
              resources: {
                requests: { cpu },
                limits: { cpu, ...(opts.gpu ? { 'nvidia.com/gpu': 1 } : {}) },
              },
              volumeMounts: [{ name: 'store', mountPath: mount }],
            },
          ],
          volumes: [{ name: 'store', persistentVolumeClaim: { claimName: opts.volumeClaim } }],
        },
      },
    },
  };
}

export function manifestYaml(job: Record<string, unknown>): string {
  return YAML.stringify(job, { lineWidth: 0 });
}

/** `kubectl apply -f <file>`; its output, or a DistillError with kubectl's own message. */
export function kubectlApply(
  file: string,
  exec: (cmd: string, args: string[]) => { code: number; stdout: string; stderr: string } = defaultExec,
): string {
  const r = exec('kubectl', ['apply', '-f', file]);
  if (r.code !== 0)
    throw new DistillError(
      `kubectl apply -f ${file} failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-1)[0]}`,
      1,
    );
  return r.stdout.trim();
}

function defaultExec(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new DistillError(
        `'${cmd}' was not found: --apply needs kubectl on this machine's PATH, configured for the cluster (or leave --apply out and apply the written manifest yourself).`,
        2,
      );
    throw new DistillError(`Could not run ${cmd}: ${r.error.message}`);
  }
  return { code: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
