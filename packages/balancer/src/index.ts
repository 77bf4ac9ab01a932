import { registryOf, TOKENS, type Balancer, type Container } from '@distill/base';
import { BALANCERS, type BalancerConfig } from './balancers.js';

export * from './balancers.js';

/** Binds the balancers under TOKENS.BalancerRegistry. */
export function register(container: Container): void {
  const reg = registryOf<BalancerConfig, Balancer>(container, TOKENS.BalancerRegistry, 'balancer');
  for (const b of BALANCERS)
    if (!reg.has(b.name)) reg.add({ name: b.name, description: b.description, create: (cfg) => b.create(cfg ?? {}) });
}
