/**
 * What onnxruntime-node's WebGPU execution provider (Dawn on Vulkan) needs on Linux and whether it
 * starts: the Vulkan loader (libvulkan.so.1), a Vulkan driver (an ICD manifest naming its library)
 * and a device the driver exposes. The session is started in a child process with a timeout: a
 * broken driver can abort the process that loads it. The device name comes from the Vulkan
 * loader's own log (VK_LOADER_DEBUG=driver), since onnxruntime-node reports no adapter info.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { encodeModel } from '@distill/autodiff';

/** The apt line that gives a Debian 12 machine without a GPU a Vulkan driver Dawn accepts (Mesa lavapipe >= 25). */
export const LAVAPIPE_INSTALL =
  'apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1 (add the bookworm-backports suite first: docs/gpu.md)';

export interface VulkanIcd {
  /** The manifest file (JSON). */
  manifest: string;
  /** Its ICD.library_path. */
  library: string;
  /** A readable name of the driver behind the library (e.g. "Mesa lavapipe (CPU, software)"). */
  driver: string;
  /** True for drivers that run on the CPU. */
  software: boolean;
  apiVersion?: string;
}

export interface WebGpuReport {
  /** Where libvulkan.so.1 was found, or null. */
  libvulkan: string | null;
  /** Where the ICD manifests were looked for (an env override, or the loader's default folders). */
  icdSearch: string;
  icds: VulkanIcd[];
  /** The installed Debian mesa-vulkan-drivers version, when dpkg knows it. */
  mesaVersion?: string;
  /** The tiny WebGPU session in a child process: started and computed the right values, and how long it took. */
  session: { ok: boolean; ms: number; error?: string; placement?: string };
  /** Physical devices the Vulkan loader listed, and the one the WebGPU device was created on (from the loader's log). */
  physicalDevices: string[];
  device?: { name: string; library: string; driver: string; software: boolean };
  /** `vulkaninfo --summary` lines when vulkan-tools is installed (adapter vendor, limits), else a note. */
  vulkaninfo: string[] | string;
  /** One line saying what to do when the session did not start. */
  fix?: string;
}

const DRIVERS: [RegExp, string, boolean][] = [
  [/lvp/, 'Mesa lavapipe (CPU, software)', true],
  [/swiftshader/i, 'SwiftShader (CPU, software)', true],
  [/nvidia/i, 'NVIDIA proprietary', false],
  [/nouveau/, 'Mesa NVK (NVIDIA, open source)', false],
  [/radeon/, 'Mesa RADV (AMD)', false],
  [/intel_hasvk/, 'Mesa hasvk (Intel gen 7-8)', false],
  [/intel/, 'Mesa ANV (Intel)', false],
  [/virtio/, 'Mesa venus (virtio-gpu guest)', false],
  [/gfxstream/, 'gfxstream (emulator guest)', false],
  [/dzn/, 'Mesa dozen (Direct3D 12)', false],
  [/freedreno/, 'Mesa turnip (Qualcomm Adreno)', false],
  [/panfrost|panvk/, 'Mesa PanVK (Arm Mali)', false],
  [/broadcom|v3dv/, 'Mesa v3dv (Raspberry Pi)', false],
];

/** The driver behind an ICD library path (by its file name). */
export function driverOf(library: string): { driver: string; software: boolean } {
  const name = basename(library);
  for (const [re, driver, software] of DRIVERS) if (re.test(name)) return { driver, software };
  return { driver: `unknown (${name})`, software: false };
}

type Env = Record<string, string | undefined>;

function jsonFilesIn(path: string): string[] {
  try {
    if (statSync(path).isDirectory())
      return readdirSync(path)
        .filter((f) => f.endsWith('.json'))
        .sort()
        .map((f) => join(path, f));
    return [path];
  } catch {
    return [];
  }
}

