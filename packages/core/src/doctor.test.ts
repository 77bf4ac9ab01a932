import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { doctor } from './doctor.js';
import {
  LAVAPIPE_INSTALL,
  driverOf,
  findIcds,
  findLibvulkan,
  fixFor,
  parseLoaderLog,
  parseNodePlacements,
  probeWebGpuSession,
} from './engine/onnx/webgpu.js';

const tmp = mkdtempSync(join(tmpdir(), 'distill-vk-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const icd = (dir: string, file: string, library: string) => {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, file),
    JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: library, api_version: '1.3.280' } }),
  );
};

// This machine: the Vulkan loader and Mesa's lavapipe (installed by .ci/run), else the live tests skip.
const lavapipe = !!findLibvulkan() && findIcds().icds.some((i) => i.library.includes('lvp'));
if (!lavapipe)
  console.warn(
    `doctor.test: no libvulkan.so.1 + lavapipe here, the live WebGPU probe test is skipped; to run it: ${LAVAPIPE_INSTALL}`,
  );

describe('WebGPU report pieces', () => {
  it('names the driver behind an ICD library; only CPU drivers are software', () => {
    expect(driverOf('libvulkan_lvp.so')).toEqual({ driver: 'Mesa lavapipe (CPU, software)', software: true });
    expect(driverOf('libGLX_nvidia.so.0')).toEqual({ driver: 'NVIDIA proprietary', software: false });
    expect(driverOf('/usr/lib/x86_64-linux-gnu/libvulkan_radeon.so').driver).toBe('Mesa RADV (AMD)');
    expect(driverOf('libvulkan_intel_hasvk.so').driver).toBe('Mesa hasvk (Intel gen 7-8)');
    expect(driverOf('libvulkan_intel.so').driver).toBe('Mesa ANV (Intel)');
    expect(driverOf('libfoo.so')).toEqual({ driver: 'unknown (libfoo.so)', software: false });
  });

  it('VK_DRIVER_FILES replaces the search (files and folders); unreadable manifests are left out', () => {
    const d = join(tmp, 'override');
    icd(d, 'lvp_icd.json', 'libvulkan_lvp.so');
    writeFileSync(join(d, 'broken.json'), '{ not json');
    icd(join(tmp, 'one'), 'nvidia_icd.json', 'libGLX_nvidia.so.0');
    const r = findIcds({ VK_DRIVER_FILES: `${join(tmp, 'one/nvidia_icd.json')}:${d}`, VK_ICD_FILENAMES: '/ignored' });
    expect(r.search).toBe(`VK_DRIVER_FILES=${join(tmp, 'one/nvidia_icd.json')}:${d}`);
    expect(r.icds.map((i) => [i.library, i.software, i.apiVersion])).toEqual([
      ['libGLX_nvidia.so.0', false, '1.3.280'],
      ['libvulkan_lvp.so', true, '1.3.280'],
    ]);
    // the older variable when the new one is unset
    expect(findIcds({ VK_ICD_FILENAMES: d }).icds.map((i) => i.library)).toEqual(['libvulkan_lvp.so']);
  });

  it('without an override it reads <XDG dir>/vulkan/icd.d (config and data dirs) plus VK_ADD_DRIVER_FILES', () => {
    icd(join(tmp, 'data/vulkan/icd.d'), 'radeon_icd.json', 'libvulkan_radeon.so');
    icd(join(tmp, 'conf/vulkan/icd.d'), 'intel_icd.json', 'libvulkan_intel.so');
    icd(join(tmp, 'extra'), 'x.json', 'libvulkan_dzn.so');
    const r = findIcds({
      XDG_DATA_DIRS: join(tmp, 'data'),
      XDG_CONFIG_DIRS: join(tmp, 'conf'),
      HOME: join(tmp, 'home'),
      VK_ADD_DRIVER_FILES: join(tmp, 'extra/x.json'),
    });
    const mine = r.icds.filter((i) => i.manifest.startsWith(tmp)).map((i) => i.driver);
    expect(mine).toEqual(['Mesa dozen (Direct3D 12)', 'Mesa ANV (Intel)', 'Mesa RADV (AMD)']);
    expect(r.search).toContain(join(tmp, 'data/vulkan/icd.d'));
  });

  it('reads node placements and the Vulkan device from the logs', () => {
    const v = (s: string) =>
      `2026-12-02 00:23:03.379 [V:onnxruntime:, session_state.cc:1383 VerifyEachNodeIsAssignedToAnEp] ${s}`;
    const log = [
      v('Node placements'),
      v(' Node(s) placed on [WebGpuExecutionProvider]. Number of nodes: 2'),
      v('  Relu (rel)'),
      v('  MemcpyFromHost (Memcpy)'),
      v(' Node(s) placed on [CPUExecutionProvider]. Number of nodes: 1'),
      v('  Sign (sgn)'),
      '2026-12-02 00:23:03.379 [W:onnxruntime:, session_state.cc:1397 VerifyEachNodeIsAssignedToAnEp] Some nodes were not assigned',
      'INFO | DRIVER:               [0] llvmpipe (LLVM 15.0.6, 256 bits)  ',
      'INFO | DRIVER:               [1] NVIDIA H200',
      'DRIVER | LAYER:          Using "NVIDIA H200" with driver: "libGLX_nvidia.so.0"',
    ].join('\n');
    expect(parseNodePlacements(log)).toEqual({
      WebGpuExecutionProvider: [
        { op: 'Relu', node: 'rel' },
        { op: 'MemcpyFromHost', node: 'Memcpy' },
      ],
      CPUExecutionProvider: [{ op: 'Sign', node: 'sgn' }],
    });
    expect(parseNodePlacements(v(' All nodes placed on [WebGpuExecutionProvider]. Number of nodes: 2'))).toEqual({
      WebGpuExecutionProvider: [{ op: '*', node: '*' }],
    });
    expect(parseLoaderLog(log)).toEqual({
      physicalDevices: ['llvmpipe (LLVM 15.0.6, 256 bits)', 'NVIDIA H200'],
      using: { name: 'NVIDIA H200', library: 'libGLX_nvidia.so.0' },
    });
  });

  it('the fix names what is missing: the loader, a driver, a newer Mesa, or the NVIDIA ICD', () => {
    const base = {
      icdSearch: '/usr/share/vulkan/icd.d',
      mesaVersion: undefined,
      session: { ok: false, ms: 1, error: 'No supported adapters' },
    };
    const lvp = { manifest: 'lvp_icd.json', library: 'libvulkan_lvp.so', ...driverOf('libvulkan_lvp.so') };
    expect(fixFor({ ...base, libvulkan: null, icds: [] }, {}, false)).toBe(
      `no libvulkan.so.1 (the Vulkan loader): ${LAVAPIPE_INSTALL}`,
    );
    expect(fixFor({ ...base, libvulkan: '/lib/libvulkan.so.1', icds: [] }, {}, false)).toMatch(
      /^no Vulkan driver .*bookworm-backports mesa-vulkan-drivers/,
    );
    expect(
      fixFor({ ...base, libvulkan: '/lib/libvulkan.so.1', icds: [lvp], mesaVersion: '22.3.6-1+deb12u1' }, {}, false),
    ).toMatch(/^Mesa 22\.3\.6-1\+deb12u1 is too old for Dawn/);
    expect(
      fixFor({ ...base, libvulkan: '/lib/libvulkan.so.1', icds: [lvp], mesaVersion: '22.3.6-1+deb12u1' }, {}, true),
    ).toMatch(/NVIDIA GPU is present.*VK_DRIVER_FILES=.*nvidia_icd\.json/);
    expect(fixFor({ ...base, libvulkan: null, icds: [] }, {}, true)).toMatch(
      /install the Vulkan loader \(libvulkan1\)/,
    );
  });
});

