import { initRuntime, readJsonFile } from '@distill/core';
import { createBalancer, type DsmdOfficialBalancer } from '@distill/balancer';
import { compareToFixture, formatParityReport, runLossParityFile } from '@distill/losses';
import type { CliCommand } from '../command.js';

export const lossCommands: CliCommand[] = [
  {
    group: 'parity',
    command: 'losses <fixture>',
    describe:
      "Run distill's losses on a fixture's inputs (format of shared/parity/dsmd_public.json or baselines.json); print each output key's value and relative difference, worst last as worst_rel=<x>",
    builder: (y) =>
      y
        .positional('fixture', {
          type: 'string',
          describe: 'fixture JSON (format of shared/parity/dsmd_public.json or shared/parity/baselines.json)',
        })
        .option('tolerance', { type: 'number', default: 1e-5, describe: 'exit 1 when worst_rel is above this' })
        .option('json', {
          type: 'boolean',
          default: false,
          describe: "print distill's values under the fixture's output keys as JSON instead",
        }),
    async handler(args) {
      await initRuntime('cpu', { quiet: true });
      const file = args.fixture as string;
      const got = runLossParityFile(file, (c) => createBalancer('dsmd-official', c) as DsmdOfficialBalancer);
      const expected = readJsonFile<{ outputs?: Record<string, unknown> }>(file).outputs;
      if (args.json || !expected) {
        process.stdout.write(JSON.stringify(got) + '\n');
        return;
      }
      const { lines, worst } = formatParityReport(got, compareToFixture(got, expected));
      process.stdout.write(lines.join('\n') + '\n');
      if (!(worst <= (args.tolerance as number))) {
        process.stderr.write(
          `worst_rel ${worst.toExponential(2)} is above the tolerance ${args.tolerance}: distill's losses disagree with ${file}.\n`,
        );
        return 1;
      }
    },
  },
];
