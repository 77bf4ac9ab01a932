import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@distill/core';
import { DSMD_COMPONENTS, METHOD_DESCRIPTIONS, METHOD_NAMES, resolveLossMethod } from '@distill/losses';
import { resolveConfig } from './config.js';
import { train } from './trainer.js';
import { createTrainingContainer as builtinsContainer } from './registries.js';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

/**
 * Every name `--losses` accepts, taken from the registry (a new method is covered without editing this
 * file): the named methods, the documented list form, and a two-component DSMD ablation list.
 */
const names = [
  ...new Set([
    ...METHOD_NAMES,
    ...Object.keys(METHOD_DESCRIPTIONS),
    `${DSMD_COMPONENTS.at(-2)},${DSMD_COMPONENTS.at(-1)}`,
  ]),
];

const quiet = createLogger({ sink: { write: () => {} } });
const root = mkdtempSync(join(tmpdir(), 'distill-methods-'));

// A new user's first try: the smoke preset on the default engine (--backend auto: onnx here), a couple of steps each.
// The embedded emoji teacher is committed (assets/teachers), so nothing here skips on a clone.
describe('every --losses method trains on the default engine', () => {
  it('covers the named methods and a component list', () => {
    expect(names).toEqual(
      expect.arrayContaining([
        'dsmd',
        'dsmd-official',
        'dcd',
        'kd',
        'fitnet',
        'rkd',
        'clip-kd',
        'none',
        'cd,fd,sd,hnd',
        'cd,hnd',
      ]),
    );
  });

  for (const losses of names) {
    it(`${losses}: 2 steps with finite losses, then a test RSUM`, { timeout: 120_000 }, async () => {
      const cfg = resolveConfig({
        container: builtins,
        preset: 'smoke',
        overrides: {
          losses,
          backend: 'auto',
          maxSteps: 2,
          batchSize: 16,
          dataset: { trainSubset: 64, evalSubset: 32 },
          schedule: { epochs: 1 },
          checkpointEvery: 100,
        },
      });
      const runDir = join(root, losses.replace(/,/g, '+'));
      const r = await train(cfg, { container: builtins, runDir, logger: quiet });
      const steps = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"components"'))
        .map((l) => JSON.parse(l) as { loss: number; components: Record<string, number> });
      expect(r.steps).toBe(2);
      // Every method has a graph form: on the onnx engine the losses train inside the graph (never 'onnx+tfjs-...-losses').
      expect(r.engine).not.toMatch(/-losses$/);
      expect(steps).toHaveLength(2);
      const components = resolveLossMethod(losses, { temperature: cfg.lossOptions.temperature }).components;
      for (const s of steps) {
        expect(Object.keys(s.components)).toEqual(components);
        expect(Number.isFinite(s.loss)).toBe(true);
        for (const v of Object.values(s.components)) expect(Number.isFinite(v)).toBe(true);
      }
      expect(r.test.rsum).toBeGreaterThan(0);
      expect(r.test.rsum).toBeLessThanOrEqual(600);
    });
  }
});
