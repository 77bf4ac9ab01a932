import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@distill/core';
import { describe, expect, it } from 'vitest';

const bin = join(repoRoot(), 'apps', 'cli', 'bin', 'distill.js');

/** `distill experiment ...` as a user runs it, in its own process (its training children under it). */
function experiment(args: string[], env: Record<string, string>, killWhen?: () => boolean) {
  return new Promise<{ code: number | null; signal: string | null; out: string; stopMs?: number }>(
    (resolve, reject) => {
      const child = spawn(process.execPath, [bin, 'experiment', ...args], {
        cwd: repoRoot(),
        env: { ...process.env, ...env },
      });
      let out = '';
      let killedAt: number | undefined;
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const timer = killWhen
        ? setInterval(() => {
            if (killWhen()) {
              clearInterval(timer);
              killedAt = Date.now();
              child.kill('SIGTERM');
            }
          }, 50)
        : undefined;
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        if (timer) clearInterval(timer);
        resolve({ code, signal, out, stopMs: killedAt === undefined ? undefined : Date.now() - killedAt });
      });
    },
  );
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('distill experiment', () => {
  it('killed mid-way, the same command finishes it without retraining the finished runs', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'distill-exp-'));
    const store = join(tmp, 'store');
    const spec = join(tmp, 'tiny.yaml');
    // three small runs, one at a time
    writeFileSync(
      spec,
      [
        'name: tiny',
        'title: Tiny',
        'base: { losses: dsmd-official, schedule: { epochs: 4, decayEpoch: 3 }, dataset: { trainSubset: 256, evalSubset: 32 }, checkpointEvery: 2 }',
        'runs:',
        '  - { label: a }',
        '  - { label: b, set: { balancer: static } }',
        '  - { label: c, set: { losses: none } }',
        'findings:',
        '  - { claim: "a beats c", better: a, worse: c }',
      ].join('\n'),
    );
    const args = [
      spec,
      '--scale',
      'smoke',
      '--seeds',
      '1',
      '--workers',
      '1',
      '--store',
      store,
      '--out',
      join(tmp, 'out'),
      '--replicates',
      '100',
    ];
    const env = { DISTILL_CACHE_DIR: process.env.DISTILL_CACHE_DIR ?? join(repoRoot(), '.cache', 'distill') };
    const finished = () =>
      existsSync(store) ? readdirSync(store).filter((d) => existsSync(join(store, d, 'result.json'))) : [];
    // kill once the first run has finished and the second has written a checkpoint
    const workerPids: number[] = [];
    const first = await experiment(args, env, () => {
      for (const d of existsSync(store) ? readdirSync(store) : []) {
        // the file goes away when its run finishes, also between a check and the read: read, and skip when gone
        try {
          workerPids.push(Number(readFileSync(join(store, d, 'worker.pid'), 'utf8')));
        } catch {
          /* no worker (yet, or any more) */
        }
      }
      return (
        finished().length === 1 &&
        readdirSync(store).some(
          (d) => existsSync(join(store, d, 'checkpoint.safetensors')) && !existsSync(join(store, d, 'result.json')),
        )
      );
    });
    expect(first.code === 0 && first.signal === null, `the experiment was not killed:\n${first.out}`).toBe(false);
    expect(first.stopMs, 'SIGTERM ends the experiment within the bound (5 s plus a batch)').toBeLessThan(10_000);
    const done = finished();
    expect(done).toHaveLength(1);
    const stamp = statSync(join(store, done[0], 'result.json')).mtimeMs;
    // the training child died with the experiment
    for (let t = 0; t < 100 && [...workerPids].some(alive); t++) await new Promise((r) => setTimeout(r, 100));
    for (const pid of new Set(workerPids))
      expect(alive(pid), `training process ${pid} outlived the experiment`).toBe(false);

    const second = await experiment(args, env);
    expect(second.code, second.out).toBe(0);
    expect(second.out).toMatch(/a seed 0: reused/);
    expect(second.out).toMatch(/b seed 0: resumed/);
    expect(second.out).toMatch(/c seed 0: trained/);
    // how many runs it reused and why
    expect(second.out).toMatch(
      /\nruns: 3 distinct runs: 1 reused \(same config, seed, code, teacher and dataset\), 1 trained \(1 new\), 1 resumed\n/,
    );
    expect(statSync(join(store, done[0], 'result.json')).mtimeMs).toBe(stamp);
    expect(finished()).toHaveLength(3);
    const results = JSON.parse(readFileSync(join(tmp, 'out', 'results.json'), 'utf8'));
    expect(results.rows.map((r: { label: string; n: number }) => [r.label, r.n])).toEqual([
      ['a', 1],
      ['b', 1],
      ['c', 1],
    ]);
    expect(results.findings[0].verdict).toMatch(/^(holds|does not hold|inconclusive|no effect above [0-9.]+)$/);
    // the table is the last thing printed
    expect(second.out.trim().split('\n').at(-1)).toMatch(/^\| a beats c \|/);
  }, 600_000);

  it('table6 at smoke scale: a row with and a row without the L2 normalisation, trained as two runs', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'distill-exp6-'));
    const r = await experiment(
      ['table6', '--scale', 'smoke', '--seeds', '1', '--store', join(tmp, 'store'), '--out', join(tmp, 'out')],
      {},
    );
    expect(r.code, r.out).toBe(0);
    const results = JSON.parse(readFileSync(join(tmp, 'out', 'results.json'), 'utf8')) as {
      rows: { label: string; n: number; paper: { rsum: number }; runs: { dir: string }[] }[];
      findings: { verdict: string }[];
    };
    expect(results.rows.map((x) => [x.label, x.n, x.paper.rsum])).toEqual([
      ['with L2 normalisation', 1, 528.8],
      ['without L2 normalisation', 1, 318.9],
    ]);
    const normalize = results.rows.map(
      (x) =>
        (
          JSON.parse(readFileSync(join(x.runs[0].dir, 'config.json'), 'utf8')) as {
            config: { student: { normalize: boolean } };
          }
        ).config.student.normalize,
    );
    expect(normalize).toEqual([true, false]);
    expect(results.findings[0].verdict).toMatch(/^(holds|does not hold|inconclusive|no effect above [0-9.]+)$/);
  }, 300_000);

  it('names the experiments it knows when given another', async () => {
    const r = await experiment(['table99', '--scale', 'smoke'], {});
    expect(r.code).toBe(2);
    expect(r.out).toMatch(
      /Unknown experiment 'table99'. Available: all, arch, figure2, finding2, glyphs, table2, table4/,
    );
  });
});
