export type { CliCommand, CliContext } from './command.js';
export { buildContainer } from './container.js';