/**
 * The ICD manifests the Vulkan loader would read: VK_DRIVER_FILES (or the older VK_ICD_FILENAMES)
 * replaces the search, VK_ADD_DRIVER_FILES adds to it; otherwise the XDG config/data folders'
 * vulkan/icd.d (/etc/xdg, /etc, ~/.local/share, /usr/local/share, /usr/share).
 */
export function findIcds(env: Env = process.env): { search: string; icds: VulkanIcd[] } {
  const override = env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES;
  let files: string[];
  let search: string;
  if (override) {
    search = `${env.VK_DRIVER_FILES ? 'VK_DRIVER_FILES' : 'VK_ICD_FILENAMES'}=${override}`;
    files = override.split(':').filter(Boolean).flatMap(jsonFilesIn);
  } else {
    const config = (env.XDG_CONFIG_DIRS || '/etc/xdg').split(':');
    const data = (env.XDG_DATA_DIRS || '/usr/local/share:/usr/share').split(':');
    const home = env.HOME ?? homedir();
    const dirs = [...config, '/etc', join(home, '.local/share'), ...data]
      .filter(Boolean)
      .map((d) => join(d, 'vulkan/icd.d'));
    const add = (env.VK_ADD_DRIVER_FILES ?? '').split(':').filter(Boolean);
    search = [...dirs, ...add].join(', ');
    files = [...new Set([...add, ...dirs].flatMap(jsonFilesIn))];
  }
  const icds: VulkanIcd[] = [];
  for (const manifest of files) {
    try {
      const j = JSON.parse(readFileSync(manifest, 'utf8')) as { ICD?: { library_path?: string; api_version?: string } };
      const library = j.ICD?.library_path;
      if (!library) continue;
      icds.push({ manifest, library, ...driverOf(library), apiVersion: j.ICD?.api_version });
    } catch {
      // unreadable or not JSON: the loader skips it too
    }
  }
  return { search, icds };
}

/** Where libvulkan.so.1 is: the dynamic linker's cache (ldconfig -p), else LD_LIBRARY_PATH and the usual folders. */
export function findLibvulkan(env: Env = process.env): string | null {
  for (const ldconfig of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
    try {
      const out = execFileSync(ldconfig, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const m = /^\s*libvulkan\.so\.1 \(([^)]*)\) => (\S+)/m.exec(out);
      if (m && (process.arch !== 'x64' || m[1].includes('x86-64'))) return m[2];
      break;
    } catch {
      // try the next name
    }
  }
  const dirs = [
    ...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/lib/x86_64-linux-gnu',
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/lib',
  ];
  for (const d of dirs) if (existsSync(join(d, 'libvulkan.so.1'))) return join(d, 'libvulkan.so.1');
  return null;
}

/**
 * Node placements from onnxruntime's verbose log (logSeverityLevel 0): execution provider -> its nodes.
 * When every node runs on one provider onnxruntime lists none: that provider gets one `{ op: '*', node: '*' }`.
 */
export function parseNodePlacements(log: string): Record<string, { op: string; node: string }[]> {
  const out: Record<string, { op: string; node: string }[]> = {};
  let ep: string | undefined;
  for (const line of log.split('\n')) {
    if (!line.includes('VerifyEachNodeIsAssignedToAnEp')) {
      ep = undefined;
      continue;
    }
    const head = /Node\(s\) placed on \[(\w+)\]/.exec(line);
    if (head) {
      ep = head[1];
      out[ep] ??= [];
      continue;
    }
    // a single provider: onnxruntime names no nodes
    const all = /All nodes placed on \[(\w+)\]/.exec(line);
    if (all) {
      out[all[1]] ??= [{ op: '*', node: '*' }];
      continue;
    }
    const node = /VerifyEachNodeIsAssignedToAnEp\]\s{3}(\S+) \((.*)\)\s*$/.exec(line);
    if (node && ep) out[ep].push({ op: node[1], node: node[2] });
    else ep = undefined;
  }
  return out;
}

