import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { initRuntime, readJsonFile } from '@distill/core';
import { compareToFixture, runLossParityFile } from './parity.js';

/** In-repo copy of shared/parity/dsmd_public.json (the test runs on any clone). */
const file = fileURLToPath(new URL('./fixtures/parity/dsmd_public.json', import.meta.url));

describe('parity with the official DSMD / DCD fixture (fixtures/parity/dsmd_public.json)', () => {
  let diffs: Record<string, number> = {};
  let got: Record<string, unknown> = {};
  beforeAll(async () => {
    await initRuntime('cpu', { quiet: true });
    got = runLossParityFile(file);
    diffs = compareToFixture(got as never, readJsonFile<{ outputs: Record<string, unknown> }>(file).outputs);
  });

  it('produces every output key of the fixture', () => {
    const expected = Object.keys(readJsonFile<{ outputs: Record<string, unknown> }>(file).outputs).filter((k) => !k.startsWith('float32/'));
    expect(Object.keys(got).sort()).toEqual(expected.sort());
  });

  it('matches every loss, balancer, queue and DCD output at 1e-5 relative', () => {
    const bad = Object.entries(diffs).filter(([k, v]) => !k.endsWith('_per_sample') && !(v <= 1e-5));
    expect(bad).toEqual([]);
  });

  it('matches the per-sample InfoNCE intermediates to 1e-6 absolute (float32 limit for values ~1e-3)', () => {
    const expected = readJsonFile<{ outputs: Record<string, number[]> }>(file).outputs;
    for (const k of Object.keys(expected).filter((k) => k.endsWith('_per_sample') && !k.startsWith('float32/'))) {
      const g = got[k] as number[];
      expected[k].forEach((v, i) => expect(Math.abs(v - g[i])).toBeLessThan(1e-6));
    }
  });
});
