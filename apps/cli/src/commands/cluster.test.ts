import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@distill/core';
import { planExperiment } from '@distill/experiments';
import { Job } from 'kubernetes-models/batch/v1';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { createTrainingContainer as builtinsContainer } from '@distill/training';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = builtinsContainer();

const bin = join(repoRoot(), 'apps', 'cli', 'bin', 'distill.js');

describe('distill experiment --executor k8s', () => {
  it('prints an Indexed Job the Kubernetes schema accepts, one completion per planned run, and writes it', () => {
    const out = mkdtempSync(join(tmpdir(), 'distill-k8s-cli-'));
    const r = spawnSync(
      process.execPath,
      [
        bin,
        'experiment',
        'table2',
        '--scale',
        'smoke',
        '--seeds',
        '2',
        '--executor',
        'k8s',
        '--image',
        'ghcr.io/example/distill:1',
        '--volume-claim',
        'distill-store',
        '--parallel',
        '3',
        '--out',
        out,
      ],
      {
        cwd: repoRoot(),
        encoding: 'utf8',
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const job = YAML.parse(r.stdout);
    new Job(job).validate();
    expect(job.spec.completions).toBe(
      planExperiment('table2', { container: builtins, scale: 'smoke', seeds: 2 }).tasks.length,
    );
    expect(job.spec.parallelism).toBe(3);
    expect(r.stderr).toMatch(/Indexed Job of 16 tasks written to (\S+\.job\.yaml)/);
    const file = /written to (\S+\.job\.yaml)/.exec(r.stderr)![1];
    expect(YAML.parse(readFileSync(file, 'utf8'))).toEqual(job);
    // without the claim: a one-line error, no manifest
    const bad = spawnSync(
      process.execPath,
      [bin, 'experiment', 'table2', '--scale', 'smoke', '--executor', 'k8s', '--image', 'img', '--out', out],
      { cwd: repoRoot(), encoding: 'utf8' },
    );
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain(
      'distill: --executor k8s needs --volume-claim <a ReadWriteMany PersistentVolumeClaim for the store> (docs/distributed.md).\n',
    );
    expect(bad.stdout).toBe('');
  }, 120_000);
});
