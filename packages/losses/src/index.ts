import { registryOf, TOKENS, type Container } from '@distill/core';
import { LOSS_ENTRIES, type LossMethod, type LossMethodOptions } from './methods.js';

export { expm1, eyeConst, logSoftmaxRows, maxConst, rowDot, shaped, square, tfLossOps, type Shaped } from './common.js';
export * from './dsmd.js';
export * from './queue.js';
export * from './baselines.js';
export * from './dcd.js';
export * from './methods.js';
export * from './parity.js';

/** Binds every loss method (chosen by `--losses`: `LOSS_ENTRIES`) under TOKENS.LossRegistry. */
export function register(container: Container): void {
  const reg = registryOf<LossMethodOptions, LossMethod>(container, TOKENS.LossRegistry, 'loss');
  for (const e of LOSS_ENTRIES) if (!reg.has(e.name)) reg.add(e);
}
