import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '@distill/core';
import { CHECKPOINT_FILES, readCheckpoint } from './checkpoint.js';
import { resolveConfig } from './config.js';
import { lrScaleAt } from './schedule.js';
import { EMOJI_TEACHER_DIR } from './teacher-features.js';
import { createTrainingContainer as builtinsContainer } from './registries.js';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

// End to end through the CLI, as a user runs it: `distill train --preset smoke` (256 training images,
// batch 32, 8 steps an epoch, lr decay after epoch 1), cut to 10 steps; killed with SIGKILL, its
// checkpoints truncated or bit-flipped, two runs started on one folder, caches corrupted.
const root = repoRoot();
const bin = join(root, 'apps', 'cli', 'bin', 'distill.js');
const args = (dir: string, o: { checkpointEvery?: number; maxSteps?: number; more?: string[] } = {}) => [
  ...['train', '--preset', 'smoke', '--student', 'vit-bert', '--run-dir', dir],
  ...['--checkpoint-every', String(o.checkpointEvery ?? 3), '--max-steps', String(o.maxSteps ?? 10), ...(o.more ?? [])],
];
const cli = (argv: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [bin, ...argv], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env } });
const start = (argv: string[], env: Record<string, string> = {}) =>
  spawn(process.execPath, [bin, ...argv], { cwd: root, stdio: 'ignore', env: { ...process.env, ...env } });
const exited = (c: ChildProcess) =>
  new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what: string, ms = 180_000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
const result = (dir: string) =>
  JSON.parse(readFileSync(join(dir, 'student', 'result.json'), 'utf8')) as {
    test: Record<string, number>;
    val: unknown[];
    steps: number;
  };
const metricLines = (dir: string) => {
  const f = join(dir, 'student', 'metrics.jsonl');
  return existsSync(f)
    ? readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"components"'))
        .map((l) => JSON.parse(l) as { step: number; epoch: number; lr: number })
    : [];
};
const stepLines = (dir: string) => metricLines(dir).length;
const ckptFile = (dir: string, which: keyof typeof CHECKPOINT_FILES) => join(dir, 'student', CHECKPOINT_FILES[which]);
const tmp = (p: string) => mkdtempSync(join(tmpdir(), `distill-${p}-`));

/** Start a run, SIGKILL it once it has done >= 7 steps and holds two checkpoints. */
async function killedRun(dir: string) {
  const child = start(args(dir));
  await until(
    () => stepLines(dir) >= 7 && existsSync(ckptFile(dir, 'latest')) && existsSync(ckptFile(dir, 'previous')),
    '7 steps and two checkpoints',
  );
  child.kill('SIGKILL');
  await exited(child);
  expect(existsSync(join(dir, 'student', 'result.json'))).toBe(false);
}

// Each test starts the CLI 1-3 times (a few seconds each on an idle machine); the limit is for busy ones.
const haveTeacher = existsSync(join(EMOJI_TEACHER_DIR, 'student.json'));

