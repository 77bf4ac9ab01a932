import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger, DistillError, LAVAPIPE_INSTALL, webgpuReport, type WebGpuReport } from '@distill/core';
import { resolveConfig } from './config.js';
import { resolveDevice } from './engine.js';
import { configHash } from './run-guard.js';
import { EMOJI_TEACHER_DIR } from './teacher-features.js';
import { train } from './trainer.js';
import { createTrainingContainer as builtinsContainer } from './registries.js';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

const quiet = createLogger({ level: 'error' });

/** A doctor report as the probe would give it. */
function report(o: { ok: boolean; software?: boolean; error?: string; fix?: string }): WebGpuReport {
  return {
    libvulkan: '/lib/x86_64-linux-gnu/libvulkan.so.1',
    icdSearch: '/usr/share/vulkan/icd.d',
    icds: [],
    session: { ok: o.ok, ms: 1, error: o.error },
    physicalDevices: [],
    device: o.ok
      ? {
          name: o.software ? 'llvmpipe' : 'NVIDIA H100',
          library: 'x.so',
          driver: o.software ? 'Mesa lavapipe (CPU, software)' : 'NVIDIA proprietary',
          software: !!o.software,
        }
      : undefined,
    vulkaninfo: 'not installed',
    fix: o.fix,
  };
}

describe('--device', () => {
  it("is 'cpu' by default, one of cpu, webgpu, auto, and part of the config hash unless it is cpu", () => {
    expect(resolveConfig({ container: builtins, preset: 'smoke' }).device).toBe('cpu');
    expect(() => resolveConfig({ container: builtins, overrides: { device: 'gpu' as never } })).toThrow(
      /device: expected one of cpu, webgpu, auto, got the string "gpu"/,
    );
    const cpu = resolveConfig({ container: builtins, preset: 'smoke' });
    const { device: _, ...recordedBefore } = cpu; // a run recorded before the field existed
    expect(configHash(recordedBefore as never)).toBe(configHash(cpu));
    expect(
      configHash(resolveConfig({ container: builtins, preset: 'smoke', overrides: { device: 'webgpu' } })),
    ).not.toBe(configHash(cpu));
  });

  it('resolves to an execution provider from the doctor probe', async () => {
    const never = () => Promise.reject(new Error('cpu must not probe'));
    expect(await resolveDevice('cpu', quiet, never)).toBe('cpu');
    const lavapipe = () => Promise.resolve(report({ ok: true, software: true }));
    const gpu = () => Promise.resolve(report({ ok: true }));
    const none = () => Promise.resolve(report({ ok: false, error: 'no Vulkan driver', fix: LAVAPIPE_INSTALL }));
    expect(await resolveDevice('webgpu', quiet, lavapipe)).toBe('webgpu');
    expect(await resolveDevice('webgpu', quiet, gpu)).toBe('webgpu');
    // auto takes a hardware adapter only: lavapipe is far slower than the CPU provider
    expect(await resolveDevice('auto', quiet, lavapipe)).toBe('cpu');
    expect(await resolveDevice('auto', quiet, gpu)).toBe('webgpu');
    expect(await resolveDevice('auto', quiet, none)).toBe('cpu');
    const err = await resolveDevice('webgpu', quiet, none).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DistillError);
    expect((err as Error).message).toMatch(
      /--device webgpu: no WebGPU session could start \(no Vulkan driver\)\. Fix: apt-get install .*mesa-vulkan-drivers/,
    );
  });

  it.skipIf(!existsSync(join(EMOJI_TEACHER_DIR, 'student.json')))(
    'webgpu needs the onnx engine: refused with --backend wasm',
    async () => {
      const cfg = resolveConfig({
        container: builtins,
        preset: 'smoke',
        overrides: {
          backend: 'wasm',
          device: 'webgpu',
          maxSteps: 1,
          dataset: { name: 'emoji', trainSubset: 32, evalSubset: 8 },
        },
      });
      await expect(
        train(cfg, { container: builtins, runDir: mkdtempSync(join(tmpdir(), 'distill-device-')), logger: quiet }),
      ).rejects.toThrow(/--device webgpu runs the onnx engine only, and --backend wasm is tfjs/);
    },
    30_000,
  );
});

// The smoke training on onnxruntime's WebGPU provider against its CPU provider, step by step. Needs a
// Vulkan driver: lavapipe (Mesa's CPU driver) on a machine without a GPU.
const probe = existsSync(join(EMOJI_TEACHER_DIR, 'student.json'))
  ? await webgpuReport({ timeoutMs: 30_000 })
  : undefined;
const skip = !probe
  ? 'the emoji teacher is missing'
  : !probe.session.ok
    ? `no WebGPU (${probe.session.error}); to run it: ${probe.fix ?? LAVAPIPE_INSTALL}`
    : '';
if (skip) console.warn(`device.test.ts: skipping the WebGPU training test: ${skip}`);

const steps = (dir: string) =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"components"'))
    .map((l) => JSON.parse(l) as { loss: number; components: Record<string, number> });

describe.skipIf(!!skip)(`training on WebGPU${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('--device webgpu gives the losses and validation metrics of --device cpu', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'distill-device-'));
    const base = {
      backend: 'onnx' as const,
      maxSteps: 6,
      dataset: { name: 'emoji', trainSubset: 128, evalSubset: 32 },
      checkpointEvery: 3,
    };
    const cpu = await train(
      resolveConfig({ container: builtins, preset: 'smoke', overrides: { ...base, device: 'cpu' } }),
      { container: builtins, runDir: join(tmp, 'cpu'), logger: quiet },
    );
    const gpu = await train(
      resolveConfig({ container: builtins, preset: 'smoke', overrides: { ...base, device: 'webgpu' } }),
      { container: builtins, runDir: join(tmp, 'webgpu'), logger: quiet },
    );
    expect(cpu.engine).toBe('onnx');
    expect(gpu.engine).toBe('onnx-webgpu');
    const a = steps(join(tmp, 'webgpu'));
    const b = steps(join(tmp, 'cpu'));
    expect(a).toHaveLength(6);
    // measured on lavapipe: <= 3.1e-6 relative over 16 smoke steps
    a.forEach((s, i) => {
      expect(Math.abs(s.loss - b[i].loss) / Math.abs(b[i].loss), `loss at step ${i + 1}`).toBeLessThan(1e-4);
      for (const [k, v] of Object.entries(b[i].components))
        expect(Math.abs(s.components[k] - v) / Math.abs(v), `${k} at step ${i + 1}`).toBeLessThan(1e-4);
    });
    // Recall counts ranks: a float-level difference could swap a near-tie (on lavapipe they were identical).
    expect(gpu.val).toHaveLength(cpu.val.length);
    gpu.val.forEach((v, i) => expect(Math.abs(v.rsum - cpu.val[i].rsum), `val RSUM, epoch ${i + 1}`).toBeLessThan(1.5));
    expect(Math.abs(gpu.test.rsum - cpu.test.rsum)).toBeLessThan(1.5);
  }, 90_000);
});
