/**
 * Every hint a user is given points at something that exists: each `distill <command>` named in a help
 * text (of every command, walked from `distill --help`) or in a message of the sources (the backticked
 * commands of errors and hints) is a command of this CLI, each `<run-dir>/...` path is part of a run
 * folder's layout, and each repository path (docs/..., examples/...) is there.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '@distill/core';
import { describe, expect, it, vi } from 'vitest';
import { runCli } from './main.js';

async function help(argv: string[]): Promise<string> {
  let out = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((out += String(s)), true));
  const l = vi.spyOn(console, 'log').mockImplementation((...a) => void (out += a.join(' ') + '\n'));
  try {
    await runCli([...argv, '--help']);
  } finally {
    o.mockRestore();
    e.mockRestore();
    l.mockRestore();
  }
  return out;
}

/** Prose uses of the word "distill" that are not commands ("the distill cache", "a saved distill student"). */
const PROSE = new Set(['cache', 'student', 'students', 'against', 'and', 'is', 'the', 'code', 'index', 'run']);
/** What `distill train --run-dir <run-dir>` writes (see the smoke run of apps/cli/src/commands/serve.test.ts). */
const RUN_LAYOUT = [
  'config.json',
  'report.md',
  'experiment.json',
  'student',
  'student/best',
  'student/result.json',
  'student/metrics.jsonl',
  'student/checkpoint.safetensors',
];
/** Files distill writes into an --out folder it was given. */
const OUT_LAYOUT = [
  'skipped-images.txt',
  'index.json',
  'thumbs',
  'image.onnx',
  'text.onnx',
  'tokenizer.json',
  'teacher.json',
];

interface Tree {
  commands: Map<string, Set<string>>; // command -> its sub-commands (empty: a leaf)
  texts: Map<string, string>; // "index build" -> its help text
}

async function walk(): Promise<Tree> {
  const tree: Tree = { commands: new Map(), texts: new Map() };
  const root = await help([]);
  tree.texts.set('', root);
  const names = (text: string, prefix: string) =>
    [...text.matchAll(new RegExp(`^\\s+distill ${prefix}([a-z][a-z-]*)`, 'gm'))]
      .map((m) => m[1])
      .filter((n, i, a) => a.indexOf(n) === i);
  for (const c of names(root.split('Options:')[0], '')) {
    const text = await help([c]);
    tree.texts.set(c, text);
    const subs = new Set(names(text.split('Options:')[0], `${c} `));
    tree.commands.set(c, subs);
    for (const s of subs) tree.texts.set(`${c} ${s}`, await help([c, s]));
  }
  return tree;
}

/** Problems with the hints in `text` (what it says, and why it is wrong). */
function check(tree: Tree, text: string, where: string): string[] {
  const bad: string[] = [];
  const flat = text.replace(/\s+/g, ' ');
  for (const m of flat.matchAll(/\bdistill ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?/g)) {
    const [all, a, b] = m;
    if (PROSE.has(a) && !tree.commands.has(a)) continue;
    const subs = tree.commands.get(a);
    if (!subs) bad.push(`${where}: '${all}': no command '${a}'`);
    else if (subs.size && b && !subs.has(b) && !PROSE.has(b))
      bad.push(`${where}: '${all}': '${a}' has no sub-command '${b}' (has ${[...subs].join(', ')})`);
  }
  for (const m of flat.matchAll(/<(run-dir|run|out)>\/([A-Za-z0-9_.\-/]+[A-Za-z0-9_])/g)) {
    const layout = m[1] === 'out' ? OUT_LAYOUT : RUN_LAYOUT;
    if (!layout.includes(m[2]))
      bad.push(
        `${where}: '${m[0]}': no such path in a ${m[1] === 'out' ? '--out' : 'run'} folder (${layout.join(', ')})`,
      );
  }
  for (const m of flat.matchAll(/\b((?:docs|examples|packages|apps|tools)\/[A-Za-z0-9_.\-/]+[A-Za-z0-9_])/g)) {
    if (!existsSync(join(repoRoot(), m[1]))) bad.push(`${where}: '${m[1]}' does not exist in the repository`);
  }
  return bad;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && e.name !== 'node_modules' && e.name !== 'fixtures') out.push(...sources(p));
    else if (e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') && !e.name.endsWith('.bench.ts'))
      out.push(p);
  }
  return out;
}

describe('hints', () => {
  it('every help text names only commands, run-folder paths and repository paths that exist', async () => {
    const tree = await walk();
    expect(tree.commands.get('index')).toEqual(new Set(['build']));
    expect(tree.commands.has('site')).toBe(true);
    const bad = [...tree.texts].flatMap(([cmd, text]) => check(tree, text, `distill ${cmd} --help`.replace('  ', ' ')));
    expect(bad).toEqual([]);
    // the walker finds what it should: the three wrong hints of issue 27 are caught
    expect(check(tree, 'dataset name (see distill data list)', 'x')).toHaveLength(1);
    expect(check(tree, 'Create one with `distill export <run-dir>/best --out m`.', 'x')).toHaveLength(1);
    expect(check(tree, 'see docs/nothing-here.md', 'x')).toHaveLength(1);
  }, 120_000);

  it('every `distill ...` command and <run-dir>/ path in the messages of the sources exists', async () => {
    const tree = await walk();
    const root = repoRoot();
    const files = [
      ...sources(join(root, 'apps', 'cli', 'src')),
      ...readdirSync(join(root, 'packages')).flatMap((p) =>
        existsSync(join(root, 'packages', p, 'src')) ? sources(join(root, 'packages', p, 'src')) : [],
      ),
    ];
    const bad: string[] = [];
    for (const f of files) {
      // code, not comments
      const text = readFileSync(f, 'utf8')
        .split('\n')
        .filter((l) => !/^\s*(\/\/|\*|\/\*\*?)/.test(l))
        .join('\n');
      // backticked commands inside messages (\`distill ...\`) and "run distill ..." hints
      for (const m of text.matchAll(/\\`(distill [^`\\]*)\\`|\brun (distill [a-z][a-z -]*)/g))
        bad.push(...check(tree, m[1] ?? m[2], f.slice(root.length + 1)));
      for (const m of text.matchAll(/<(run-dir|run)>\/[A-Za-z0-9_.\-/]*[A-Za-z0-9_]/g))
        bad.push(...check(tree, m[0], f.slice(root.length + 1)));
    }
    expect(bad).toEqual([]);
  }, 120_000);
});
