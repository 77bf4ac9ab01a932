import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@distill/core';
import { Job } from 'kubernetes-models/batch/v1';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { planExperiment } from '../plan.js';
import { experimentK8sJob, experimentTaskArray } from './experiment.js';
import { renderIndexedJob } from './k8s.js';
import { renderSbatch, runOnSlurm } from './slurm.js';
import { indexRanges, shellWord, type TaskArray } from './tasks.js';
import { createTrainingContainer as builtinsContainer } from '@distill/training';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

const quiet = createLogger({ level: 'error' } as never);

function array(count: number, done: Set<number>): TaskArray {
  return {
    name: 'distill-t-abc',
    count,
    args: (i) => ['experiment', 'table2', '--seeds', '1', '--task', i],
    done: (i) => done.has(i),
    describe: (i) => `run ${i}`,
    runLog: (i) => `/store/${i}/train.log`,
    env: { DISTILL_CACHE_DIR: '/shared/cache dir' },
  };
}

/** A stand-in for sbatch / squeue / scontrol / sacct: a queue whose tasks finish (or fail) one poll after they were queued. */
function fakeSlurm(done: Set<number>, opts: { fail?: number[]; queued?: { jobId: string; index: number }[] } = {}) {
  const calls: string[][] = [];
  const queue = new Map<number, string>((opts.queued ?? []).map((q) => [q.index, q.jobId]));
  let next = 100;
  let polls = 0;
  const exec = (cmd: string, args: string[]) => {
    calls.push([cmd, ...args]);
    if (cmd === 'sbatch') {
      const script = readFileSync(args[1], 'utf8');
      const spec = /#SBATCH --array=([0-9,-]+)/.exec(script)![1];
      const jobId = String(next++);
      for (const part of spec.split(',')) {
        const [a, b] = part.split('-').map(Number);
        for (let i = a; i <= (b ?? a); i++) queue.set(i, jobId);
      }
      return { code: 0, stdout: `${jobId}\n`, stderr: '' };
    }
    if (cmd === 'squeue') {
      // each look after the first: the queued tasks end (finished into the store, or failed)
      if (polls++ > 0) {
        for (const i of queue.keys()) if (!opts.fail?.includes(i)) done.add(i);
        const out = [...queue].map(([i, j]) => `${j} ${i} RUNNING`).join('\n');
        queue.clear();
        return { code: 0, stdout: polls === 2 ? out : '', stderr: '' };
      }
      return { code: 0, stdout: [...queue].map(([i, j]) => `${j} ${i} PENDING`).join('\n'), stderr: '' };
    }
    if (cmd === 'sacct') return { code: 1, stdout: '', stderr: 'Slurm accounting storage is disabled' };
    if (cmd === 'scontrol')
      return {
        code: 0,
        stdout: (opts.fail ?? [])
          .map(
            (i) =>
              `JobId=9${i} ArrayJobId=${args[3]} ArrayTaskId=${i} JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0`,
          )
          .join('\n'),
        stderr: '',
      };
    throw new Error(`unexpected ${cmd}`);
  };
  return { exec, calls };
}

