import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { repoRoot } from '@distill/core';
import { runCli } from '../main.js';

/** Run `distill <argv>` in this process; stdout and stderr captured. */
async function distill(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
  // yargs prints --help and its own errors through console.
  const log = vi.spyOn(console, 'log').mockImplementation((...a) => void (stdout += a.join(' ') + '\n'));
  const error = vi.spyOn(console, 'error').mockImplementation((...a) => void (stderr += a.join(' ') + '\n'));
  try {
    const code = await runCli(argv);
    return { code, stdout, stderr };
  } finally {
    for (const s of [out, err, log, error]) s.mockRestore();
  }
}

/**
 * Every `distill train` command of the README, as a user would paste it: inline code and fenced blocks
 * (with `\` continuations), after `npx distill`, `distill` or `npx nx run cli:train --`. Synopsis rows
 * (with `[optional]` parts) are returned separately.
 */
export function readmeTrainCommands(markdown: string): { runnable: string[][]; synopses: string[] } {
  const snippets: string[] = [];
  for (const m of markdown.matchAll(/```[a-z]*\n([\s\S]*?)```/g))
    snippets.push(...m[1].replace(/\\\n\s*/g, ' ').split('\n'));
  for (const m of markdown.replace(/```[\s\S]*?```/g, '').matchAll(/`([^`\n]+)`/g)) snippets.push(m[1]);
  const runnable: string[][] = [];
  const synopses: string[] = [];
  for (const snippet of snippets) {
    for (const part of snippet.replace(/\s#.*$/, '').split('&&')) {
      const m = part.trim().match(/^(?:npx )?(?:distill train|nx run cli:train)(?:\s+--(?=\s|$))?(.*)$/);
      if (!m) continue;
      const rest = m[1].replace(/\\\|/g, '|').trim();
      if (rest.includes('[')) synopses.push(rest);
      else runnable.push(rest ? rest.split(/\s+/) : []);
    }
  }
  return { runnable, synopses };
}

const README = readFileSync(join(repoRoot(), 'README.md'), 'utf8');

describe('distill train: the README commands', () => {
  let cwd: string;
  let dir: string;
  beforeEach(() => {
    cwd = process.cwd();
    dir = mkdtempSync(join(tmpdir(), 'distill-readme-'));
    process.chdir(dir);
  });
  afterEach(() => process.chdir(cwd));

  it('the README has the main job, the Nx example and the paper command', () => {
    const { runnable, synopses } = readmeTrainCommands(README);
    expect(runnable).toContainEqual([]);
    expect(runnable).toContainEqual(['--student', 'deit-albert', '--epochs', '4']);
    expect(runnable.some((c) => c.includes('--preset') && c.includes('paper') && c.includes('--size'))).toBe(true);
    expect(synopses.length).toBeGreaterThan(0);
  });

  it('each runnable README command resolves with --print-config (missing teacher and data folders too) and creates no folder', async () => {
    const missing = join(dir, 'not-there');
    for (const cmd of readmeTrainCommands(README).runnable) {
      // <placeholders> -> missing folders; a --plugin path is relative to the repo root, where the README runs it
      const args = cmd.map((a, i) =>
        cmd[i - 1] === '--plugin' ? join(repoRoot(), a) : a.replace(/^<(.+)>$/, `${missing}/$1`),
      );
      const r = await distill(['train', ...args, '--print-config']);
      expect(r.stderr, `distill train ${args.join(' ')}`).toBe('');
      expect(r.code).toBe(0);
      if (args.includes('--help')) {
        expect(r.stdout).toMatch(/^distill train \[options\]/);
        continue;
      }
      expect(r.stdout, `distill train ${args.join(' ')}`).toMatch(/^\{/);
      const cfg = JSON.parse(r.stdout);
      if (args.includes('--plugin'))
        expect([cfg.student.pair, cfg.losses, cfg.plugins.length]).toEqual(['deit-textcnn', 'cosine-align', 1]);
      if (args.includes('paper')) {
        expect([cfg.student.pair, cfg.student.preset, cfg.teacher.name, cfg.dataset.name, cfg.losses]).toEqual([
          'vit-bert',
          'base',
          'beit3',
          'flickr30k',
          'dsmd',
        ]);
        expect(cfg.teacher.model).toBe(`${missing}/beit3-export`);
        expect(cfg.dataset.dataRoot).toBe(`${missing}/flickr30k-dir`);
      }
      expect(readdirSync(dir), `distill train ${args.join(' ')} --print-config`).toEqual([]);
    }
  });

  it('every flag in the README synopsis exists, and each listed preset and size resolves', async () => {
    const help = (await distill(['train', '--help'])).stdout;
    for (const synopsis of readmeTrainCommands(README).synopses) {
      for (const [, flag] of synopsis.matchAll(/(--[a-z-]+)/g)) expect(help).toContain(`${flag} `);
      for (const [, flag, choices] of synopsis.matchAll(/(--[a-z-]+) ([a-z-]+(?:\|[a-z-]+)+)/g)) {
        for (const choice of choices.split('|')) {
          const r = await distill(['train', flag, choice, '--print-config']);
          expect(r.stderr, `${flag} ${choice}`).toBe('');
          const cfg = JSON.parse(r.stdout);
          if (flag === '--size') expect(cfg.student.preset).toBe(choice);
        }
      }
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('distill train: --preset and --size', () => {
  it('--size sets the student size; --preset only takes experiment presets', async () => {
    const r = await distill(['train', '--preset', 'smoke', '--size', 'small', '--print-config']);
    expect(r.code).toBe(0);
    const cfg = JSON.parse(r.stdout);
    expect([cfg.student.preset, cfg.batchSize]).toEqual(['small', 32]);
  });

  it('a size passed to --preset says to use --size', async () => {
    const r = await distill(['train', '--preset', 'base', '--print-config']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      "distill: --preset takes an experiment preset (emoji, smoke, emoji-teacher, glyphs-teacher, glyphs, paper), got 'base'. The student size has its own flag: use --size base.\nRun 'distill --help' for usage.\n",
    );
  });

  it("the README's old paper command (--preset paper ... --preset base) points to --size", async () => {
    const r = await distill([
      'train',
      '--preset',
      'paper',
      '--student',
      'vit-bert',
      '--preset',
      'base',
      '--print-config',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^distill: --preset was given 2 times \(paper, base\); give it once\. The student size has its own flag: use --size base\.\n/,
    );
  });

  it('an unknown size lists the sizes; a non-number for a number flag names the flag', async () => {
    expect((await distill(['train', '--size', 'huge', '--print-config'])).stderr).toMatch(
      /Invalid values:[\s\S]*size.*"huge".*Choices: "tiny", "small", "base"/,
    );
    const r = await distill(['train', '--seed', 'abc', '--print-config']);
    expect([r.code, r.stderr.split('\n')[0]]).toEqual([2, 'distill: --seed expects a number.']);
  });

  it('--image-root and --annotations reach the dataset config; help lists --size and --image-root', async () => {
    const cfg = JSON.parse(
      (
        await distill([
          'train',
          '--dataset',
          'jsonl',
          '--annotations',
          'a.jsonl',
          '--image-root',
          'imgs',
          '--print-config',
        ])
      ).stdout,
    );
    expect(cfg.dataset).toMatchObject({ name: 'jsonl', annotations: 'a.jsonl', imageRoot: 'imgs' });
    const help = (await distill(['train', '--help'])).stdout;
    expect(help).toMatch(/--size +student size: tiny, small, base/);
    expect(help).toMatch(/--image-root/);
    expect(help).toMatch(/--preset paper[\s\S]* --size\s+base/);
  });

  it('config errors from a file name the file and the key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'distill-cfg-'));
    const file = join(dir, 'exp.yaml');
    (await import('node:fs')).writeFileSync(file, 'schedule:\n  epoch: 3\n');
    const r = await distill(['train', '--config', file, '--print-config']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      `distill: Invalid config: schedule.epoch: unknown key (did you mean 'epochs'?) (schedule takes epochs, decayEpoch, decayFactor, warmupSteps) (from ${file}).`,
    );
  });

  it('--no-normalize (and --normalize false) switch off the L2 normalisation of the features the losses see; help says evaluation keeps it', async () => {
    const cfg = async (...flags: string[]) =>
      JSON.parse((await distill(['train', '--preset', 'smoke', ...flags, '--print-config'])).stdout) as {
        student: { normalize: boolean };
      };
    expect((await cfg()).student.normalize).toBe(true);
    expect((await cfg('--no-normalize')).student.normalize).toBe(false);
    expect((await cfg('--normalize', 'false')).student.normalize).toBe(false);
    expect((await distill(['train', '--help'])).stdout).toMatch(
      /--normalize[\s\S]*evaluation, retrieval and export always\s+normalise/,
    );
  });
});
