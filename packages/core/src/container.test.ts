import { describe, expect, it } from 'vitest';
import { createContainer, registryOf, TOKENS } from './container.js';

describe('registries in the container', () => {
  it('binds one registry per token and creates entries by name with defaults under config', async () => {
    const c = createContainer();
    const reg = registryOf<{ lr: number; wd: number }, string>(c, TOKENS.BalancerRegistry, 'balancer');
    reg.add({ name: 'static', description: 'fixed', defaults: { lr: 1, wd: 2 }, create: (cfg) => `lr=${cfg.lr} wd=${cfg.wd}` });
    expect(registryOf(c, TOKENS.BalancerRegistry, 'balancer')).toBe(reg);
    expect(await reg.create('static', { wd: 5 }, { container: c })).toBe('lr=1 wd=5');
  });

  it('an unknown name lists the choices', () => {
    const c = createContainer();
    const reg = registryOf<object, number>(c, TOKENS.LossRegistry, 'loss');
    reg.add({ name: 'l1', description: '', create: () => 1 }).add({ name: 'cos', description: '', create: () => 2 });
    expect(() => reg.get('l2')).toThrow("Unknown loss 'l2'. Available: cos, l1.");
    expect(() => reg.add({ name: 'l1', description: '', create: () => 3 })).toThrow(/registered twice/);
  });
});
