import { doctor, BACKEND_CHOICES, type BackendChoice } from '@distill/core';
import type { CliCommand } from '../command.js';

export const doctorCommand: CliCommand = {
  command: 'doctor',
  describe: 'Show Node, tfjs backend, onnxruntime and optional engines on this machine',
  builder: (y) =>
    y
      .option('backend', { choices: BACKEND_CHOICES, default: 'auto', describe: 'tfjs backend to try' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' }),
  async handler(args) {
    const r = await doctor({ backend: args.backend as BackendChoice });
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
        ([k, v]) => `  ${k.padEnd(30)} ${v.present ? 'yes' : 'no '} ${v.version ?? ''}${!v.present && v.note ? `  (${v.note})` : ''}`,
      ),
      `threads         onnxruntime intra-op = ${r.cpus.availableParallelism} by default; tfjs wasm runs single-threaded in Node`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  },
};
