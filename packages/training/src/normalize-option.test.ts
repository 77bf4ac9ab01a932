import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, DistillError } from '@distill/core';
import { describe, expect, it } from 'vitest';
import { readConfigFile, resolveConfig, validateConfig, type TrainConfig } from './config.js';
import { configDifferences, configHash, resumeConfig } from './run-guard.js';
import { EMOJI_TEACHER_DIR } from './teacher-features.js';
import { train } from './trainer.js';
import { createTrainingContainer as builtinsContainer } from './registries.js';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

const smoke = (normalize?: boolean) =>
  resolveConfig({
    container: builtins,
    preset: 'smoke',
    overrides: normalize === undefined ? {} : { student: { normalize } },
  });
const tmp = () => mkdtempSync(join(tmpdir(), 'distill-normalize-'));
function recordedRun(cfg: TrainConfig, hash = configHash(cfg)): string {
  const dir = tmp();
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ config: cfg, configHash: hash, created: 'x' }));
  return dir;
}

describe('student.normalize (Table 6: L2 normalisation of the distilled features)', () => {
  it('defaults to true; false from flags or a YAML file survives config.json and validation', () => {
    expect(smoke().student.normalize).toBe(true);
    const off = smoke(false);
    expect(off.student.normalize).toBe(false);
    expect(validateConfig(JSON.parse(JSON.stringify(off)) as TrainConfig, builtins).student.normalize).toBe(false);
    const file = join(tmp(), 'exp.yaml');
    writeFileSync(file, 'student:\n  normalize: false\n');
    expect(resolveConfig({ container: builtins, preset: 'smoke', file: readConfigFile(file) }).student.normalize).toBe(
      false,
    );
    const bad = () =>
      resolveConfig({ container: builtins, preset: 'smoke', overrides: { student: { normalize: 'no' as never } } });
    expect(bad).toThrow(DistillError);
    expect(bad).toThrow(/student\.normalize: expected true or false, got/);
  });

  it('is part of the run hash when false; true hashes as a config recorded before the key existed', () => {
    const on = smoke();
    const legacy = JSON.parse(JSON.stringify(on)) as TrainConfig;
    delete (legacy.student as Partial<TrainConfig['student']>).normalize;
    expect(configHash(on)).toBe(configHash(legacy));
    expect(configHash(smoke(false))).not.toBe(configHash(on));
    expect(configDifferences(on, smoke(false))).toEqual(['student.normalize true -> false']);
    expect(configDifferences(legacy, smoke(false))).toEqual(['student.normalize true -> false']);
  });

  it('--resume keeps the recorded value and refuses a changed one', () => {
    const dir = recordedRun(smoke(false));
    expect(resumeConfig(dir, { container: builtins }).student.normalize).toBe(false);
    expect(() => resumeConfig(dir, { container: builtins, overrides: { student: { normalize: true } } })).toThrow(
      /^Cannot resume .*: the config differs in student\.normalize false -> true/,
    );
    // a run recorded before the key existed resumes with the default (true), and refuses false
    const legacy = JSON.parse(JSON.stringify(smoke())) as TrainConfig;
    delete (legacy.student as Partial<TrainConfig['student']>).normalize;
    const old = recordedRun(legacy, configHash(smoke()));
    expect(resumeConfig(old, { container: builtins }).student.normalize).toBe(true);
    expect(() => resumeConfig(old, { container: builtins, overrides: { student: { normalize: false } } })).toThrow(
      /student\.normalize true -> false/,
    );
  });
});

const quiet = createLogger({ level: 'warn' });
const steps = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"components"'))
    .map((l) => JSON.parse(l) as { loss: number; components: Record<string, number> });

describe.skipIf(!existsSync(join(EMOJI_TEACHER_DIR, 'student.json')))('student.normalize false in training', () => {
  it('dsmd-official on the onnx engine and on tfjs-wasm: the same unnormalised losses step by step, other than the normalised ones', async () => {
    const dir = tmp();
    const base = { losses: 'dsmd-official', dataset: { name: 'emoji', trainSubset: 64, evalSubset: 16 }, maxSteps: 3 };
    const run = (name: string, backend: 'onnx' | 'wasm', normalize: boolean) =>
      train(
        resolveConfig({
          container: builtins,
          preset: 'smoke',
          overrides: { ...base, backend, student: { normalize } },
        }),
        { container: builtins, runDir: join(dir, name), logger: quiet },
      );
    expect((await run('onnx', 'onnx', false)).engine).toBe('onnx');
    expect((await run('wasm', 'wasm', false)).engine).toBe('tfjs-wasm');
    await run('normalised', 'onnx', true);
    const [a, b, n] = ['onnx', 'wasm', 'normalised'].map((x) => steps(join(dir, x)));
    expect(a).toHaveLength(3);
    a.forEach((s, i) => {
      for (const [k, v] of Object.entries(b[i].components))
        expect(Math.abs(s.components[k] - v) / Math.abs(v), `${k} at step ${i + 1}`).toBeLessThan(1e-4);
    });
    // the first step (same weights, same batch): the feature distillation (L1 to the teacher's features) and the total differ
    expect(Math.abs(a[0].loss - n[0].loss) / n[0].loss).toBeGreaterThan(0.01);
  }, 120_000);
});