describe.skipIf(!haveTeacher)('a killed run resumes to the same result', { timeout: 300_000 }, () => {
  let a = '';
  beforeAll(() => {
    a = join(tmp('resume'), 'a');
    const full = cli(args(a));
    expect(full.status, full.stderr).toBe(0);
    expect(full.stdout).toMatch(/test RSUM \d+\.\d\d\n$/);
  }, 300_000);

  it('kill after 7 steps, --resume, identical final metrics', async () => {
    const b = join(tmp('resume'), 'b');
    await killedRun(b);
    const resumed = cli(['train', '--resume', b]);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resumed from step [3-9]/);
    expect(result(b).steps).toBe(result(a).steps);
    expect(result(b).val).toEqual(result(a).val);
    expect(result(b).test).toEqual(result(a).test);
    expect(stepLines(b)).toBe(stepLines(a));
  });

  it('the learning rate of every step follows the schedule (decay after epoch 1)', () => {
    const cfg = resolveConfig({ container: builtins, preset: 'smoke' });
    const lines = metricLines(a);
    expect(lines.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const l of lines)
      expect(l.lr, `step ${l.step}`).toBeCloseTo(cfg.optimizer.lr * lrScaleAt(cfg, l.epoch, l.step - 1), 12);
    expect(
      lines
        .filter((l) => l.epoch === 1)
        .every((l) => Math.abs(l.lr - cfg.optimizer.lr * cfg.schedule.decayFactor) < 1e-12),
    ).toBe(true);
  });

  for (const fault of ['bit-flipped', 'truncated'] as const) {
    it(`a ${fault} latest checkpoint: --resume reports it and continues from the previous one, to the same result`, async () => {
      const b = join(tmp('corrupt'), 'b');
      await killedRun(b);
      const latest = ckptFile(b, 'latest');
      const prevStep = readCheckpoint<{ step: number }>(ckptFile(b, 'previous')).state.step;
      const bytes = readFileSync(latest);
      if (fault === 'truncated') truncateSync(latest, Math.floor(bytes.length / 2));
      else {
        bytes[bytes.length - 1000] ^= 0x04; // one bit of one weight or moment
        writeFileSync(latest, bytes);
      }
      const resumed = cli(['train', '--resume', b]);
      expect(resumed.status, resumed.stderr).toBe(0);
      expect(resumed.stderr).toContain(`${latest} is ${fault === 'truncated' ? 'truncated' : 'corrupt'}`);
      expect(resumed.stderr).toContain(`continuing from the previous checkpoint ${ckptFile(b, 'previous')}`);
      expect(resumed.stderr).toContain(`resumed from step ${prevStep} `);
      expect(existsSync(ckptFile(b, 'corrupt'))).toBe(true);
      expect(result(b).val).toEqual(result(a).val);
      expect(result(b).test).toEqual(result(a).test);
      expect(stepLines(b)).toBe(stepLines(a));
    });
  }

  it('a NaN loss stops the run naming the loss, the step and a checkpoint that exists and verifies', () => {
    const dir = join(tmp('nan'), 'run');
    const r = cli(args(dir, { checkpointEvery: 1, more: ['--lr', '1e30'] }));
    expect(r.status).toBe(1);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const m =
      /Loss '\w+' is (NaN|Infinity|-Infinity) at step (\d+) \(epoch 1\)\. The run stopped; its last good checkpoint \(checksum verified, finite values\) is (\S+) \(step (\d+)\)\./.exec(
        r.stderr,
      );
    expect(m, r.stderr).not.toBeNull();
    const [, , failedStep, path, goodStep] = m!;
    expect(path).toBe(ckptFile(dir, 'latest'));
    const ck = readCheckpoint<{ step: number }>(path);
    expect(ck.state.step).toBe(Number(goodStep));
    expect(Number(goodStep)).toBe(Number(failedStep) - 1);
    expect(Object.values(ck.tensors).every((t) => t.data.every(Number.isFinite))).toBe(true);
    expect(r.stderr).toMatch(/Things to try: a lower learning rate \(--lr\)/);
    expect(existsSync(join(dir, 'run.lock'))).toBe(false); // released after the error
  });

  it('a NaN loss before the first checkpoint says so instead of naming a file', () => {
    const dir = join(tmp('nan'), 'run');
    const r = cli(args(dir, { checkpointEvery: 50, more: ['--lr', '1e30'] }));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `Loss '\\w+' is \\S+ at step \\d+ \\(epoch 1\\)\\. The run stopped before its first good checkpoint \\(none in ${join(dir, 'student').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`,
      ),
    );
    expect(readdirSync(join(dir, 'student')).filter((f) => f.startsWith('checkpoint'))).toEqual([]);
  });
});

