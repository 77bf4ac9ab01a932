import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@distill/core';
import { resolveConfig } from './config.js';
import { EMOJI_TEACHER_DIR } from './teacher-features.js';
import { train } from './trainer.js';
import { createTrainingContainer as builtinsContainer } from './registries.js';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

const quiet = createLogger({ level: 'warn' });
const steps = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"components"'))
    .map((l) => JSON.parse(l) as { loss: number; components: Record<string, number> });

// The onnx engine (towers and, where they have a graph form, losses on onnxruntime-node) against the plain tfjs path: the same run, step by step.
describe.skipIf(!existsSync(join(EMOJI_TEACHER_DIR, 'student.json')))('training engines', () => {
  it('onnx and tfjs-wasm give the same losses and the same validation metrics', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'distill-engines-'));
    const base = {
      dataset: { name: 'emoji', trainSubset: 128, evalSubset: 32 },
      maxSteps: 6,
      schedule: { epochs: 2, decayEpoch: 1, decayFactor: 0.1, warmupSteps: 0 },
    };
    const onnx = await train(
      resolveConfig({ container: builtins, preset: 'smoke', overrides: { ...base, backend: 'onnx' } }),
      { container: builtins, runDir: join(tmp, 'onnx'), logger: quiet },
    );
    const wasm = await train(
      resolveConfig({ container: builtins, preset: 'smoke', overrides: { ...base, backend: 'wasm' } }),
      { container: builtins, runDir: join(tmp, 'wasm'), logger: quiet },
    );
    expect(onnx.engine).toBe('onnx');
    expect(wasm.engine).toBe('tfjs-wasm');
    const a = steps(join(tmp, 'onnx'));
    const b = steps(join(tmp, 'wasm'));
    expect(a).toHaveLength(6);
    a.forEach((s, i) => {
      for (const [k, v] of Object.entries(b[i].components))
        expect(Math.abs(s.components[k] - v) / Math.abs(v), `${k} at step ${i + 1}`).toBeLessThan(1e-5);
    });
    // Recall counts ranks: a float-level difference can swap a near-tie (one caption of ~190 moves RSUM by ~0.5).
    onnx.val.forEach((v, i) =>
      expect(Math.abs(v.rsum - wasm.val[i].rsum), `val RSUM, epoch ${i + 1}`).toBeLessThan(1.5),
    );
  }, 120_000);

  it("one step path: 'kd' (a tfjs-only loss before) runs inside the onnx graph, with the same losses as tfjs-wasm", async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'distill-engines-'));
    const base = { losses: 'kd', dataset: { name: 'emoji', trainSubset: 64, evalSubset: 16 }, maxSteps: 3 };
    const onnx = await train(
      resolveConfig({ container: builtins, preset: 'smoke', overrides: { ...base, backend: 'onnx' } }),
      { container: builtins, runDir: join(tmp, 'onnx'), logger: quiet },
    );
    const wasm = await train(
      resolveConfig({ container: builtins, preset: 'smoke', overrides: { ...base, backend: 'wasm' } }),
      { container: builtins, runDir: join(tmp, 'wasm'), logger: quiet },
    );
    expect(onnx.engine).toBe('onnx'); // no 'onnx+tfjs-...-losses' split any more: every method has a graph form
    expect(wasm.engine).toBe('tfjs-wasm');
    const a = steps(join(tmp, 'onnx'));
    const b = steps(join(tmp, 'wasm'));
    expect(a).toHaveLength(3);
    a.forEach((s, i) =>
      expect(Math.abs(s.loss - b[i].loss) / Math.abs(b[i].loss), `kd loss at step ${i + 1}`).toBeLessThan(1e-5),
    );
  }, 60_000);

  it('--backend onnx trains the CNN pair too (resnet-textcnn)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'distill-engines-'));
    const cfg = resolveConfig({
      container: builtins,
      preset: 'smoke',
      overrides: {
        backend: 'onnx',
        maxSteps: 2,
        dataset: { name: 'emoji', trainSubset: 64, evalSubset: 16 },
        student: { pair: 'resnet-textcnn' },
      },
    });
    const r = await train(cfg, { container: builtins, runDir: tmp, logger: quiet });
    expect(r.engine).toBe('onnx');
    expect(steps(tmp).every((s) => Number.isFinite(s.loss))).toBe(true);
  }, 60_000);
});
