import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, DistillError } from '@distill/core';
import { resolveConfig } from './config.js';
import { baselineWorkerCommand, trainInChild } from './experiment.js';
import { EMOJI_TEACHER_DIR } from './teacher-features.js';
import { createTrainingContainer as builtinsContainer } from './registries.js';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

const quiet = createLogger({ sink: { write: () => {} } });
const root = mkdtempSync(join(tmpdir(), 'distill-baseline-worker-'));
const here = dirname(new URL(import.meta.url).pathname);

// The experiment's no-teacher baseline runs in a child process started from this package's own file
// (not the CLI by a repository path), and the embedded teacher is found relative to the package that ships
// it (@distill/teacher-adapters): both must hold wherever @distill/training is installed.
describe('files this package finds at run time', () => {
  it('the embedded emoji teacher sits in @distill/teacher-adapters (assets/, shipped through "files"), not in this package', () => {
    const adapters = join(here, '..', '..', 'teacher-adapters');
    expect(EMOJI_TEACHER_DIR).toBe(join(adapters, 'assets', 'teachers', 'emoji-teacher-v1'));
    for (const f of ['student.json', 'model.safetensors', 'tokenizer.json'])
      expect(existsSync(join(EMOJI_TEACHER_DIR, f))).toBe(true);
    const pkg = JSON.parse(readFileSync(join(adapters, 'package.json'), 'utf8')) as { files: string[] };
    expect(pkg.files).toEqual(expect.arrayContaining(['dist', 'assets']));
    expect(existsSync(join(here, '..', 'assets'))).toBe(false);
  });

  it('the baseline worker is a file beside experiment.ts (tsx from sources, plain node from dist)', () => {
    const w = baselineWorkerCommand();
    expect(w.file).toBe(join(here, 'baseline-worker.ts'));
    expect(w.execArgv).toContain('--conditions=@distill/source');
    expect(existsSync(w.file)).toBe(true);
  });
});

describe('trainInChild (the baseline worker process)', () => {
  it('trains a student in the child and resolves to its result.json', { timeout: 180_000 }, async () => {
    const cfg = resolveConfig({
      container: builtins,
      preset: 'smoke',
      overrides: {
        losses: 'none',
        maxSteps: 2,
        batchSize: 16,
        dataset: { trainSubset: 64, evalSubset: 32 },
        schedule: { epochs: 1 },
        checkpointEvery: 100,
      },
    });
    const dir = join(root, 'ok');
    const r = await trainInChild(cfg, dir, 'no-teacher', false, quiet);
    expect(r.steps).toBe(2);
    expect(r.test.rsum).toBeGreaterThan(0);
    expect(r.label).toBe('no-teacher');
    expect(r.runDir).toBe(dir);
    expect(
      readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"components"')),
    ).toHaveLength(2);
  });

  it('a config the child rejects fails with one line naming the log, and the log says why', async () => {
    const cfg = resolveConfig({ container: builtins, preset: 'smoke' });
    const dir = join(root, 'bad');
    const bad = { ...cfg, schedule: { ...cfg.schedule, epochs: -3 } };
    const err = await trainInChild(bad, dir, 'no-teacher', false, quiet).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DistillError);
    expect((err as Error).message).toMatch(/^The no-teacher run failed \(exit code 2\); see .*train\.log/);
    const log = readFileSync(join(dir, 'train.log'), 'utf8');
    expect(log).toMatch(/^distill: .*epochs/m); // a config error: exit code 2, as from the CLI
    expect(log).not.toMatch(/\n\s+at /); // one line, no stack trace
  });
});
