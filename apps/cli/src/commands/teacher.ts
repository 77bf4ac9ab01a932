import { DistillError } from '@distill/core';
import { runOnnxTeacherParity } from '@distill/teacher-adapters';
import type { CliCommand } from '../command.js';

export const teacherCommands: CliCommand[] = [
  {
    group: 'parity',
    command: 'onnx-teacher <dir>',
    describe: 'Run an exported teacher folder (image.onnx, text.onnx, reference.json) and print the max abs diff per output',
    builder: (y) =>
      y
        .positional('dir', { type: 'string', describe: 'folder with image.onnx, text.onnx and reference.json' })
        .option('preset', { type: 'string', default: 'clip', describe: 'teacher preset whose input/output names to use' }),
    async handler(args) {
      if (!args.dir) throw new DistillError('Name the teacher folder.', 2);
      process.stdout.write(JSON.stringify(await runOnnxTeacherParity(args.dir as string, args.preset as string)) + '\n');
    },
  },
];
