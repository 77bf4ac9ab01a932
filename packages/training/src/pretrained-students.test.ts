import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@distill/core';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from './config.js';
import { EMOJI_TEACHER_DIR } from './teacher-features.js';
import { train } from './trainer.js';
import { createTrainingContainer as builtinsContainer } from './registries.js';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

describe.skipIf(!existsSync(join(EMOJI_TEACHER_DIR, 'student.json')))(
  'students that start pretrained, trained end to end on the onnx engine',
  () => {
    it('mobilenet-bert tiny with --image-init mobilenetv2 and --text-init glove: a few dsmd-official steps on the emoji fixtures (32 px)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'distill-pretrained-students-'));
      const lines: string[] = [];
      const logger = createLogger({ level: 'info', sink: { write: (l: string) => lines.push(l) } });
      const cfg = resolveConfig({
        container: builtins,
        preset: 'smoke',
        overrides: {
          backend: 'onnx',
          losses: 'dsmd-official',
          dataset: { name: 'emoji', trainSubset: 64, evalSubset: 16 },
          student: {
            pair: 'mobilenet-bert',
            preset: 'tiny',
            imageInit: 'mobilenetv2',
            textInit: 'glove',
            overrides: { image: { imageSize: 32 } },
          },
          maxSteps: 3,
        },
      });
      const r = await train(cfg, { container: builtins, runDir: join(dir, 'run'), logger });
      expect(r.engine).toBe('onnx');
      expect(r.steps).toBe(3);
      const steps = readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"components"'))
        .map((l) => JSON.parse(l) as { loss: number });
      expect(steps).toHaveLength(3);
      for (const s of steps) expect(Number.isFinite(s.loss)).toBe(true);
      expect(
        lines.some((l) => /text init: GloVe vectors for \d+ of \d+ tokens/.test(l)),
        lines.join('\n'),
      ).toBe(true);
      expect(Number.isFinite(r.test.rsum)).toBe(true);
    }, 180_000);

    it('mobilenet-glove: the frozen trunk runs once per training image into a cache keyed by content; a second run reads it, a damaged file is computed again', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'distill-frozen-trunk-'));
      const prev = process.env.DISTILL_CACHE_DIR;
      process.env.DISTILL_CACHE_DIR = join(dir, 'cache');
      try {
        const cfg = resolveConfig({
          container: builtins,
          preset: 'smoke',
          overrides: {
            backend: 'onnx',
            losses: 'kd',
            dataset: { name: 'emoji', trainSubset: 48, evalSubset: 16 },
            student: { pair: 'mobilenet-glove', preset: 'tiny', overrides: { image: { imageSize: 32 } } },
            maxSteps: 2,
          },
        });
        const run = async (name: string) => {
          const lines: string[] = [];
          const logger = createLogger({ level: 'info', sink: { write: (l: string) => lines.push(l) } });
          const r = await train(cfg, { container: builtins, runDir: join(dir, name), logger });
          return { r, log: lines.join('\n') };
        };
        const first = await run('a');
        expect(first.r.steps).toBe(2);
        expect(first.log).toMatch(/frozen image trunk: 48 train images -> 96-d features/);
        const files = readdirSync(join(dir, 'cache', 'trunk-features'));
        expect(files).toHaveLength(1);
        const second = await run('b');
        expect(second.log).toMatch(/frozen image trunk: 48 train images' 96-d features from /);
        // the same cached features give the same run
        expect(second.r.test.rsum).toBe(first.r.test.rsum);
        const file = join(dir, 'cache', 'trunk-features', files[0]);
        const bytes = readFileSync(file);
        bytes[bytes.length - 5] ^= 0xff;
        writeFileSync(file, bytes);
        const third = await run('c');
        expect(third.log).toMatch(/frozen image trunk: .*checksum.*computing again/s);
        expect(third.r.test.rsum).toBe(first.r.test.rsum);
      } finally {
        if (prev === undefined) delete process.env.DISTILL_CACHE_DIR;
        else process.env.DISTILL_CACHE_DIR = prev;
      }
    }, 300_000);
  },
);
