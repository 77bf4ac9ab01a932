import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '@distill/core';
import { describe, expect, it } from 'vitest';

const root = repoRoot();
const distill = (...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'apps/cli/bin/distill.js'), ...args], { cwd: root, encoding: 'utf8' });

describe('distill CLI (students)', () => {
  it('`distill models --json` lists every pair and preset with parameter counts', () => {
    const out = JSON.parse(
      execFileSync(process.execPath, [join(root, 'apps/cli/bin/distill.js'), 'models', '--json'], {
        cwd: root,
        encoding: 'utf8',
      }),
    );
    expect(out.embedDim).toBe(768);
    const names = out.pairs.map((p: { name: string }) => p.name);
    expect(names).toEqual([
      'vit-bert',
      'deit-albert',
      'resnet-bert',
      'vit-textcnn',
      'resnet-textcnn',
      'mobilenet-bert',
      'mobilenet-glove',
      'vit-glove',
    ]);
    expect(out.pairs[0].presets.base.parameters.total).toBe(196_462_080);
    for (const p of out.pairs)
      for (const preset of ['tiny', 'small', 'base']) expect(p.presets[preset].parameters.total).toBeGreaterThan(0);
  });

  it('`distill parity hf <dir>` prints max abs diffs <= 1e-4 as JSON', () => {
    const r = distill('parity', 'hf', fileURLToPath(new URL('./fixtures/hf-tiny/albert', import.meta.url)));
    expect(r.status).toBe(0);
    const diffs = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(diffs.last_hidden_state).toBeLessThanOrEqual(1e-4);
    expect(diffs.pooler_output).toBeLessThanOrEqual(1e-4);
  });

  it('`distill parity hf` on a folder without reference.json fails with a clear message', () => {
    const r = distill('parity', 'hf', join(root, 'packages'));
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no (config\.json|reference\.json)/);
  });
});