describe('the Slurm executor', () => {
  it('writes a job array script: one task per index, resources from the flags, the task command with $SLURM_ARRAY_TASK_ID', () => {
    const s = renderSbatch(
      array(126, new Set()),
      Array.from({ length: 126 }, (_, i) => i),
      {
        dir: '/shared/store/slurm',
        cwd: '/opt/distill',
        parallel: 8,
        cpusPerTask: 4,
        partition: 'gpu',
        time: '2:00:00',
        gpu: true,
        extra: ['--account=abc', '#SBATCH --qos=low'],
        distill: ['/usr/bin/node', '/opt/distill/bin/distill.js'],
      },
    );
    const lines = s.split('\n');
    expect(lines[0]).toBe('#!/bin/bash');
    expect(lines.filter((l) => l.startsWith('#SBATCH'))).toEqual([
      '#SBATCH --job-name=distill-t-abc',
      '#SBATCH --array=0-125%8',
      '#SBATCH --output=/shared/store/slurm/%x-%A_%a.log',
      '#SBATCH --ntasks=1',
      '#SBATCH --cpus-per-task=4',
      '#SBATCH --partition=gpu',
      '#SBATCH --time=2:00:00',
      '#SBATCH --gres=gpu:1',
      '#SBATCH --account=abc',
      '#SBATCH --qos=low',
    ]);
    expect(s).toContain('\ncd /opt/distill\n');
    expect(s).toContain("\nexport DISTILL_CACHE_DIR='/shared/cache dir'\n");
    expect(s).toContain(
      '\nexec /usr/bin/node /opt/distill/bin/distill.js experiment table2 --seeds 1 --task "$SLURM_ARRAY_TASK_ID"\n',
    );
    // no GPU line without --device webgpu; a rerun's array lists only the missing tasks
    const rerun = renderSbatch(array(10, new Set()), [1, 2, 3, 7, 9], { dir: '/d' });
    expect(rerun).toContain('#SBATCH --array=1-3,7,9\n');
    expect(rerun).not.toContain('--gres');
    expect(rerun).not.toContain('--partition');
  });

  it('indexRanges and shellWord', () => {
    expect(indexRanges([5, 0, 1, 2, 9, 8])).toBe('0-2,5,8-9');
    expect(indexRanges([3])).toBe('3');
    expect(shellWord("it's")).toBe(`'it'\\''s'`);
    expect(shellWord('"$SLURM_ARRAY_TASK_ID"/2')).toBe('"$SLURM_ARRAY_TASK_ID"/2');
    expect(shellWord('a b')).toBe("'a b'");
  });

  it('submits the missing tasks only, follows them to the end, and a rerun after a failure submits only the failed one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'distill-slurm-'));
    const done = new Set<number>([1]);
    const first = fakeSlurm(done, { fail: [3] });
    const err = await runOnSlurm(array(5, done), { dir, exec: first.exec, pollSeconds: 0 }, quiet).catch(
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(
      /^1 of 5 Slurm tasks did not finish \(task 3 \(run 3\) FAILED, exit 1:0: see .*distill-t-abc-100_3\.log and \/store\/3\/train\.log\)\. Run the same command again: it submits only the missing tasks/,
    );
    const sbatch = first.calls.filter((c) => c[0] === 'sbatch');
    expect(sbatch).toHaveLength(1);
    expect(readFileSync(sbatch[0][2], 'utf8')).toContain('#SBATCH --array=0,2-4\n');
    expect([...done].sort()).toEqual([0, 1, 2, 4]);
    const second = fakeSlurm(done);
    const o = await runOnSlurm(array(5, done), { dir, exec: second.exec, pollSeconds: 0 }, quiet);
    expect(o.indices).toEqual([3]);
    expect(readFileSync(o.script!, 'utf8')).toContain('#SBATCH --array=3\n');
    expect(o.finished).toBe(5);
    // nothing missing: nothing submitted
    const third = fakeSlurm(done);
    expect((await runOnSlurm(array(5, done), { dir, exec: third.exec, pollSeconds: 0 }, quiet)).submitted).toEqual([]);
    expect(third.calls.some((c) => c[0] === 'sbatch')).toBe(false);
  });

  it('tasks still queued under the same job name are followed, not submitted twice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'distill-slurm-'));
    const done = new Set<number>();
    const s = fakeSlurm(done, {
      queued: [
        { jobId: '7', index: 0 },
        { jobId: '7', index: 1 },
      ],
    });
    const o = await runOnSlurm(array(3, done), { dir, exec: s.exec, pollSeconds: 0 }, quiet);
    expect(o.indices).toEqual([2]);
    expect(o.finished).toBe(3);
  });
});

