import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { findIcds, findLibvulkan, repoRoot, type WebGpuReport } from '@distill/core';
import { describe, expect, it } from 'vitest';
import { webgpuLines } from './commands/doctor.js';

const root = repoRoot();
const distill = (...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'apps/cli/bin/distill.js'), ...args], { cwd: root, encoding: 'utf8' });
const lavapipe = !!findLibvulkan() && findIcds().icds.some((i) => i.library.includes('lvp'));

const failed: WebGpuReport = {
  libvulkan: null,
  icdSearch: '/etc/vulkan/icd.d, /usr/share/vulkan/icd.d',
  icds: [],
  session: { ok: false, ms: 12, error: 'Failed to get a WebGPU adapter: No supported adapters' },
  physicalDevices: [],
  vulkaninfo: 'vulkaninfo not installed',
  fix: 'no libvulkan.so.1 (the Vulkan loader): apt-get install ...',
};

describe('distill doctor: the WebGPU section', () => {
  it('a failed probe prints "no", the reason, what was searched and the fix last', () => {
    expect(webgpuLines(failed)).toEqual([
      'webgpu          no: Failed to get a WebGPU adapter: No supported adapters',
      '  libvulkan     not found (libvulkan.so.1)',
      '  drivers       none (searched /etc/vulkan/icd.d, /usr/share/vulkan/icd.d)',
      '  adapter       vulkaninfo not installed',
      '  fix           no libvulkan.so.1 (the Vulkan loader): apt-get install ...',
    ]);
  });

  it('a working probe prints the device and driver first, and no fix', () => {
    const ok: WebGpuReport = {
      ...failed,
      libvulkan: '/lib/x86_64-linux-gnu/libvulkan.so.1',
      icds: [
        {
          manifest: '/x/nvidia_icd.json',
          library: 'libGLX_nvidia.so.0',
          driver: 'NVIDIA proprietary',
          software: false,
        },
      ],
      session: { ok: true, ms: 830, placement: 'WebGpuExecutionProvider' },
      physicalDevices: ['NVIDIA H200'],
      device: { name: 'NVIDIA H200', library: 'libGLX_nvidia.so.0', driver: 'NVIDIA proprietary', software: false },
      vulkaninfo: ['deviceName = NVIDIA H200', 'vendorID = 0x10de'],
      fix: undefined,
    };
    const lines = webgpuLines(ok);
    expect(lines[0]).toBe(
      'webgpu          yes: NVIDIA H200 via NVIDIA proprietary; a session started and ran in 830 ms on WebGpuExecutionProvider',
    );
    expect(lines).toContain('  adapter       deviceName = NVIDIA H200; vendorID = 0x10de');
    expect(lines.some((l) => l.includes('fix'))).toBe(false);
  });

  it.skipIf(!lavapipe)(
    'on this machine (lavapipe): `distill doctor` prints the llvmpipe adapter line after threads; --no-webgpu leaves it out',
    () => {
      const r = distill('doctor', '--backend', 'cpu');
      expect(r.status).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      const w = lines.findIndex((l) => l.startsWith('webgpu '));
      expect(w).toBeGreaterThan(lines.findIndex((l) => l.startsWith('threads ')));
      expect(lines[w]).toMatch(
        /^webgpu {10}yes: llvmpipe .* via Mesa lavapipe \(CPU, software\); a session started and ran in \d+ ms on WebGpuExecutionProvider$/,
      );
      const off = distill('doctor', '--backend', 'cpu', '--no-webgpu');
      expect(off.status).toBe(0);
      expect(off.stdout).not.toMatch(/^webgpu /m);
    },
    120_000,
  );
});