/** The loader's physical devices and the device created (VK_LOADER_DEBUG=driver output). */
export function parseLoaderLog(log: string): { physicalDevices: string[]; using?: { name: string; library: string } } {
  const devices = new Set<string>();
  for (const m of log.matchAll(/DRIVER:\s+\[\d+\] (.+?)\s*$/gm)) devices.add(m[1]);
  const u = /Using "(.+)" with driver: "(.+)"/.exec(log);
  return { physicalDevices: [...devices], using: u ? { name: u[1], library: u[2] } : undefined };
}

function dpkgVersion(pkg: string): string | undefined {
  try {
    return (
      execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim() || undefined
    );
  } catch {
    return undefined;
  }
}

function vulkaninfoSummary(env: Env): string[] | string {
  try {
    const out = execFileSync('vulkaninfo', ['--summary'], {
      encoding: 'utf8',
      timeout: 20_000,
      env: env as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const keep =
      /^\s*(apiVersion|driverVersion|vendorID|deviceID|deviceType|deviceName|driverID|driverName|driverInfo)\s*=/;
    const lines = out
      .split('\n')
      .filter((l) => keep.test(l))
      .map((l) => l.trim().replace(/\s*=\s*/, ' = '));
    return lines.length ? lines : 'vulkaninfo --summary listed no device';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT'
      ? 'vulkaninfo not installed (apt-get install vulkan-tools shows vendor, device and limits); onnxruntime-node exposes no adapter info'
      : `vulkaninfo --summary failed: ${String((e as Error).message).split('\n')[0]}`;
  }
}

/** Relu(x) + x on [4]: the values the probe must get back from the device. */
function probeModel(): Uint8Array {
  return encodeModel({
    nodes: [
      { op: 'Relu', name: 'probe_relu', inputs: ['x'], outputs: ['r'] },
      { op: 'Add', name: 'probe_add', inputs: ['r', 'x'], outputs: ['y'] },
    ],
    initializers: [],
    inputs: [{ name: 'x', dtype: 'float32', shape: [4] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [4] }],
    opset: 20,
  });
}

// Runs in the child: create a WebGPU session, run it, print one JSON line after a marker.
const CHILD = `
const ort = require(process.argv[1]);
const model = Buffer.from(process.argv[2], 'base64');
(async () => {
  const t0 = performance.now();
  try {
    const s = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'], logSeverityLevel: 0, logVerbosityLevel: 0 });
    const r = await s.run({ x: new ort.Tensor('float32', Float32Array.from([-2, -0.5, 0.5, 3]), [4]) });
    const ms = performance.now() - t0;
    await s.release();
    process.stdout.write('\\n@@probe ' + JSON.stringify({ y: Array.from(r.y.data), ms }) + '\\n');
  } catch (e) {
    process.stdout.write('\\n@@probe ' + JSON.stringify({ error: String(e && e.message || e).split('\\n')[0], ms: performance.now() - t0 }) + '\\n');
  }
})();
`;

export interface ProbeResult {
  ok: boolean;
  ms: number;
  error?: string;
  /** Where the probe's two nodes ran ("WebGpuExecutionProvider" when both did). */
  placement?: string;
  log: string;
}

/** Starts a tiny WebGPU session in a child process (killed after `timeoutMs`); checks its values and where it ran. */
export function probeWebGpuSession(opts: { timeoutMs?: number; env?: Env } = {}): Promise<ProbeResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
  const env = { ...(opts.env ?? process.env), VK_LOADER_DEBUG: 'driver' };
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', CHILD, ortPath, Buffer.from(probeModel()).toString('base64')], {
      env: env as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const wall = performance.now() - t0;
      const line = /^@@probe (.*)$/m.exec(log);
      if (timedOut)
        return resolve({ ok: false, ms: wall, error: `no answer within ${timeoutMs / 1000} s (killed)`, log });
      if (!line)
        return resolve({
          ok: false,
          ms: wall,
          error: `the process ended (${signal ?? `exit ${code}`}) before answering: the Vulkan driver crashed it`,
          log,
        });
      const r = JSON.parse(line[1]) as { y?: number[]; ms: number; error?: string };
      // onnxruntime prefixes its source location and the failed check: keep the sentence after them
      if (r.error)
        return resolve({ ok: false, ms: r.ms, error: r.error.replace(/^\/onnxruntime_src\/.* was false\. /, ''), log });
      const want = [-2, -0.5, 1, 6];
      if (!r.y || r.y.some((v, i) => v !== want[i]))
        return resolve({
          ok: false,
          ms: r.ms,
          error: `wrong values from the device: [${r.y}] instead of [${want}]`,
          log,
        });
      const placed = parseNodePlacements(log);
      const eps = Object.entries(placed)
        .filter(([, nodes]) => nodes.some((n) => n.node === '*' || n.node.startsWith('probe_')))
        .map(([ep]) => ep);
      resolve({ ok: true, ms: r.ms, placement: eps.join(', ') || 'unknown', log });
    });
  });
}

