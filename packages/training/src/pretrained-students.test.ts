import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
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

describe.skipIf(!existsSync(join(EMOJI_TEACHER_DIR, 'student.json')))('students that start pretrained, trained end to end on the onnx engine', () => {
  it('mobilenet-bert tiny with --image-init mobilenetv2 and --text-init glove: a few dsmd-official steps on the emoji fixtures (32 px)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'distill-pretrained-students-'));
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', sink: { write: (l: string) => lines.push(l) } });
    const cfg = resolveConfig({ container: builtins,
      preset: 'smoke',
      overrides: {
        backend: 'onnx',
        losses: 'dsmd-official',
        dataset: { name: 'emoji', trainSubset: 64, evalSubset: 16 },
        student: { pair: 'mobilenet-bert', preset: 'tiny', imageInit: 'mobilenetv2', textInit: 'glove', overrides: { image: { imageSize: 32 } } },
        maxSteps: 3,
      },
    });
    const r = await train(cfg, { container: builtins, runDir: join(dir, 'run'), logger });
    expect(r.engine).toBe('onnx');
    expect(r.steps).toBe(3);
    const steps = readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"components"')).map((l) => JSON.parse(l) as { loss: number });
    expect(steps).toHaveLength(3);
    for (const s of steps) expect(Number.isFinite(s.loss)).toBe(true);
    expect(lines.some((l) => /text init: GloVe vectors for \d+ of \d+ tokens/.test(l)), lines.join('\n')).toBe(true);
    expect(Number.isFinite(r.test.rsum)).toBe(true);
  }, 180_000);
});
