/**
 * The path from a trained student to a search page, as the README gives it: one smoke training shared
 * by every step (train -> export -> index build -> search -> serve -> a real browser).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@distill/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../main.js';

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

const CHROMIUM = process.env.DISTILL_CHROMIUM ?? '/usr/bin/chromium';
/** .ci/run sets DISTILL_REQUIRE_BROWSER=1: there a missing Chromium fails the browser test instead of skipping it. */
const BROWSER = existsSync(CHROMIUM) || process.env.DISTILL_REQUIRE_BROWSER === '1';
const tmp = mkdtempSync(join(tmpdir(), 'distill-serve-e2e-'));
const run = join(tmp, 'run');
const model = join(tmp, 'model');
const index = join(tmp, 'index');
let server: ChildProcess | undefined;
let base = '';
let searched: { results: { id: string; score: number; rank: number }[] } | undefined;

/** Start `distill serve` as a user would (a child process); resolves with its URL. */
function serve(): Promise<string> {
  const bin = join(repoRoot(), 'apps', 'cli', 'bin', 'distill.js');
  server = spawn(process.execPath, [bin, 'serve', '--index', index, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((ok, fail) => {
    let out = '';
    const t = setTimeout(() => fail(new Error(`distill serve did not start in 60 s: ${out}`)), 60_000);
    server!.stdout!.on('data', (d) => {
      out += String(d);
      const m = out.match(/at (http:\/\/[^ ]+\/) /);
      if (m) {
        clearTimeout(t);
        ok(m[1]);
      }
    });
    server!.stderr!.on('data', (d) => (out += String(d)));
    server!.on('exit', (code) => fail(new Error(`distill serve exited (${code}): ${out}`)));
  });
}

beforeAll(async () => {
  const r = await distill(['train', '--preset', 'smoke', '--run-dir', run]);
  expect(r.code, r.stderr).toBe(0);
}, 600_000);

afterAll(() => {
  if (server && server.exitCode === null) server.kill('SIGTERM');
});

describe('from a smoke student to a search page', () => {
  it('distill export writes a teacher folder and prints the parity figure', async () => {
    const r = await distill(['export', run, '--out', model]);
    expect(r.code, r.stderr).toBe(0);
    const m = r.stdout.match(/parity: max \|onnxruntime - distill\| = (\S+) \(image\), (\S+) \(text\)/);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(1e-5);
    expect(Number(m![2])).toBeLessThanOrEqual(1e-5);
    for (const f of ['image.onnx', 'text.onnx', 'tokenizer.json', 'teacher.json']) expect(existsSync(join(model, f))).toBe(true);
  });

  it('distill index build embeds the emoji test split', async () => {
    const r = await distill(['index', 'build', '--model', model, '--dataset', 'emoji', '--split', 'test', '--out', index]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/built .*: \+200 images, \+1251 captions from emoji:test/);
    const meta = JSON.parse(readFileSync(join(index, 'index.json'), 'utf8'));
    expect(meta.model.dir).toBe(model);
    expect(meta.model.hash).toMatch(/^[0-9a-f]{64}$/);
    // a second build from the same split adds nothing
    const again = await distill(['index', 'build', '--dataset', 'emoji', '--split', 'test', '--out', index]);
    expect(again.stdout).toMatch(/added to .*: \+0 images, \+0 captions/);
  });

  it('distill search --json --text "red heart" returns ranked results', async () => {
    const r = await distill(['search', '--index', index, '--json', '--text', 'red heart', '-k', '10']);
    expect(r.code, r.stderr).toBe(0);
    searched = JSON.parse(r.stdout);
    expect(searched!.results).toHaveLength(10);
    expect(searched!.results.map((h) => h.rank)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const scores = searched!.results.map((h) => h.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    const human = await distill(['search', '--index', index, '--text', 'red heart', '-k', '3']);
    expect(human.stdout.split('\n')[1]).toContain(searched!.results[0].id);
  });

  it('distill search refuses a query with another model', async () => {
    const other = join(tmp, 'other-model');
    // the emoji teacher is another distill student: exported, it is another model of the same dimension
    const teacher = join(repoRoot(), 'packages', 'training', 'assets', 'teachers', 'emoji-teacher-v1');
    expect((await distill(['export', teacher, '--out', other])).code).toBe(0);
    const r = await distill(['search', '--index', index, '--model', other, '--text', 'red heart']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/was built with the model .* not .*other-model/);
  });

  it('distill serve answers /api/search with the JSON of distill search, and serves the page', async () => {
    base = await serve();
    const api = await fetch(`${base}api/search?q=${encodeURIComponent('red heart')}&k=10`);
    expect(api.status).toBe(200);
    const j = (await api.json()) as { results: { id: string }[]; ms?: unknown };
    const strip = (x: { ms?: unknown }) => ({ ...x, ms: undefined });
    expect(strip(j)).toEqual(strip(searched as { ms?: unknown }));
    const page = await (await fetch(base)).text();
    expect(page).toContain('<input id="q"');
    const bad = await fetch(`${base}api/search?q=x&k=0`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/k must be an integer/);
    const thumb = await fetch(`${base}api/thumb?id=${encodeURIComponent(j.results[0].id)}`);
    expect(thumb.headers.get('content-type')).toBe('image/png');
  }, 120_000);

  it.skipIf(!BROWSER)(`a browser (${CHROMIUM}, headless) types a query and sees the thumbnails`, async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (bash .ci/chromium)`).toBe(true);
    expect(base, 'the serve test starts the server').not.toBe('');
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage();
      await page.goto(base);
      await page.fill('#q', 'red heart');
      await page.press('#q', 'Enter');
      await page.waitForSelector('figure.hit img.thumb');
      // (page code as strings: this package's TypeScript has no DOM types)
      await page.waitForFunction("[...document.querySelectorAll('figure.hit img.thumb')].every((i) => i.complete && i.naturalWidth > 0)");
      const ids = await page.evaluate("[...document.querySelectorAll('figure.hit')].map((f) => f.dataset.id)");
      expect(ids).toEqual(searched!.results.map((h) => h.id));
      expect(await page.textContent('#status')).toMatch(/10 results in [\d.]+ ms/);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