describe('the Kubernetes executor', () => {
  it('renders a batch/v1 Indexed Job the Kubernetes schema accepts, one completion per planned run', () => {
    const out = mkdtempSync(join(tmpdir(), 'distill-k8s-'));
    const plan = planExperiment('table2', { container: builtins, scale: 'smoke', seeds: 2 });
    const k = experimentK8sJob('table2', {
      container: builtins,
      scale: 'smoke',
      seeds: 2,
      out,
      forward: ['--scale', 'smoke', '--seeds', '2', '--device', 'webgpu'],
      k8s: {
        image: 'ghcr.io/example/distill:1.0',
        volumeClaim: 'distill-store',
        parallel: 4,
        cpusPerTask: 2,
        gpu: true,
      },
    });
    const obj = YAML.parse(k.manifest);
    expect(YAML.parse(readFileSync(k.file, 'utf8'))).toEqual(obj);
    new Job(obj).validate(); // throws on a manifest the schema refuses
    expect(obj.spec.completionMode).toBe('Indexed');
    expect(obj.spec.completions).toBe(plan.tasks.length);
    expect(obj.spec.completions).toBe(16);
    expect(obj.spec.parallelism).toBe(4);
    const c = obj.spec.template.spec.containers[0];
    expect(c.image).toBe('ghcr.io/example/distill:1.0');
    expect(c.command).toEqual(['distill']);
    expect(c.args.slice(0, 2)).toEqual(['experiment', 'table2']);
    expect(c.args.slice(-2)).toEqual(['--task', '$(DISTILL_TASK)']);
    expect(c.args).toContain('/distill/runs');
    expect(c.args[c.args.indexOf('--plan-id') + 1]).toBe(`config:${plan.id}`);
    expect(c.args[c.args.indexOf('--store-id') + 1]).toBe('mount:/distill');
    expect(c.args[c.args.indexOf('--threads') + 1]).toBe('2');
    expect(c.env[0]).toEqual({
      name: 'DISTILL_TASK',
      valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } },
    });
    expect(c.env).toContainEqual({ name: 'DISTILL_CACHE_DIR', value: '/distill/cache' });
    expect(c.resources.limits['nvidia.com/gpu']).toBe(1);
    expect(c.volumeMounts).toEqual([{ name: 'store', mountPath: '/distill' }]);
    expect(obj.spec.template.spec.volumes).toEqual([
      { name: 'store', persistentVolumeClaim: { claimName: 'distill-store' } },
    ]);
    expect(obj.spec.template.spec.restartPolicy).toBe('Never');
    expect(obj.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });

  it("--apply runs kubectl apply -f on the written manifest, and names kubectl's own error", () => {
    const out = mkdtempSync(join(tmpdir(), 'distill-k8s-'));
    const calls: string[][] = [];
    const base = { container: builtins, scale: 'smoke' as const, seeds: 1, out, forward: [] };
    const k = experimentK8sJob('table2', {
      ...base,
      k8s: {
        image: 'img',
        volumeClaim: 'pvc',
        apply: true,
        exec: (cmd, args) => (calls.push([cmd, ...args]), { code: 0, stdout: 'job.batch/x created\n', stderr: '' }),
      },
    });
    expect(calls).toEqual([['kubectl', 'apply', '-f', k.file]]);
    expect(k.applied).toBe('job.batch/x created');
    expect(() =>
      experimentK8sJob('table2', {
        ...base,
        k8s: {
          image: 'img',
          volumeClaim: 'pvc',
          apply: true,
          exec: () => ({ code: 1, stdout: '', stderr: 'error: You must be logged in to the server (Unauthorized)\n' }),
        },
      }),
    ).toThrow(/kubectl apply -f .*\.job\.yaml failed: error: You must be logged in to the server \(Unauthorized\)/);
  });

  it('the schema check is live: a Job with a wrong field is refused', () => {
    const a = experimentTaskArray(planExperiment('table2', { container: builtins, scale: 'smoke', seeds: 1 }), {
      spec: 'table2',
      forward: [],
      store: '/distill/runs',
      storeId: 'mount:/distill',
      planId: 'config:x',
    });
    const job = renderIndexedJob(a, { image: 'img', volumeClaim: 'pvc' }) as { spec: Record<string, unknown> };
    expect(() => new Job(job as never).validate()).not.toThrow();
    expect(() => new Job({ ...job, spec: { ...job.spec, completions: 'eight' } } as never).validate()).toThrow(
      /completions must be integer/,
    );
    expect(() => renderIndexedJob(a, { image: '', volumeClaim: 'pvc' })).toThrow('--executor k8s needs --image');
  });
});
