import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@distill/core';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { pluginArgs, runCli } from './main.js';

/**
 * Pluggability: examples/plugin-student (a package outside packages/) registers the student pair
 * `deit-textcnn` and the loss `cosine-align`; `--plugin <folder>` loads it before the command runs.
 */
const root = repoRoot();
const PLUGIN = join(root, 'examples', 'plugin-student');
const tmp = mkdtempSync(join(tmpdir(), 'distill-plugin-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function distill(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
  const log = vi.spyOn(console, 'log').mockImplementation((...a) => void (stdout += a.join(' ') + '\n'));
  const error = vi.spyOn(console, 'error').mockImplementation((...a) => void (stderr += a.join(' ') + '\n'));
  try {
    return { code: await runCli(argv), stdout, stderr };
  } finally {
    for (const s of [out, err, log, error]) s.mockRestore();
  }
}

describe('distill list', () => {
  it("prints every registered entry by kind with its description; a plugin's entries appear with --plugin", async () => {
    const all = await distill(['list']);
    expect(all.code).toBe(0);
    for (const head of [
      'datasets (--dataset):',
      'teachers (--teacher):',
      'student pairs (--student; sizes with --size):',
      'loss methods (--losses):',
      'loss balancers (--balancer):',
      'evaluators:',
    ])
      expect(all.stdout).toContain(head);
    expect(all.stdout).toMatch(/^ {2}resnet-textcnn +ResNet-style CNN \+ TextCNN: no attention at all$/m);
    expect(all.stdout).toMatch(/^ {2}emoji +the embedded emoji teacher/m);
    expect(all.stdout).not.toContain('deit-textcnn');
    const withPlugin = await distill(['list', 'student', '--plugin', PLUGIN]);
    expect(withPlugin.code).toBe(0);
    expect(withPlugin.stdout).toMatch(/^ {2}deit-textcnn +plugin example: DeiT image tower/m);
    expect(withPlugin.stdout).not.toContain('loss methods');
    const json = JSON.parse((await distill(['list', 'losses', '--json', `--plugin=${PLUGIN}`])).stdout) as Record<
      string,
      { name: string }[]
    >;
    expect(Object.keys(json)).toEqual(['loss']);
    expect(json.loss.map((e) => e.name)).toContain('cosine-align');
  });

  it('an unknown kind, a missing plugin and an unknown pair are one line naming the choices', async () => {
    const kind = await distill(['list', 'optimizers']);
    expect(kind.code).toBe(2);
    expect(kind.stderr.split('\n')[0]).toBe(
      "distill: Unknown kind 'optimizers'. Available: dataset, teacher, student, loss, balancer, evaluator.",
    );
    const missing = await distill(['list', '--plugin', join(tmp, 'nope')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /^distill: Plugin not found: .*nope \(from --plugin .*nope\)\. Give a package folder/,
    );
    const pair = await distill(['train', '--student', 'deit-textcnn', '--print-config']);
    expect(pair.code).toBe(2);
    expect(pair.stderr).toMatch(
      /student\.pair: expected one of vit-bert, deit-albert, resnet-bert, vit-textcnn, resnet-textcnn, mobilenet-bert, mobilenet-glove, vit-glove, got the string "deit-textcnn"/,
    );
    expect(() => pluginArgs(['train', '--plugin'])).toThrow('--plugin needs a value');
  });

  it("a plugin dataset is chosen by name where a dataset is named: data info lists and loads it, an experiment's evaluation finds it", async () => {
    const without = await distill(['data', 'info', 'emoji-mini']);
    expect(without.code).toBe(2);
    expect(without.stderr).toMatch(/^distill: Unknown dataset 'emoji-mini'\. Available: emoji, /);
    const listed = await distill(['data', 'info', '--plugin', PLUGIN]);
    expect(listed.stdout).toMatch(/^emoji-mini +plugin example: the embedded emoji benchmark/m);
    const info = await distill(['data', 'info', 'emoji-mini', '--plugin', PLUGIN]);
    expect(info.code).toBe(0);
    const d = JSON.parse(info.stdout) as { name: string; splits: Record<string, { images: number; captions: number }> };
    expect(d.name).toBe('emoji-mini');
    expect(Object.keys(d.splits).sort()).toEqual(['test', 'train', 'val']);
    for (const s of Object.values(d.splits)) expect(s.images).toBe(48);
    // the loader experiments (and export/index build) use: the registry it is handed, plugins included
    const { loadDataset } = await import('@distill/data');
    const { createTrainingContainer, loadPlugins } = await import('@distill/training');
    const c = createTrainingContainer();
    await loadPlugins(c, [PLUGIN]);
    expect((await loadDataset('emoji-mini', {}, c)).splits.test.images.length).toBe(48);
    await expect(loadDataset('emoji-mini')).rejects.toThrow(/Unknown dataset 'emoji-mini'/);
  }, 120_000);

  it("train --help lists the registered names, the plugin's included", async () => {
    const r = await distill(['train', '--help', '--plugin', PLUGIN]);
    expect(r.stdout).toMatch(
      /student pair: vit-bert, deit-albert, resnet-bert, vit-textcnn, resnet-textcnn,\s+mobilenet-bert,\s+mobilenet-glove,\s+vit-glove,\s+deit-textcnn/,
    );
    expect(r.stdout).toMatch(/cosine-align/);
  });
});

describe('a plugin student and loss trained through the CLI', () => {
  it('npx distill train --plugin examples/plugin-student --student deit-textcnn --losses cosine-align, from the repo root, to a test RSUM line', () => {
    const run = join(tmp, 'run');
    const r = spawnSync(
      process.execPath,
      [
        join(root, 'apps/cli/bin/distill.js'),
        'train',
        '--plugin',
        'examples/plugin-student',
        '--student',
        'deit-textcnn',
        '--losses',
        'cosine-align',
        '--preset',
        'smoke',
        '--max-steps',
        '3',
        '--no-latency',
        '--run-dir',
        run,
      ],
      { cwd: root, encoding: 'utf8', timeout: 240_000, env: { ...process.env, DISTILL_CACHE_DIR: join(tmp, 'cache') } },
    );
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/^test RSUM \d+\.\d+$/m);
    expect(r.stdout).toMatch(/\| student \(cosine-align\): deit-textcnn\/tiny \|/);
    const rec = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as {
      config: { plugins: string[]; student: { pair: string } };
    };
    expect(rec.config.plugins).toEqual([join(PLUGIN, 'src', 'index.ts')]); // recorded: --resume and the baseline process load it
    const steps = readFileSync(join(run, 'student', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: number; components?: Record<string, number> });
    expect(steps.filter((s) => s.components).map((s) => Object.keys(s.components!))).toEqual([
      ['contrastive', 'align'],
      ['contrastive', 'align'],
      ['contrastive', 'align'],
    ]);
    const result = JSON.parse(readFileSync(join(run, 'student', 'result.json'), 'utf8')) as {
      engine: string;
      steps: number;
    };
    expect(result).toMatchObject({ engine: 'onnx', steps: 3 }); // the plugin loss ran inside the onnx graph
  }, 240_000);
});
