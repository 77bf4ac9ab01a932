/**
 * Op coverage of onnxruntime-node's WebGPU execution provider: every op family the engine emits,
 * forward and backward graphs (op-coverage.ts), run on 'webgpu' and 'cpu' in a child process
 * (op-coverage-run.ts); the values must agree within float tolerance, and the nodes onnxruntime
 * leaves on the CPU (its verbose "Node placements" log) must be the known ones listed in docs/gpu.md.
 * Runs on any machine with a Vulkan driver (lavapipe from bookworm-backports on CPU-only machines).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CoverageRun } from './op-coverage-run.js';
import { COVERAGE_CASES } from './op-coverage.js';
import { LAVAPIPE_INSTALL, findIcds, findLibvulkan, parseNodePlacements, probeWebGpuSession } from './webgpu.js';

/**
 * Nodes that fall back to the CPU provider, by model: none. relu/abs backward no longer use ONNX Sign
 * (no WebGPU kernel: `sign` is written with Greater/Less/Cast), and graphs built for WebGPU take the
 * one-hot form of the gather gradient (autodiff gather-grad-webgpu.ts) instead of the sorted float64
 * segment sum (TopK, Unique, CumSum in f64: no WebGPU kernels).
 */
const EXPECTED_CPU: Record<string, string[]> = {};

// Skip only when this machine has no Vulkan at all, or only a Mesa too old for Dawn; a driver that
// is there and fails is a failure.
const hasVulkan = !!findLibvulkan() && findIcds().icds.length > 0;
const probe = hasVulkan ? await probeWebGpuSession() : undefined;
const mesaTooOld =
  !!probe &&
  !probe.ok &&
  findIcds().icds.every((i) => i.software) &&
  /too old|No supported adapters/.test(probe.error ?? '');
const skip = !hasVulkan || mesaTooOld;
if (skip)
  console.warn(
    `webgpu.test: skipped, ${hasVulkan ? `the Vulkan driver gives no WebGPU adapter (${probe?.error})` : 'no Vulkan loader/driver on this machine'}; to run it: ${LAVAPIPE_INSTALL}`,
  );

/** max |a - b| / max |b| (0 for two all-zero outputs). */
function relDiff(a: number[], b: number[]): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return s === 0 ? d : d / s;
}

describe.skipIf(skip)('WebGPU execution provider: op coverage (forward and backward graphs)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'distill-webgpu-'));
  let run: CoverageRun;
  let placements: ReturnType<typeof parseNodePlacements>[];
  let log = '';
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  beforeAll(async () => {
    expect(probe!.ok, `the WebGPU probe failed: ${probe!.error}`).toBe(true);
    const out = join(dir, 'run.json');
    const child = spawn(
      process.execPath,
      [
        '--conditions=@distill/source',
        '--import',
        'tsx',
        fileURLToPath(new URL('./op-coverage-run.ts', import.meta.url)),
        out,
        'webgpu',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    const last = [...log.matchAll(/^@@start (.*)$/gm)].pop()?.[1];
    expect(code, `op-coverage-run.ts ended with ${code} during ${last}`).toBe(0);
    run = JSON.parse(readFileSync(out, 'utf8')) as CoverageRun;
    // one "Node placements" block per WebGPU session, in session order
    placements = log
      .split(/^.*VerifyEachNodeIsAssignedToAnEp\] Node placements.*$/m)
      .slice(1)
      .map(parseNodePlacements);
  }, 600_000);

  it('every WebGPU session started, one placement block each', () => {
    expect(run.models.map((m) => m.label)).toEqual(
      COVERAGE_CASES.flatMap((c) => [`${c.name}/forward`, `${c.name}/backward`]),
    );
    expect(run.models.filter((m) => m.error).map((m) => `${m.label}: ${m.error}`)).toEqual([]);
    expect(placements).toHaveLength(run.models.length);
  });

  it('values match the CPU provider within float32 tolerance (1e-4 of the largest value), output by output', () => {
    const worst: Record<string, number> = {};
    for (const m of run.models)
      for (const [name, cpu] of Object.entries(m.cpu)) {
        const dev = m.device![name];
        expect(dev, `${m.label} ${name}`).toHaveLength(cpu.length);
        expect(dev.every(Number.isFinite), `${m.label} ${name}: non-finite values`).toBe(true);
        const r = relDiff(dev, cpu);
        worst[m.label] = Math.max(worst[m.label] ?? 0, r);
        expect(r, `${m.label} ${name}`).toBeLessThan(1e-4);
      }
    console.log(
      'webgpu vs cpu, largest relative difference per model:\n' +
        Object.entries(worst)
          .map(([k, v]) => `  ${k.padEnd(32)} ${v.toExponential(2)}`)
          .join('\n'),
    );
  });

  it('no node falls back to the CPU provider: every forward and backward graph runs wholly on WebGPU', () => {
    const table: string[] = [];
    run.models.forEach((m, i) => {
      const cpuOps = [...new Set((placements[i].CPUExecutionProvider ?? []).map((n) => n.op))].sort();
      const gpu = placements[i].WebGpuExecutionProvider ?? [];
      const copies = gpu.filter((n) => n.op.startsWith('Memcpy')).length;
      table.push(
        `| ${m.label} | ${gpu[0]?.op === '*' ? 'all' : gpu.length - copies} | ${cpuOps.join(', ') || '-'} | ${copies} |`,
      );
      expect(cpuOps, m.label).toEqual([...(EXPECTED_CPU[m.label] ?? [])].sort());
      if (m.label.endsWith('/forward')) expect(gpu.length, m.label).toBeGreaterThan(0);
    });
    console.log(
      '| model | nodes on WebGPU | ops on the CPU provider | Memcpy nodes |\n|---|---|---|---|\n' + table.join('\n'),
    );
  });
});
