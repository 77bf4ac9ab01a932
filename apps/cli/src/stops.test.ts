import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, writeNpy } from '@distill/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// SIGTERM ends a phase within the bound (5 s plus one batch) and leaves resumable state. Here: teacher
// extraction inside `distill train` (under the run lock, whose signal handler runs between batches) and
// an evaluation (`distill eval embeddings` on 4,000 x 20,000 embeddings). The other phases: the glyphs
// build (data-faults.test.ts), training (pretrain.test.ts: `teacher pretrain`; packages/training's
// resume.test.ts: `train`), an experiment (commands/experiment.test.ts).
const root = repoRoot();
const tmp = mkdtempSync(join(tmpdir(), 'distill-stops-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const cache = join(tmp, 'cache');
const bin = join(root, 'apps/cli/bin/distill.js');
const BOUND_MS = 5_000 + 3_000; // 5 s plus one batch (a few seconds on 2 loaded cores)

/** Start the CLI, send SIGTERM once `ready()` holds, and resolve with how long it took to end. */
function stopWhen(args: string[], ready: () => boolean, maxWaitMs = 180_000) {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: tmp,
    env: { ...process.env, DISTILL_CACHE_DIR: cache },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => (err += String(d)));
  return new Promise<{ ms: number; code: number | null; signal: string | null; err: string }>((resolve, reject) => {
    let killedAt = 0;
    const t0 = Date.now();
    const timer = setInterval(() => {
      if (killedAt) return;
      if (ready()) {
        killedAt = Date.now();
        child.kill('SIGTERM');
      } else if (Date.now() - t0 > maxWaitMs) {
        clearInterval(timer);
        child.kill('SIGKILL');
        reject(new Error(`the phase never started:\n${err}`));
      }
    }, 50);
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      if (!killedAt) reject(new Error(`ended before SIGTERM (code ${code}):\n${err}`));
      else resolve({ ms: Date.now() - killedAt, code, signal, err });
    });
  });
}

const data = join(tmp, 'data');
beforeAll(() => {
  const b = spawnSync(process.execPath, [bin, 'data', 'build', 'emoji', '--out', data], { cwd: tmp, encoding: 'utf8' });
  expect(b.status, b.stderr).toBe(0);
}, 120_000);

describe('SIGTERM ends each phase within the bound', () => {
  it('teacher extraction inside distill train: ends, the run lock is released, the finished chunks stay for the resume', async () => {
    const runDir = join(tmp, 'run');
    const parts = () => {
      const d = join(cache, 'teacher-features');
      const p = existsSync(d) ? readdirSync(d).find((f) => f.endsWith('.parts')) : undefined;
      return p ? readdirSync(join(d, p)).filter((f) => f.endsWith('.safetensors')) : [];
    };
    const r = await stopWhen(
      [
        'train',
        '--preset',
        'smoke',
        '--teacher',
        'emoji',
        '--dataset',
        'jsonl',
        '--annotations',
        data,
        '--run-dir',
        runDir,
        '--max-steps',
        '2',
      ],
      () => parts().length >= 1,
    );
    expect(r.ms, r.err).toBeLessThan(BOUND_MS);
    console.info(`teacher extraction in train: ended ${r.ms} ms after SIGTERM`);
    expect(r.code === 0).toBe(false);
    expect(existsSync(join(runDir, 'run.lock'))).toBe(false);
    expect(parts().length).toBeGreaterThanOrEqual(1); // what was done is kept: the next run resumes from it
  }, 240_000);

  it('evaluation (distill eval embeddings): ends', async () => {
    const nI = 4000,
      nT = 20000,
      d = 256;
    const rnd = (n: number) => Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 12.9898) * 0.5);
    writeNpy(join(tmp, 'i.npy'), rnd(nI), [nI, d]);
    writeNpy(join(tmp, 't.npy'), rnd(nT), [nT, d]);
    writeFileSync(join(tmp, 'm.json'), JSON.stringify(Array.from({ length: nT }, (_, k) => k % nI)));
    const t0 = Date.now();
    // SIGTERM 6 s in: past start-up (tsx, reading the files), in the ranking (it runs far longer than that)
    const r = await stopWhen(
      [
        'eval',
        'embeddings',
        '--images',
        join(tmp, 'i.npy'),
        '--texts',
        join(tmp, 't.npy'),
        '--text-image',
        join(tmp, 'm.json'),
        '--engine',
        'js',
      ],
      () => Date.now() - t0 > 6_000,
    );
    expect(r.ms, r.err).toBeLessThan(BOUND_MS);
    console.info(`eval embeddings: ended ${r.ms} ms after SIGTERM`);
  }, 120_000);
});
