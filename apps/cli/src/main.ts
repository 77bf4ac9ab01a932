import { DistillError, TOKENS } from '@distill/core';
import { loadPlugins } from '@distill/training';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { GROUPS, type CliCommand, type CliContext } from './command.js';
import { buildContainer } from './container.js';
import { userFacingError } from './errors.js';

/**
 * Parse argv and run the command. Errors a user can cause (DistillError, file-system errors such as
 * EACCES/EROFS/ENOSPC/EEXIST/ENOENT) become one line on stderr and an exit code; anything else is a bug
 * and is rethrown (printed with its stack by main()).
 */
export async function runCli(argv: string[]): Promise<number> {
  const container = buildContainer();
  const ctx: CliContext = { container, plugins: [] };
  try {
    // plugins first: their entries appear in help texts, `distill list` and name checks
    ctx.plugins = await loadPlugins(container, pluginArgs(argv));
  } catch (e) {
    const u = userFacingError(e);
    if (!u) throw e;
    process.stderr.write(`distill: ${u.message}\n`);
    return u.exitCode;
  }
  const commands = container.getAll<CliCommand>(TOKENS.Command);
  let exitCode = 0;
  const wrap = (c: CliCommand) => ({
    command: c.command,
    describe: c.describe,
    builder: (y: Argv) => (c.builder ? c.builder(y, ctx) : y),
    handler: async (args: Record<string, unknown>) => {
      const r = await c.handler(args as never, ctx);
      if (typeof r === 'number') exitCode = r;
    },
  });
  let y = yargs(argv)
    .scriptName('distill')
    .usage(
      'distill <command> [options]\n\nDistil large vision-language teachers into small dual encoders for image-text retrieval.',
    )
    .strict()
    .recommendCommands()
    .demandCommand(1, 'Name a command (see the list above).')
    .help()
    .alias('h', 'help')
    .version()
    .option('plugin', {
      type: 'string',
      global: true,
      requiresArg: true,
      describe:
        'load a plugin first: a package folder, a .js/.ts file or an installed package exporting register(container) (repeatable)',
    })
    .exitProcess(false)
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err) => {
      throw err ?? new DistillError(msg, 2);
    });
  const groups = new Map<string, CliCommand[]>();
  for (const c of commands) {
    if (c.group) groups.set(c.group, [...(groups.get(c.group) ?? []), c]);
    else y = y.command(wrap(c) as never);
  }
  for (const [g, subs] of groups) {
    y = y.command(g, GROUPS[g] ?? `${g} commands`, (gy) => {
      for (const c of subs) gy = gy.command(wrap(c) as never);
      return gy.demandCommand(1, `Name a '${g}' sub-command.`);
    });
  }
  try {
    await y.parseAsync();
  } catch (e) {
    const u = userFacingError(e);
    if (!u) throw e;
    process.stderr.write(`distill: ${u.message}\n`);
    if (u.usage) process.stderr.write(`Run 'distill --help' for usage.\n`);
    return u.exitCode;
  }
  return exitCode;
}

/** The values of every `--plugin X` / `--plugin=X` in argv (read before yargs: plugins add names yargs' help shows). */
export function pluginArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') break;
    if (a === '--plugin') {
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('-'))
        throw new DistillError('--plugin needs a value: a package folder, a .js/.ts file or a package name.', 2);
      out.push(v);
      i++;
    } else if (a.startsWith('--plugin=')) out.push(a.slice('--plugin='.length));
  }
  return out;
}

/** An argument longer than this is passed to a relaunched process through the environment (see main). */
export const LONG_ARG_CHARS = 16_384;

/**
 * onnxruntime-node crashes (segmentation fault) when creating a session in a process whose command line
 * holds an argument of ~32 KiB or more (a 30,000-character `distill search --text`). Such a command is run
 * again in a child process that gets its arguments through DISTILL_ARGV_JSON instead of its command line.
 */
async function relaunch(argv: string[]): Promise<number> {
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]], {
    stdio: 'inherit',
    env: { ...process.env, DISTILL_ARGV_JSON: JSON.stringify(argv) },
  });
  const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
  const onInt = forward('SIGINT'),
    onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    return await new Promise<number>((ok, fail) => {
      child.once('error', fail);
      child.once('exit', (code, signal) => ok(code ?? (signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : 1)));
    });
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

/** The program (bin/distill.js calls this): exit code set, bugs printed with their stack. */
export async function main(argv: string[] = hideBin(process.argv)): Promise<void> {
  const passed = process.env.DISTILL_ARGV_JSON;
  if (passed !== undefined) {
    delete process.env.DISTILL_ARGV_JSON;
    argv = JSON.parse(passed) as string[];
  } else if (argv.some((a) => a.length > LONG_ARG_CHARS)) {
    process.exitCode = await relaunch(argv);
    return;
  }
  try {
    process.exitCode = await runCli(argv);
  } catch (e) {
    process.stderr.write(`distill: unexpected error: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 1;
  }
}
