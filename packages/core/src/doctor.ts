import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { availableParallelism, cpus, totalmem } from 'node:os';
import { webgpuReport, type WebGpuReport } from './engine/onnx/webgpu.js';
import { initRuntime, TENSORFLOW_PACKAGES, type BackendChoice, type Importer } from './runtime.js';

export interface DoctorReport {
  node: string;
  platform: string;
  cpus: { count: number; model: string; availableParallelism: number };
  memoryGiB: number;
  tfjs: string;
  backend: string;
  backendSkipped: { backend: string; reason: string }[];
  wasmMatmulFix: boolean;
  engines: Record<string, { present: boolean; version?: string; note?: string }>;
  /** onnxruntime-node's WebGPU execution provider: Vulkan loader, drivers, a tiny session's result (absent with `webgpu: false`). */
  webgpu?: WebGpuReport;
}

function pkgVersion(name: string): string | undefined {
  const require = createRequire(import.meta.url);
  try {
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    // a package whose "exports" hide package.json (sharp): walk up from its entry point
    try {
      for (let dir = dirname(require.resolve(name)); ; dir = dirname(dir)) {
        const p = join(dir, 'package.json');
        if (existsSync(p)) {
          const j = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
          if (j.name === name) return j.version;
        }
        if (dirname(dir) === dir) return undefined;
      }
    } catch {
      return undefined;
    }
  }
}

/**
 * What this machine offers distill: Node, CPU, tfjs backend, the optional engines and (unless
 * `webgpu: false`) whether onnxruntime's WebGPU provider starts, probed in a child process.
 */
export async function doctor(
  opts: { backend?: BackendChoice; importer?: Importer; webgpu?: boolean; webgpuTimeoutMs?: number } = {},
): Promise<DoctorReport> {
  const rt = await initRuntime(opts.backend ?? 'auto', { quiet: true, importer: opts.importer });
  const importer = opts.importer ?? ((s: string) => import(s));
  const engines: DoctorReport['engines'] = {};
  for (const pkg of [...TENSORFLOW_PACKAGES, '@tensorflow/tfjs-backend-wasm', 'onnxruntime-node', 'sharp']) {
    let present = false;
    let note: string | undefined;
    try {
      await importer(pkg);
      present = true;
    } catch (e) {
      note = String((e as Error).message)
        .split('\n')[0]
        .slice(0, 160);
    }
    engines[pkg] = { present, version: pkgVersion(pkg), note };
  }
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: { count: cpus().length, model: cpus()[0]?.model ?? 'unknown', availableParallelism: availableParallelism() },
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    tfjs: rt.tfjsVersion,
    backend: rt.backend,
    backendSkipped: rt.skipped,
    wasmMatmulFix: rt.wasmMatmulFix,
    engines,
    ...(opts.webgpu === false ? {} : { webgpu: await webgpuReport({ timeoutMs: opts.webgpuTimeoutMs }) }),
  };
}
