import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { atomicWriteJson, createLogger } from '@distill/core';
import type { TrainResult } from '@distill/training';
import { describe, expect, it } from 'vitest';
import { runExperiments } from './experiment.js';
import {
  checkSharedStore,
  markSharedStore,
  planExperiment,
  planIdWith,
  planJson,
  runTask,
  STORE_MARK,
} from './plan.js';
import { runDirOf, type Trainer } from './scheduler.js';
import { createTrainingContainer as builtinsContainer } from '@distill/training';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

const quiet = createLogger({ level: 'error' } as never);
const noRanks = async () => ({ i2t: new Int32Array(0), t2i: new Int32Array(0) }) as never;
/** A fixed fingerprint (code, teacher, dataset): the run store keys folders by config hash and fingerprint. */
const fp = () => ({ code: 'c', teacher: 't', dataset: 'd' });
const fps = (plan: { tasks: { hash: string }[] }) => new Map(plan.tasks.map((t) => [t.hash, fp()]));

function fakeTrainer(calls: string[]): Trainer {
  return async (job) => {
    calls.push(`${job.label}/${job.config.seed}`);
    const rsum = 100 + job.config.seed;
    const m = {
      i2t_r1: rsum / 6,
      i2t_r5: rsum / 6,
      i2t_r10: rsum / 6,
      t2i_r1: rsum / 6,
      t2i_r5: rsum / 6,
      t2i_r10: rsum / 6,
      rsum,
    };
    const result = {
      runDir: job.dir,
      label: job.label,
      steps: 4,
      epochs: 1,
      bestEpoch: 1,
      bestValRsum: rsum,
      val: [],
      test: m,
      parameters: { image: 1, text: 1, head: 1, total: 3 },
      seconds: 0,
    } as unknown as TrainResult;
    atomicWriteJson(join(job.dir, 'result.json'), result);
    return result;
  };
}

