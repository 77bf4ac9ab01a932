import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { repoRoot } from '@distill/core';
import { describe, expect, it } from 'vitest';

const root = repoRoot();
const distill = (...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'apps/cli/bin/distill.js'), ...args], { cwd: root, encoding: 'utf8' });
const ortVersion = (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
const sharpVersion = (
  JSON.parse(readFileSync(join(root, 'node_modules/sharp/package.json'), 'utf8')) as { version: string }
).version;

describe('distill doctor', () => {
  it('prints node, cpu, tfjs, backend, engines and threads, and exits 0', () => {
    const r = distill('doctor', '--backend', 'cpu');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    const first = (label: string) => lines.findIndex((l) => l.startsWith(label));
    // sections, in this order
    const order = ['node ', 'cpu ', 'tfjs ', 'backend ', 'engines:', 'threads '].map(first);
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(lines[order[0]]).toBe(`node            ${process.version} (${process.platform}-${process.arch})`);
    expect(lines[order[3]]).toMatch(/^backend\s+cpu$/); // the backend asked for
    expect(lines[order[2]]).toMatch(/^tfjs\s+\d+\.\d+\.\d+$/);
    // one line per optional engine between "engines:" and "threads", each yes/no
    const engines = lines.slice(order[4] + 1, order[5]);
    expect(engines.map((l) => l.trim().split(/\s+/)[0])).toEqual([
      '@tensorflow/tfjs-node-gpu',
      '@tensorflow/tfjs-node',
      '@tensorflow/tfjs-backend-wasm',
      'onnxruntime-node',
      'sharp',
    ]);
    for (const l of engines) expect(l.trim().split(/\s+/)[1]).toMatch(/^(yes|no)$/);
    // every engine found shows its version (sharp's "exports" hide its package.json)
    for (const l of engines.filter((x) => x.trim().split(/\s+/)[1] === 'yes'))
      expect(l.trim().split(/\s+/)[2], l).toMatch(/^\d+\.\d+\.\d+/);
    // onnxruntime-node is a dependency: present, with its installed version
    expect(
      engines
        .find((l) => l.includes('onnxruntime-node'))!
        .trim()
        .split(/\s+/)
        .slice(1, 3),
    ).toEqual(['yes', ortVersion]);
  });

  it('--json prints one object with the same facts', () => {
    const r = distill('doctor', '--backend', 'cpu', '--json');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      backend: 'cpu',
      wasmMatmulFix: false,
    });
    expect(j.cpus.count).toBeGreaterThan(0);
    expect(j.engines['onnxruntime-node']).toEqual({ present: true, version: ortVersion });
    expect(j.engines.sharp).toEqual({ present: true, version: sharpVersion });
  });

  it('an unknown --backend is a usage error (exit 2) listing the choices', () => {
    const r = distill('doctor', '--backend', 'nope');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/backend.*Given: "nope".*Choices: "auto", "onnx", "tensorflow", "wasm", "cpu"/s);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});
