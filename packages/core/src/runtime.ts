import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { DistillError, type Logger } from '@distill/base';
import { installWasmMatmulFix } from './wasm-matmul-fix.js';

/**
 * The one place that chooses the tfjs backend.
 * `auto` = `tensorflow` if @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node imports (both are
 * optionalDependencies that usually cannot install here), else `wasm`, else `cpu`.
 */
// Production mode: no debug checks, and no "install tfjs-node" banner from the cpu backend on stderr
// (distill's own runtime report says which backend runs and why).
tf.env().set('PROD', true);

export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
export type BackendName = Exclude<BackendChoice, 'auto'>;

export interface RuntimeInfo {
  backend: BackendName;
  /** Which package provided the tensorflow backend, if any. */
  tensorflowPackage?: string;
  /** Why each better backend was skipped. */
  skipped: { backend: BackendName; reason: string }[];
  tfjsVersion: string;
  wasmMatmulFix: boolean;
}

/** How optional modules are imported; injectable so tests can simulate absence. */
export type Importer = (specifier: string) => Promise<unknown>;
const defaultImporter: Importer = (s) => import(s);

export const TENSORFLOW_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

async function tryTensorflow(importer: Importer): Promise<{ pkg?: string; reason: string }> {
  const reasons: string[] = [];
  for (const pkg of TENSORFLOW_PACKAGES) {
    try {
      await importer(pkg);
      return { pkg, reason: '' };
    } catch (e) {
      reasons.push(`${pkg}: ${String((e as Error).message ?? e).split('\n')[0]}`);
    }
  }
  return { reason: reasons.join('; ') };
}

let wasmRegistered = false;
async function tryWasm(importer: Importer): Promise<string> {
  try {
    if (!wasmRegistered) {
      const wasm = (await importer('@tensorflow/tfjs-backend-wasm')) as { setWasmPaths(p: string): void };
      // In Node the .wasm binaries sit next to the package's dist bundle.
      const require = createRequire(import.meta.url);
      const main = require.resolve('@tensorflow/tfjs-backend-wasm');
      wasm.setWasmPaths(join(dirname(main), '/'));
      wasmRegistered = true;
    }
    return '';
  } catch (e) {
    return String((e as Error).message ?? e).split('\n')[0];
  }
}

let current: RuntimeInfo | undefined;

/** Initialise tfjs with the requested backend. Idempotent for the same choice. */
export async function initRuntime(
  choice: BackendChoice = 'auto',
  opts: { logger?: Logger; importer?: Importer; quiet?: boolean } = {},
): Promise<RuntimeInfo> {
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new DistillError(`Unknown backend '${choice}'. Choose one of: ${BACKEND_CHOICES.join(', ')}.`, 2);
  }
  if (current && (choice === 'auto' || choice === current.backend) && !opts.importer) return current;
  const importer = opts.importer ?? defaultImporter;
  const skipped: RuntimeInfo['skipped'] = [];
  let backend: BackendName | undefined;
  let tensorflowPackage: string | undefined;

  if (choice === 'auto' || choice === 'tensorflow') {
    const r = await tryTensorflow(importer);
    if (r.pkg) {
      backend = 'tensorflow';
      tensorflowPackage = r.pkg;
    } else if (choice === 'tensorflow') {
      throw new DistillError(
        `--backend tensorflow needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, and neither loads (${r.reason}). ` +
          'Their install script downloads libtensorflow, which fails offline; use --backend wasm (default fallback) or cpu.',
        2,
      );
    } else skipped.push({ backend: 'tensorflow', reason: r.reason });
  }
  if (!backend && (choice === 'auto' || choice === 'wasm')) {
    const reason = await tryWasm(importer);
    if (!reason) backend = 'wasm';
    else if (choice === 'wasm')
      throw new DistillError(`--backend wasm: @tensorflow/tfjs-backend-wasm does not load (${reason}).`, 2);
    else skipped.push({ backend: 'wasm', reason });
  }
  backend ??= 'cpu';

  let ok = false;
  try {
    ok = await tf.setBackend(backend);
  } catch (e) {
    if (backend !== 'wasm' || choice !== 'auto') {
      throw new DistillError(`tfjs could not initialise the '${backend}' backend: ${(e as Error).message}`);
    }
  }
  if (!ok && backend === 'wasm' && choice === 'auto') {
    skipped.push({ backend: 'wasm', reason: 'tf.setBackend("wasm") failed' });
    backend = 'cpu';
    await tf.setBackend('cpu');
  } else if (!ok) {
    throw new DistillError(`tfjs could not initialise the '${backend}' backend.`);
  }
  await tf.ready();
  let wasmMatmulFix = false;
  if (backend === 'wasm') {
    installWasmMatmulFix('wasm');
    wasmMatmulFix = true;
  }
  current = { backend, tensorflowPackage, skipped, tfjsVersion: tf.version.tfjs, wasmMatmulFix };
  if (!opts.quiet) {
    opts.logger?.info(`tfjs backend: ${backend}${tensorflowPackage ? ` (${tensorflowPackage})` : ''}`, {
      tfjs: tf.version.tfjs,
    });
  }
  return current;
}

/** The runtime chosen by initRuntime, if any. */
export function currentRuntime(): RuntimeInfo | undefined {
  return current;
}

/** For tests: forget the chosen runtime. */
export function resetRuntimeForTests(): void {
  current = undefined;
}

export { tf };
