import { registryOf, TOKENS, type Container } from '@distill/core';
import { METHOD_DESCRIPTIONS, METHOD_NAMES, resolveLossMethod, type LossMethod, type LossMethodOptions } from './methods.js';

export * from './dsmd.js';
export * from './queue.js';
export * from './baselines.js';
export * from './dcd.js';
export * from './methods.js';
export * from './parity.js';

/** Binds every loss method (chosen by `--losses`) under TOKENS.LossRegistry. */
export function register(container: Container): void {
  const reg = registryOf<LossMethodOptions, LossMethod>(container, TOKENS.LossRegistry, 'loss');
  for (const name of METHOD_NAMES) {
    if (!reg.has(name)) reg.add({ name, description: METHOD_DESCRIPTIONS[name], defaults: { temperature: 0.05 }, create: (cfg) => resolveLossMethod(name, cfg) });
  }
}
export * from './graph.js';
