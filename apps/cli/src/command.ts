import type { Argv, ArgumentsCamelCase } from 'yargs';
import type { Container } from '@distill/core';

/**
 * A CLI command, bound in the container under TOKENS.Command. Commands with a `group` become
 * sub-commands (`distill <group> <command>`), e.g. `distill parity hf <dir>`.
 */
export interface CliCommand {
  group?: string;
  command: string;
  /** false hides the command from --help (internal commands). */
  describe: string | false;
  /** Declares the options; `ctx.container` holds the registries (built-ins and plugins) help texts list. */
  builder?: (y: Argv, ctx: CliContext) => Argv;
  /** Return a number to set the exit code. */
  handler: (
    args: ArgumentsCamelCase<Record<string, unknown>>,
    ctx: CliContext,
  ) => Promise<number | void> | number | void;
}

export interface CliContext {
  container: Container;
  /** The plugin module files loaded by --plugin (a run records them in its config). */
  plugins: string[];
}

/** Descriptions of command groups, shown in `distill --help`. */
export const GROUPS: Record<string, string> = {
  parity: 'Check distill against reference outputs (Hugging Face, ONNX, official DSMD code)',
  data: 'Build and inspect datasets',
  teacher: 'Extract, cache and pretrain teachers',
  eval: 'Evaluate retrieval embeddings',
  index: 'Build vector indexes of collections with an exported model (distill export)',
};
