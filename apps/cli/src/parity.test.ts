import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@distill/core';
import { afterAll, describe, expect, it } from 'vitest';

const root = repoRoot();
const distill = (...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'apps/cli/bin/distill.js'), ...args], { cwd: root, encoding: 'utf8' });
/** In-repo copies of shared/parity/hf-tiny (tiny random HF models with PyTorch reference outputs). */
const hfTiny = (m: string) => join(root, 'packages/student-architectures/src/fixtures/hf-tiny', m);
const clip = join(root, 'packages/teacher-adapters/src/fixtures/hf-tiny/clip');

const tmp = mkdtempSync(join(tmpdir(), 'distill-parity-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
/** A folder holding only `files` copied from `from`. */
function partial(name: string, from: string, files: string[]): string {
  const d = join(tmp, name);
  mkdirSync(d, { recursive: true });
  for (const f of files) copyFileSync(join(from, f), join(d, f));
  return d;
}
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').pop()!);
const noStack = (stderr: string) => expect(stderr).not.toMatch(/\n\s+at /);

describe('distill parity hf', () => {
  it('an image model (vit): both outputs within 1e-4 of PyTorch, as one JSON line', () => {
    const r = distill('parity', 'hf', hfTiny('vit'));
    expect(r.status, r.stderr).toBe(0);
    const d = lastJson(r.stdout);
    expect(Object.keys(d).sort()).toEqual(['last_hidden_state', 'pooler_output']);
    for (const v of Object.values(d)) expect(v).toBeLessThanOrEqual(1e-4);
  });

  it('a missing folder, reference.json, config.json or model.safetensors: exit 2 naming it', () => {
    const cases: [string, RegExp][] = [
      [join(tmp, 'nowhere'), /not found: .*nowhere/],
      [partial('hf-no-ref', hfTiny('bert'), ['config.json', 'model.safetensors']), /hf-no-ref has no reference\.json/],
      [
        partial('hf-no-config', hfTiny('bert'), ['reference.json', 'model.safetensors']),
        /hf-no-config has no config\.json.*save_pretrained/,
      ],
      [
        partial('hf-no-weights', hfTiny('bert'), ['reference.json', 'config.json']),
        /hf-no-weights has no model\.safetensors.*safe_serialization=True/,
      ],
    ];
    for (const [dir, msg] of cases) {
      const r = distill('parity', 'hf', dir);
      expect(r.status, dir).toBe(2);
      expect(r.stderr).toMatch(msg);
      noStack(r.stderr);
    }
  });
});

describe('distill parity onnx-teacher', () => {
  it('the tiny CLIP export: image and text embeddings within 1e-4 of PyTorch', () => {
    const r = distill('parity', 'onnx-teacher', clip);
    expect(r.status, r.stderr).toBe(0);
    const d = lastJson(r.stdout);
    expect(Object.keys(d).sort()).toEqual(['image_embeds', 'text_embeds']);
    for (const v of Object.values(d)) expect(v).toBeLessThanOrEqual(1e-4);
  });

  it('a missing folder, reference.json or ONNX file: exit 2 naming it', () => {
    const cases: [string, RegExp][] = [
      [join(tmp, 'nowhere'), /not found: .*nowhere/],
      [
        partial('onnx-no-ref', clip, ['image.onnx', 'text.onnx']),
        /onnx-no-ref has no reference\.json \(\{inputs, outputs\}/,
      ],
      [
        partial('onnx-no-text', clip, ['reference.json', 'image.onnx']),
        /onnx-no-text is missing text\.onnx\..*export_clip\.py/,
      ],
    ];
    for (const [dir, msg] of cases) {
      const r = distill('parity', 'onnx-teacher', dir);
      expect(r.status, dir).toBe(2);
      expect(r.stderr).toMatch(msg);
      noStack(r.stderr);
    }
  });

  it('an unknown --preset is named', () => {
    const r = distill('parity', 'onnx-teacher', clip, '--preset', 'nope');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Unknown teacher preset 'nope'\. Available: clip, beit3/);
  });
});
