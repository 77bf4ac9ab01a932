import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@distill/core';
import { afterAll, describe, expect, it } from 'vitest';

// Broken plugins and plugins edited before --resume, through the CLI. The plugins live in a temp folder
// outside the repository (as a user's would).
const root = repoRoot();
const tmp = mkdtempSync(join(tmpdir(), 'distill-plugin-faults-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const env = { ...process.env, DISTILL_CACHE_DIR: join(tmp, 'cache'), DISTILL_PLUGIN_TIMEOUT_MS: '1500' };
const distill = (...args: string[]) =>
  spawnSync(process.execPath, [join(root, 'apps/cli/bin/distill.js'), ...args], {
    cwd: tmp,
    encoding: 'utf8',
    env,
    timeout: 120_000,
  });
const plugin = (name: string, text: string) => {
  const f = join(tmp, name);
  writeFileSync(f, text);
  return f;
};
const oneLine = (s: string) => {
  expect(s).not.toMatch(/\n\s+at /);
  expect(s).not.toContain('unexpected error');
};

describe('broken plugins: one line naming the plugin file and line, exit 2', () => {
  it('a syntax error, a throw at import, a throw in register() (sync and async), a register() that never settles', () => {
    const cases: [string, string, RegExp][] = [
      [
        'syntax.mjs',
        'export function register(c) {\n  const x = ;\n}\n',
        /failed to load at .*syntax\.mjs(:2)?.*SyntaxError.*Fix the syntax error there\./,
      ],
      [
        'import-throw.mjs',
        'const a = 1;\nthrow new Error("no config file");\nexport function register() {}\n',
        /failed to load at .*import-throw\.mjs:2:\d+: no config file\. Fix the plugin/,
      ],
      [
        'register-throw.mjs',
        'export function register(c) {\n  throw new TypeError("bad container use");\n}\n',
        /register\(\) failed at .*register-throw\.mjs:2:\d+: TypeError: bad container use\./,
      ],
      [
        'register-reject.mjs',
        'export async function register(c) {\n  await null;\n  throw new Error("async boom");\n}\n',
        /register\(\) failed at .*register-reject\.mjs:3:\d+: async boom\./,
      ],
      [
        'register-hang.mjs',
        'export function register(c) {\n  return new Promise(() => {});\n}\n',
        /register-hang\.mjs\): register\(\) did not finish within 1\.5 s/,
      ],
    ];
    for (const [name, text, want] of cases) {
      const f = plugin(name, text);
      const r = distill('list', 'loss', '--plugin', f);
      expect(r.status, `${name}: ${r.stderr}`).toBe(2);
      expect(r.stderr, name).toMatch(want);
      expect(r.stderr, name).toContain(`Plugin '${f}'`);
      oneLine(r.stderr);
    }
  }, 200_000);

  it('a plugin folder outside the repo without node_modules: says to npm install there', () => {
    const dir = join(tmp, 'my-plugin');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'my-plugin', type: 'module', main: 'index.js' }));
    writeFileSync(
      join(dir, 'index.js'),
      "import { DistillError } from '@distill/core';\nexport function register(c) {}\n",
    );
    const r = distill('list', '--plugin', dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`Plugin '${dir}' failed to load at ${join(dir, 'index.js')}`);
    expect(r.stderr).toContain(
      `It imports '@distill/core', which is not installed where the plugin is: run npm install in ${dir}`,
    );
    oneLine(r.stderr);
  }, 60_000);
});

describe('a plugin edited before --resume', () => {
  it('is refused, naming the plugin; the same plugin resumes', () => {
    const f = plugin('noop-plugin.mjs', '// registers nothing\nexport function register(c) {}\n');
    const runDir = join(tmp, 'run');
    const r = distill('train', '--preset', 'smoke', '--max-steps', '2', '--run-dir', runDir, '--plugin', f);
    expect(r.status, r.stderr).toBe(0);
    const cfg = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8')).config;
    expect(cfg.plugins).toEqual([f]);
    expect(Object.keys(cfg.pluginHashes)).toEqual([f]);
    const same = distill('train', '--resume', runDir);
    expect(same.status, same.stderr).toBe(0);
    appendFileSync(f, 'export const changed = 1;\n');
    const edited = distill('train', '--resume', runDir);
    expect(edited.status).toBe(2);
    expect(edited.stderr).toContain(`Cannot resume ${runDir}: the plugin ${f} changed since the run started`);
    oneLine(edited.stderr);
  }, 300_000);
});
