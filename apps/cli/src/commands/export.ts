import { initRuntime } from '@distill/core';
import { exportStudent, PARITY_TOLERANCE } from '@distill/serve';
import type { CliCommand } from '../command.js';

export const exportCommand: CliCommand = {
  command: 'export <student>',
  describe: 'Export a trained student (a run folder or a saved student) to ONNX: image.onnx, text.onnx, tokenizer.json, teacher.json',
  builder: (y) =>
    y
      .positional('student', { type: 'string', describe: 'run folder (its <student>/best is used) or saved student folder' })
      .option('out', { type: 'string', demandOption: true, describe: 'output folder (an ONNX teacher folder: --teacher onnx --teacher-model <out> loads it)' })
      .option('force', { type: 'boolean', default: false, describe: 'write into a non-empty folder' }),
  async handler(args) {
    await initRuntime('auto', { quiet: true });
    const r = await exportStudent(String(args.student), String(args.out), { force: Boolean(args.force) });
    const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
    process.stdout.write(
      `exported ${r.files.join(', ')} to ${r.out} (dim ${r.dim}; image.onnx ${kb(r.bytes.image)}, text.onnx ${kb(r.bytes.text)}; dynamic batch)\n` +
        `parity: max |onnxruntime - distill| = ${r.parity.image.toExponential(2)} (image), ${r.parity.text.toExponential(2)} (text) at batch ${r.parity.batches.join(' and ')} (tolerance ${PARITY_TOLERANCE})\n` +
        `model sha256 ${r.hash}\n`,
    );
  },
};
