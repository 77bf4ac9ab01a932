import type { TrainConfig } from './config.js';

/**
 * The learning-rate multiplier at a step: a linear warm-up over the first `warmupSteps` steps
 * ((step + 1) / warmupSteps, so step 0 already moves), times a step decay by `decayFactor` from
 * epoch `decayEpoch` on (epochs counted from 0). The optimizer multiplies each group's lr by it.
 */
export function lrScaleAt(cfg: Pick<TrainConfig, 'schedule'>, epoch: number, step: number): number {
  const decay = epoch >= cfg.schedule.decayEpoch ? cfg.schedule.decayFactor : 1;
  const warm = cfg.schedule.warmupSteps > 0 ? Math.min(1, (step + 1) / cfg.schedule.warmupSteps) : 1;
  return decay * warm;
}
