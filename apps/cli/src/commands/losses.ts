import { initRuntime } from '@distill/core';
import { runLossParityFile } from '@distill/losses';
import type { CliCommand } from '../command.js';

export const lossCommands: CliCommand[] = [
  {
    group: 'parity',
    command: 'losses <fixture>',
    describe: "Run distill's DSMD/DCD losses, queue and balancer on a fixture's inputs; print its output keys as JSON",
    builder: (y) => y.positional('fixture', { type: 'string', describe: 'fixture JSON (format of shared/parity/dsmd_public.json)' }),
    async handler(args) {
      await initRuntime('cpu', { quiet: true });
      process.stdout.write(JSON.stringify(runLossParityFile(args.fixture as string)) + '\n');
    },
  },
];
