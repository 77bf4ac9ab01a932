import { describe, expect, it } from 'vitest';
import { createContainer, REGISTRY_KINDS, registryByKind, registryOf, TOKENS } from './container.js';

describe('registries in the container', () => {
  it('binds one registry per token and creates entries by name with defaults under config', async () => {
    const c = createContainer();
    const reg = registryOf<{ lr: number; wd: number }, string>(c, TOKENS.BalancerRegistry, 'balancer');
    reg.add({
      name: 'static',
      description: 'fixed',
      defaults: { lr: 1, wd: 2 },
      create: (cfg) => `lr=${cfg.lr} wd=${cfg.wd}`,
    });
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

  it('adding the same entry object again is a no-op (register twice), another entry under its name is refused', () => {
    const reg = registryOf<object, number>(createContainer(), TOKENS.DatasetRegistry, 'dataset');
    const e = { name: 'emoji', description: 'built in', create: () => 1 };
    reg.add(e).add(e);
    expect(reg.names()).toEqual(['emoji']);
    expect(() => reg.add({ ...e })).toThrow(
      "dataset 'emoji' is registered twice (a plugin or package reuses a built-in name): rename one of them.",
    );
  });

  it('a pattern entry is chosen for the names it accepts, and create is told the name', async () => {
    const c = createContainer();
    const reg = registryOf<{ model?: string }, string>(c, TOKENS.TeacherRegistry, 'teacher');
    reg.add({ name: 'clip', description: '', create: () => 'clip' });
    reg.add({
      name: 'student',
      description: 'a saved student folder',
      matches: (_n, cfg) => cfg.model === 'saved',
      create: (cfg, ctx) => `${ctx.name} from ${cfg.model}`,
    });
    expect(await reg.create('clip', { model: 'saved' }, { container: c })).toBe('clip'); // an exact name wins
    expect(await reg.create('mine', { model: 'saved' }, { container: c })).toBe('mine from saved');
    expect(reg.accepts('mine', { model: 'other' })).toBe(false);
    expect([reg.accepts('mine', { model: 'saved' }), reg.has('mine')]).toEqual([true, false]);
    expect(() => reg.get('mine', { model: 'other' })).toThrow("Unknown teacher 'mine'. Available: clip, student.");
  });

  it('registryByKind finds each kind under its token; an unknown kind lists the kinds', () => {
    const c = createContainer();
    expect(REGISTRY_KINDS.map((k) => k.kind)).toEqual([
      'dataset',
      'teacher',
      'student',
      'loss',
      'balancer',
      'evaluator',
    ]);
    expect(registryByKind(c, 'loss')).toBe(registryOf(c, TOKENS.LossRegistry, 'loss'));
    expect(() => registryByKind(c, 'optimizer' as never)).toThrow(
      "Unknown registry kind 'optimizer'. Available: dataset, teacher, student, loss, balancer, evaluator.",
    );
  });
});