describe('WebGPU session probe (child process)', () => {
  it('a loader without drivers gives no adapter: not ok, with the reason', async () => {
    const r = await probeWebGpuSession({ env: { ...process.env, VK_DRIVER_FILES: join(tmp, 'none.json') } });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/adapter|libvulkan|Vulkan/i);
  });

  it('a probe that does not answer in time is killed and reported', async () => {
    const r = await probeWebGpuSession({ timeoutMs: 1 });
    expect(r).toMatchObject({ ok: false, error: 'no answer within 0.001 s (killed)' });
  });

  it.skipIf(!lavapipe)(
    'on lavapipe: the session computes Relu(x)+x on WebGpuExecutionProvider, the loader names llvmpipe',
    async () => {
      const r = await doctor({ backend: 'cpu' });
      const w = r.webgpu!;
      expect(w.session).toMatchObject({ ok: true, placement: 'WebGpuExecutionProvider' });
      expect(w.session.ms).toBeGreaterThan(0);
      expect(w.fix).toBeUndefined();
      expect(w.device).toMatchObject({
        library: 'libvulkan_lvp.so',
        driver: 'Mesa lavapipe (CPU, software)',
        software: true,
      });
      expect(w.device!.name).toMatch(/^llvmpipe/);
      expect(w.physicalDevices).toContain(w.device!.name);
    },
    120_000,
  );

  it('doctor({ webgpu: false }) starts no probe', async () => {
    expect((await doctor({ backend: 'cpu', webgpu: false })).webgpu).toBeUndefined();
  });
});
