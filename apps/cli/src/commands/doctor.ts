import { doctor, type WebGpuReport } from '@distill/core';
import { tfjsBackendFor, type TrainBackend } from '@distill/training';
import type { CliCommand } from '../command.js';
import { declareFlags } from '../flags.js';

export const doctorCommand: CliCommand = {
  command: 'doctor',
  describe: 'Show Node, tfjs backend, onnxruntime, optional engines and the WebGPU adapter on this machine',
  builder: (y, ctx) =>
    declareFlags(y, ctx, ['backend'], { defaults: { backend: 'auto' }, notes: { backend: 'the tfjs backend to try' } })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' })
      .option('webgpu', {
        type: 'boolean',
        default: true,
        describe: 'start a tiny WebGPU session in a child process (--no-webgpu skips it)',
      }),
  async handler(args) {
    const r = await doctor({ backend: tfjsBackendFor(args.backend as TrainBackend), webgpu: args.webgpu as boolean });
    if (args.json) {
      process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      return;
    }
    const lines = [
      `node            ${r.node} (${r.platform})`,
      `cpu             ${r.cpus.count} x ${r.cpus.model} (parallelism ${r.cpus.availableParallelism}), ${r.memoryGiB} GiB`,
      `tfjs            ${r.tfjs}`,
      `backend         ${r.backend}${r.wasmMatmulFix ? ' (wasm matmul fix installed)' : ''}`,
      ...r.backendSkipped.map((s) => `  skipped ${s.backend}: ${s.reason}`),
      'engines:',
      ...Object.entries(r.engines).map(
        ([k, v]) =>
          `  ${k.padEnd(30)} ${v.present ? 'yes' : 'no '} ${v.version ?? ''}${!v.present && v.note ? `  (${v.note})` : ''}`,
      ),
      `threads         onnxruntime intra-op = ${r.cpus.availableParallelism} by default; tfjs wasm runs single-threaded in Node`,
      ...(r.webgpu ? webgpuLines(r.webgpu) : []),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  },
};

/** The WebGPU section: the adapter line first, then what it rests on, then the fix when it failed. */
export function webgpuLines(w: WebGpuReport): string[] {
  const head = w.session.ok
    ? `webgpu          yes: ${w.device ? `${w.device.name} via ${w.device.driver}` : 'device unknown (the Vulkan loader named none)'}; a session started and ran in ${w.session.ms} ms${w.session.placement ? ` on ${w.session.placement}` : ''}`
    : `webgpu          no: ${w.session.error}`;
  const lines = [
    head,
    `  libvulkan     ${w.libvulkan ?? 'not found (libvulkan.so.1)'}`,
    `  drivers       ${w.icds.length ? w.icds.map((i) => `${i.driver} [${i.library}]`).join(', ') : `none (searched ${w.icdSearch})`}`,
  ];
  if (w.mesaVersion) lines.push(`  mesa          mesa-vulkan-drivers ${w.mesaVersion}`);
  if (w.physicalDevices.length) lines.push(`  devices       ${w.physicalDevices.join(', ')}`);
  lines.push(`  adapter       ${Array.isArray(w.vulkaninfo) ? w.vulkaninfo.join('; ') : w.vulkaninfo}`);
  if (w.fix) lines.push(`  fix           ${w.fix}`);
  return lines;
}
