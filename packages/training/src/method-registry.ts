import { registryByKind, type Balancer, type Container } from '@distill/core';
import type { LossMethod, LossMethodOptions } from '@distill/losses';
import type { TrainConfig } from './config.js';
import { resolveMethod, type Method } from './methods.js';

/**
 * `--losses` and `--balancer` chosen in the loss and balancer registries (built-ins, DSMD component
 * lists and plugins alike), wrapped as the trainer's Method (balancer, feature queues, graph feeds).
 */
export async function methodFor(cfg: TrainConfig, container: Container): Promise<Method> {
  const ctx = { container };
  const { temperature, margin, hardNegative, dcd } = cfg.lossOptions;
  const method = await registryByKind<LossMethodOptions, LossMethod>(container, 'loss').create(
    cfg.losses,
    { temperature, margin, hardNegative, ...(dcd ? { dcd } : {}) },
    ctx,
  );
  const balancerName = cfg.balancer ?? method.defaultBalancer;
  // balancer settings, when the config has them (balancerOptions)
  const options = (cfg as { balancerOptions?: Record<string, unknown> }).balancerOptions ?? {};
  const balancer = await registryByKind<Record<string, unknown>, Balancer>(container, 'balancer').create(
    balancerName,
    { ...options },
    ctx,
  );
  return resolveMethod(cfg, { method, balancer: () => balancer });
}

/** Whether the config's `--losses` needs teacher features (its loss method chosen in the registry: a plugin's too). */
export async function needsTeacher(cfg: TrainConfig, container: Container): Promise<boolean> {
  return (await methodFor(cfg, container)).needsTeacher;
}