describe.skipIf(!haveTeacher)('run folders are records', { timeout: 300_000 }, () => {
  it('a second run on a folder in use is refused in one line; the first is unaffected', async () => {
    const dir = join(tmp('lock'), 'run');
    const first = start(args(dir));
    await until(() => existsSync(join(dir, 'run.lock')), 'the first run to lock its folder');
    const second = cli(args(dir));
    expect(second.status).toBe(1);
    expect(second.stderr.trim().split('\n').at(-1)).toBe(
      `distill: Run folder ${dir} is in use by another distill run (pid ${first.pid}, since ${(JSON.parse(readFileSync(join(dir, 'run.lock'), 'utf8')) as { started: string }).started}). Wait for it to finish or use another --run-dir.`,
    );
    expect(second.stderr).not.toMatch(/\n\s+at /);
    expect(await exited(first)).toBe(0);
    expect(metricLines(dir).map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(result(dir).steps).toBe(10);
    expect(existsSync(join(dir, 'run.lock'))).toBe(false);
  });

  let finished = '';
  it('a lock left by a dead process is taken over with a warning', () => {
    finished = join(tmp('stale'), 'run');
    mkdirSync(finished, { recursive: true });
    const pid = Number(
      spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout,
    );
    writeFileSync(
      join(finished, 'run.lock'),
      JSON.stringify({ pid, host: hostname(), started: '2026-01-01T00:00:00.000Z', token: 'dead' }),
    );
    const r = cli(args(finished, { maxSteps: 2 }));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      `took over the stale lock ${join(finished, 'run.lock')}: pid ${pid} (started 2026-01-01T00:00:00.000Z) is no longer running`,
    );
    expect(result(finished).steps).toBe(2);
    expect(existsSync(join(finished, 'run.lock'))).toBe(false);
  });

  it('a finished folder is not reused for another config; --resume refuses changed flags but takes --threads', () => {
    const before = statSync(join(finished, 'student', 'result.json')).mtimeMs;
    const other = cli(args(finished, { maxSteps: 2, more: ['--lr', '5e-4'] }));
    expect(other.status).toBe(2);
    expect(other.stderr).toContain(
      `distill: ${finished} holds a run with another config (yours differs in optimizer.lr 0.001 -> 0.0005). Use a new --run-dir, or --resume ${finished} to continue that run with its recorded config.`,
    );
    const changed = cli(['train', '--resume', finished, '--batch-size', '16']);
    expect(changed.status).toBe(2);
    expect(changed.stderr).toMatch(
      /Cannot resume .*: the config differs in batchSize 32 -> 16 from the recorded one\. .*only threads, latency may change/,
    );
    expect(statSync(join(finished, 'student', 'result.json')).mtimeMs).toBe(before);
    const safe = cli(['train', '--resume', finished, '--threads', '1']);
    expect(safe.status, safe.stderr).toBe(0);
    expect(safe.stderr).toContain('already finished');
  });

  it('--resume of a folder that is not a distill run is refused', () => {
    const dir = tmp('notarun');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ name: 'my-web-app', port: 8080 }));
    const r = cli(['train', '--resume', dir]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      `distill: ${dir} is not a distill run folder: ${join(dir, 'config.json')} has no distill run config`,
    );
    expect(readdirSync(dir)).toEqual(['config.json']);
  });
});

describe.skipIf(!haveTeacher)('teacher feature cache', { timeout: 300_000 }, () => {
  const cacheDir = tmp('cache');
  const env = { DISTILL_CACHE_DIR: cacheDir };
  const featureDir = join(cacheDir, 'teacher-features');
  const cacheFiles = () =>
    existsSync(featureDir) ? readdirSync(featureDir).filter((f) => f.endsWith('.safetensors')) : [];
  let reference: Record<string, Float32Array> = {};

  it('a truncated extraction chunk left by a killed run is reported and recomputed, not used', async () => {
    const killed = start(args(join(tmp('cache-run'), 'run'), { maxSteps: 1 }), env);
    const chunks = () =>
      existsSync(featureDir)
        ? readdirSync(featureDir)
            .filter((d) => d.endsWith('.parts'))
            .flatMap((d) =>
              readdirSync(join(featureDir, d))
                .filter((f) => f.endsWith('.safetensors'))
                .map((f) => join(featureDir, d, f)),
            )
        : [];
    await until(() => chunks().length > 0, 'a first extraction chunk');
    killed.kill('SIGKILL');
    await exited(killed);
    expect(cacheFiles()).toEqual([]);
    const chunk = chunks()[0];
    truncateSync(chunk, Math.floor(statSync(chunk).size * 0.6));
    const r = cli(args(join(tmp('cache-run'), 'run'), { maxSteps: 1 }), env);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(`teacher feature chunk ${chunk} is unusable (${chunk} is truncated`);
    expect(r.stderr).toContain('recomputing it');
    const [file] = cacheFiles();
    const ck = readCheckpoint(join(featureDir, file)); // verifies
    reference = Object.fromEntries(Object.entries(ck.tensors).map(([k, t]) => [k, t.data]));
    expect(Object.keys(reference).sort()).toEqual([
      'test/images',
      'test/texts',
      'train/images',
      'train/texts',
      'val/images',
      'val/texts',
    ]);
  }, 300_000);

  it('a bit-flipped cache file is reported and rebuilt to the same features', () => {
    const [file] = cacheFiles();
    const path = join(featureDir, file);
    const bytes = readFileSync(path);
    bytes[bytes.length - 4000] ^= 0x01;
    writeFileSync(path, bytes);
    const r = cli(args(join(tmp('cache-run'), 'run'), { maxSteps: 1 }), env);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      `teacher feature cache ${path} is unusable (${path} is corrupt: its data does not match its checksum): rebuilding it`,
    );
    const rebuilt = readCheckpoint(path);
    for (const [k, data] of Object.entries(reference))
      expect(Buffer.from(rebuilt.tensors[k].data.buffer).equals(Buffer.from(data.buffer)), k).toBe(true);
  }, 300_000);
});