/** Everything `distill doctor` says about WebGPU, with the one-line fix when the session does not start. */
export async function webgpuReport(opts: { timeoutMs?: number; env?: Env } = {}): Promise<WebGpuReport> {
  const env = opts.env ?? process.env;
  const libvulkan = findLibvulkan(env);
  const { search, icds } = findIcds(env);
  const mesaVersion = dpkgVersion('mesa-vulkan-drivers');
  const probe = await probeWebGpuSession({ timeoutMs: opts.timeoutMs, env });
  const loader = parseLoaderLog(probe.log);
  const device = loader.using ? { ...loader.using, ...driverOf(loader.using.library) } : undefined;
  const report: WebGpuReport = {
    libvulkan,
    icdSearch: search,
    icds,
    mesaVersion,
    session: { ok: probe.ok, ms: Math.round(probe.ms), error: probe.error, placement: probe.placement },
    physicalDevices: loader.physicalDevices,
    device,
    vulkaninfo: vulkaninfoSummary(env),
  };
  if (!probe.ok)
    report.fix = fixFor(report, env, existsSync('/dev/nvidiactl') || existsSync('/proc/driver/nvidia/version'));
  return report;
}

/** The one-line fix for a report whose session failed (`nvidia`: the machine has an NVIDIA kernel driver). */
export function fixFor(
  r: Pick<WebGpuReport, 'libvulkan' | 'icds' | 'icdSearch' | 'mesaVersion' | 'session'>,
  env: Env,
  nvidia: boolean,
): string {
  const gpuFix =
    "an NVIDIA GPU is present: install the Vulkan loader (libvulkan1) and point the loader at the NVIDIA driver's ICD, e.g. VK_DRIVER_FILES=/usr/share/vulkan/icd.d/nvidia_icd.json (or /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json in containers)";
  if (!r.libvulkan) return nvidia ? gpuFix : `no libvulkan.so.1 (the Vulkan loader): ${LAVAPIPE_INSTALL}`;
  if (r.icds.length === 0)
    return nvidia
      ? gpuFix
      : `no Vulkan driver (no ICD manifest in ${env.VK_DRIVER_FILES || env.VK_ICD_FILENAMES ? r.icdSearch : "the loader's folders"}): ${LAVAPIPE_INSTALL}`;
  if (nvidia && !r.icds.some((i) => /nvidia/i.test(i.library))) return gpuFix;
  const mesaMajor = r.mesaVersion ? Number(/^(?:\d+:)?(\d+)/.exec(r.mesaVersion)?.[1]) : NaN;
  if (r.icds.every((i) => i.software) && mesaMajor < 25)
    return `Mesa ${r.mesaVersion} is too old for Dawn (bookworm's own 22.3.6 lacks a feature it needs): ${LAVAPIPE_INSTALL}`;
  return `the WebGPU session failed with the drivers above (${r.session.error}); try VK_DRIVER_FILES=<one ICD json> to pick one, or on a CPU machine ${LAVAPIPE_INSTALL}`;
}
