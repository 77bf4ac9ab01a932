import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveConfig } from './config.js';
import {
  checkRunFolder,
  configDifferences,
  configHash,
  readRunRecord,
  resumeConfig,
  stableStringify,
} from './run-guard.js';
import { createTrainingContainer as builtinsContainer } from './registries.js';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

const smoke = () => resolveConfig({ container: builtins, preset: 'smoke' });
/** A run folder as runExperiment records it. */
function recordedRun(cfg = smoke()) {
  const dir = mkdtempSync(join(tmpdir(), 'distill-guard-'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ config: cfg, configHash: configHash(cfg), created: 'x' }));
  return dir;
}

describe('config hash', () => {
  it('sorted-key JSON: key order does not matter, values and nesting do; undefined members are dropped', () => {
    expect(stableStringify({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: undefined } })).toBe(
      '{"a":{"d":[1,{"x":1,"y":2}]},"b":1}',
    );
    const a = smoke();
    const b = JSON.parse(JSON.stringify(a)) as typeof a; // what config.json gives back
    expect(configHash(b)).toBe(configHash(a));
    expect(configHash({ ...a, optimizer: { ...a.optimizer, lr: a.optimizer.lr * 2 } })).not.toBe(configHash(a));
    expect(configHash({ ...a, schedule: { ...a.schedule, warmupSteps: 1 } })).not.toBe(configHash(a));
  });

  it('threads and latency are safe fields: they do not change the hash', () => {
    const a = smoke();
    expect(configHash({ ...a, threads: 3, latency: !a.latency })).toBe(configHash(a));
    expect(configDifferences(a, { ...a, threads: 3, batchSize: 16 })).toEqual(['batchSize 32 -> 16']);
  });
});

describe('run folders are records', () => {
  it('a folder with a run of another config is refused, naming the differences and what to do', () => {
    const dir = recordedRun();
    const other = { ...smoke(), seed: 7 };
    expect(() => checkRunFolder(dir, other, false)).toThrow(
      `${dir} holds a run with another config (yours differs in seed 0 -> 7). Use a new --run-dir, or --resume ${dir} to continue that run with its recorded config.`,
    );
    expect(() => checkRunFolder(dir, smoke(), false)).not.toThrow();
    expect(() => checkRunFolder(mkdtempSync(join(tmpdir(), 'distill-guard-')), other, false)).not.toThrow();
  });

  it('--resume takes the recorded config; safe flags apply, others are refused', () => {
    const dir = recordedRun();
    expect(configHash(resumeConfig(dir, { container: builtins }))).toBe(configHash(smoke()));
    expect(resumeConfig(dir, { container: builtins }).dataset.trainSubset).toBe(256);
    expect(resumeConfig(dir, { container: builtins, overrides: { threads: 1 } }).threads).toBe(1);
    expect(() => resumeConfig(dir, { container: builtins, overrides: { optimizer: { lr: 0.5 } } })).toThrow(
      /^Cannot resume .*: the config differs in optimizer\.lr 0\.001 -> 0\.5 from the recorded one\. .*only threads, latency may change/,
    );
    // the same preset and flags as the original command resolve to the recorded config: accepted
    expect(resumeConfig(dir, { container: builtins, preset: 'smoke', overrides: { threads: 2 } }).threads).toBe(2);
    expect(() => resumeConfig(dir, { container: builtins, preset: 'emoji' })).toThrow(
      /^Cannot resume .*: the config differs in /,
    );
  });

  it('--resume refuses a folder that is not a distill run', () => {
    const dir = mkdtempSync(join(tmpdir(), 'distill-guard-'));
    expect(() => resumeConfig(dir, { container: builtins })).toThrow(
      `Cannot resume: ${join(dir, 'config.json')} not found. Is ${dir} a distill run folder?`,
    );
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ name: 'my-app', config: { port: 80 } }));
    expect(() => resumeConfig(dir, { container: builtins })).toThrow(
      new RegExp(`^${dir} is not a distill run folder: .*config\\.json has no distill run config`),
    );
    expect(() => readRunRecord(dir)).toThrow(/not a distill run folder/);
    writeFileSync(join(dir, 'config.json'), '{not json');
    expect(() => checkRunFolder(dir, smoke(), false)).toThrow(/not a distill run folder/);
  });
});
