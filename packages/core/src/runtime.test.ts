import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { DistillError } from '@distill/base';
import { initRuntime, resetRuntimeForTests, tf, type Importer } from './runtime.js';

// Simulate which optional engines import: the real `import()` for everything else.
const without =
  (...missing: string[]): Importer =>
  async (s) => {
    if (missing.includes(s)) throw new Error(`Cannot find package '${s}'`);
    if (s.startsWith('@tensorflow/tfjs-node')) return {}; // pretend it loaded (the real one cannot install here)
    return import(s);
  };

describe('backend choice', () => {
  afterEach(() => resetRuntimeForTests());

  it('auto falls back to wasm when neither tfjs-node package imports', async () => {
    const rt = await initRuntime('auto', {
      quiet: true,
      importer: without('@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'),
    });
    expect(rt.backend).toBe('wasm');
    expect(rt.wasmMatmulFix).toBe(true);
    expect(rt.skipped.map((s) => s.backend)).toEqual(['tensorflow']);
    expect(rt.skipped[0].reason).toContain('@tensorflow/tfjs-node');
  });

  it('auto falls back to cpu when wasm does not load either (in a fresh process: no backend registered yet)', () => {
    // In this process an earlier test has registered wasm, which initRuntime would then reuse; a child
    // process starts with no backend registered, and its importer makes all three optional engines fail.
    const child = `
      import { initRuntime, tf } from ${JSON.stringify(new URL('./runtime.ts', import.meta.url).pathname)};
      const missing = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-backend-wasm'];
      const importer = async (s) => {
        if (missing.includes(s)) throw new Error("Cannot find package '" + s + "'");
        return import(s);
      };
      const rt = await initRuntime('auto', { quiet: true, importer });
      console.log(JSON.stringify({ rt, active: tf.getBackend(), wasmRegistered: !!tf.findBackend('wasm') }));
    `;
    const out = execFileSync(
      process.execPath,
      ['--conditions=@distill/source', '--import', 'tsx', '--input-type=module', '-e', child],
      { encoding: 'utf8' },
    );
    const { rt, active, wasmRegistered } = JSON.parse(out.trim().split('\n').pop()!);
    expect(rt.backend).toBe('cpu');
    expect(active).toBe('cpu');
    expect(wasmRegistered).toBe(false);
    expect(rt.wasmMatmulFix).toBe(false);
    expect(rt.skipped.map((s: { backend: string }) => s.backend)).toEqual(['tensorflow', 'wasm']);
    expect(rt.skipped[1].reason).toContain('@tensorflow/tfjs-backend-wasm');
  }, 60_000);

  it('auto prefers tensorflow when tfjs-node-gpu imports (and reports which package)', async () => {
    // Stand-in for @tensorflow/tfjs-node-gpu: importing it registers a backend named 'tensorflow'.
    const { MathBackendCPU } = await import('@tensorflow/tfjs-backend-cpu');
    const fakeGpu: Importer = async (s) => {
      if (s === '@tensorflow/tfjs-node-gpu') {
        if (!tf.findBackend('tensorflow')) tf.registerBackend('tensorflow', () => new MathBackendCPU());
        return {};
      }
      return import(s);
    };
    const rt = await initRuntime('auto', { quiet: true, importer: fakeGpu });
    expect(rt.backend).toBe('tensorflow');
    expect(rt.tensorflowPackage).toBe('@tensorflow/tfjs-node-gpu');
    expect(tf.getBackend()).toBe('tensorflow');
    tf.removeBackend('tensorflow');
    await tf.setBackend('cpu');
  });

  it('--backend tensorflow without the packages is a clear user error', async () => {
    const p = initRuntime('tensorflow', {
      quiet: true,
      importer: without('@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'),
    });
    await expect(p).rejects.toBeInstanceOf(DistillError);
    await expect(p).rejects.toThrow(/--backend wasm/);
  });

  it('cpu is always available', async () => {
    const rt = await initRuntime('cpu', { quiet: true });
    expect(rt.backend).toBe('cpu');
  });

  it('rejects unknown backends', async () => {
    await expect(initRuntime('gpu' as never, { quiet: true })).rejects.toThrow(
      /Choose one of: auto, tensorflow, wasm, cpu/,
    );
  });
});