describe('experiment plan and tasks', () => {
  it('numbers the distinct runs: a run shared by two specs is one task; the numbering does not depend on the store', () => {
    const plan = planExperiment('all', { container: builtins, scale: 'smoke', seeds: 2, workers: 2 });
    expect(plan.tasks.length).toBe(new Set(plan.runs.map((r) => r.hash)).size);
    expect(plan.tasks.length).toBeLessThan(plan.runs.length); // figure2's run is table5's
    const again = planExperiment('all', { container: builtins, scale: 'smoke', seeds: 2, workers: 2, threads: 3 });
    expect(again.tasks.map((t) => t.hash)).toEqual(plan.tasks.map((t) => t.hash)); // threads is not part of a run
    expect(again.id).toBe(plan.id);
    expect(
      planExperiment('table2', {
        container: builtins,
        scale: 'smoke',
        seeds: 1,
        only: ['none', 'dsmd-official'],
      }).tasks.map((t) => t.label),
    ).toEqual(['dsmd-official', 'none']);
    expect(planExperiment('table2', { container: builtins, scale: 'smoke', seeds: 2 }).id).not.toBe(
      planExperiment('table2', { container: builtins, scale: 'smoke', seeds: 1 }).id,
    );
  });

  it('--task i trains exactly the i-th run into the store; the collecting report reuses them all and trains nothing', async () => {
    const store = mkdtempSync(join(tmpdir(), 'distill-task-'));
    const opts = {
      container: builtins,
      scale: 'smoke' as const,
      seeds: 2,
      only: ['none', 'dsmd-official'],
      workers: 1,
      store,
      logger: quiet,
      ranks: noRanks,
      fingerprint: fp,
    };
    const plan = planExperiment('table2', opts);
    expect(plan.tasks).toHaveLength(4);
    const calls: string[] = [];
    const o = await runTask('table2', {
      ...opts,
      task: 2,
      trainer: fakeTrainer(calls),
      planId: planIdWith(plan, fps(plan)),
    });
    expect(calls).toEqual([`${plan.tasks[2].label}/${plan.tasks[2].seed}`]);
    expect(o.dir).toBe(runDirOf(store, plan.tasks[2].hash, fp()));
    expect(planJson(plan, store, fps(plan)).tasks.map((t) => t.state)).toEqual([
      'missing',
      'missing',
      'finished',
      'missing',
    ]);
    // a collecting report names a run no task finished, and trains nothing
    const out = join(store, 'out');
    await expect(runExperiments('table2', { ...opts, out, collect: true, replicates: 10 })).rejects.toThrow(
      /has no result in the store .*its task did not finish/,
    );
    for (const i of [0, 1, 3]) await runTask('table2', { ...opts, task: i, trainer: fakeTrainer(calls) });
    expect(calls).toHaveLength(4);
    // a task run twice is reused
    expect((await runTask('table2', { ...opts, task: 1, trainer: fakeTrainer(calls) })).status).toBe('reused');
    const { results } = await runExperiments('table2', { ...opts, out, collect: true, replicates: 10 });
    expect(results[0].rows.map((r) => r.runs.map((x) => x.status))).toEqual([
      ['reused', 'reused'],
      ['reused', 'reused'],
    ]);
    expect(calls).toHaveLength(4);
  });

  it('refuses a task outside the plan, and a task of a changed plan', async () => {
    const store = mkdtempSync(join(tmpdir(), 'distill-task-'));
    const opts = {
      container: builtins,
      scale: 'smoke' as const,
      seeds: 1,
      only: ['none'],
      store,
      logger: quiet,
      trainer: fakeTrainer([]),
      ranks: noRanks,
      fingerprint: fp,
    };
    await expect(runTask('table2', { ...opts, task: 1 })).rejects.toThrow(
      "--task expects a whole number from 0 to 0 (the plan of 'table2' has 1 task; --plan --json lists them), got 1.",
    );
    await expect(runTask('table2', { ...opts, task: 0, planId: 'f'.repeat(64) })).rejects.toThrow(
      /differs from the submitter's: the spec or its flags changed since the job was submitted, or this node runs other code/,
    );
    // the submitter's plan id with another code fingerprint (a node with another checkout)
    const plan = planExperiment('table2', opts);
    const other = planIdWith(
      plan,
      new Map(plan.tasks.map((t) => [t.hash, { code: 'other', teacher: 't', dataset: 'd' }])),
    );
    await expect(runTask('table2', { ...opts, task: 0, planId: other })).rejects.toThrow(
      /this node runs other code or sees another teacher or dataset/,
    );
    await expect(runTask('table2', { ...opts, task: 0, planId: 'config:abc' })).rejects.toThrow(
      /the spec or its flags changed since the Job was made/,
    );
    expect((await runTask('table2', { ...opts, task: 0, planId: `config:${plan.id}` })).status).toBe('trained');
  });

  it('a task that cannot see the shared store fails and writes nothing; another store at the same path is refused', async () => {
    const root = mkdtempSync(join(tmpdir(), 'distill-shared-'));
    const store = join(root, 'store');
    const id = markSharedStore(store);
    expect(markSharedStore(store)).toBe(id); // the mark is kept
    expect(() => checkSharedStore(store, id)).not.toThrow();
    const opts = {
      container: builtins,
      scale: 'smoke' as const,
      seeds: 1,
      only: ['none'],
      logger: quiet,
      trainer: fakeTrainer([]),
      ranks: noRanks,
      fingerprint: fp,
      task: 0,
    };
    // a node without the shared mount: the path does not exist there
    const elsewhere = join(root, 'not-mounted', 'store');
    await expect(runTask('table2', { ...opts, store: elsewhere, storeId: id })).rejects.toThrow(
      /The run store .*not-mounted\/store is not visible on host .*Put the store on a file system every node mounts at the same path/,
    );
    expect(existsSync(join(root, 'not-mounted'))).toBe(false);
    // a node that has a local folder at that path (no mark, or another store's mark)
    const local = join(root, 'local');
    mkdirSync(local);
    await expect(runTask('table2', { ...opts, store: local, storeId: id })).rejects.toThrow(`lacks ${STORE_MARK}`);
    expect(existsSync(join(local, runDirOf('', planExperiment('table2', opts).tasks[0].hash, fp())))).toBe(false);
    writeFileSync(join(local, STORE_MARK), JSON.stringify({ id: 'other' }));
    await expect(runTask('table2', { ...opts, store: local, storeId: id })).rejects.toThrow(
      /is another store \(id other, the submitter's is/,
    );
    // Kubernetes: the volume must be mounted; the store is made under it
    await expect(
      runTask('table2', { ...opts, store: join(root, 'pvc', 'runs'), storeId: `mount:${join(root, 'pvc')}` }),
    ).rejects.toThrow(/The volume with the run store is not mounted at/);
    mkdirSync(join(root, 'pvc'));
    expect(
      (await runTask('table2', { ...opts, store: join(root, 'pvc', 'runs'), storeId: `mount:${join(root, 'pvc')}` }))
        .status,
    ).toBe('trained');
    expect((await runTask('table2', { ...opts, store, storeId: id })).status).toBe('trained');
  });
});
