/**
 * The path from a trained student to a search page, as the README gives it: one smoke training shared
 * by every step (train -> export -> index build -> search -> serve -> a real browser).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
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
  server = spawn(process.execPath, [bin, 'serve', '--index', index, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
  const r = await distill(['train', '--preset', 'smoke', '--run-dir', run, '--latency']);
  expect(r.code, r.stderr).toBe(0);
}, 600_000);

afterAll(() => {
  if (server && server.exitCode === null) server.kill('SIGTERM');
});

describe('from a smoke student to a search page', () => {
  it('the run report names the engine that trained the student and times the encoders as distill export does', () => {
    const report = readFileSync(join(run, 'report.md'), 'utf8');
    expect(report).toMatch(/trained on the onnx engine\./);
    expect(report).toMatch(
      /onnxruntime-node on the exported graphs, as distill export measures it, 30 runs; in brackets the 10th-90th percentile/,
    );
    // teacher and student rows: median (p10-p90) for both towers
    const rows = report.split('\n').filter((l) => /^\| (teacher|student)/.test(l));
    expect(rows).toHaveLength(2);
    for (const r of rows) expect(r).toMatch(/\| [\d.]+ \([\d.]+-[\d.]+\) \| [\d.]+ \([\d.]+-[\d.]+\) \|$/);
  });

  it('distill export writes a teacher folder and prints the parity figure', async () => {
    const r = await distill(['export', run, '--out', model]);
    expect(r.code, r.stderr).toBe(0);
    const m = r.stdout.match(/parity: max \|onnxruntime - distill\| = (\S+) \(image\), (\S+) \(text\)/);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(1e-5);
    expect(Number(m![2])).toBeLessThanOrEqual(1e-5);
    for (const f of ['image.onnx', 'text.onnx', 'tokenizer.json', 'teacher.json'])
      expect(existsSync(join(model, f))).toBe(true);
  });

  it('distill index build embeds the emoji test split', async () => {
    const r = await distill([
      'index',
      'build',
      '--model',
      model,
      '--dataset',
      'emoji',
      '--split',
      'test',
      '--out',
      index,
    ]);
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
    const teacher = join(repoRoot(), 'packages', 'teacher-adapters', 'assets', 'teachers', 'emoji-teacher-v1');
    expect((await distill(['export', teacher, '--out', other])).code).toBe(0);
    const r = await distill(['search', '--index', index, '--model', other, '--text', 'red heart']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/was built with the model .* not .*other-model/);
  });

  it('distill serve answers /api/search with the JSON of distill search plus relative URLs, and no path of its disk', async () => {
    base = await serve();
    const api = await fetch(`${base}api/search?q=${encodeURIComponent('red heart')}&k=10`);
    expect(api.status).toBe(200);
    const text = await api.text();
    expect(text).not.toContain(tmp);
    expect(text).not.toMatch(/"\/(work|tmp|home|root|usr)\//);
    const j = JSON.parse(text) as { results: { id: string; thumb: string; original: string }[]; ms?: unknown };
    const strip = (x: { ms?: unknown; results: object[] }) => ({
      ...x,
      ms: undefined,
      results: x.results.map((h) => ({ ...h, thumb: undefined, original: undefined })),
    });
    expect(strip(j)).toEqual(strip(searched as never));
    expect(j.results[0].thumb).toBe(`/api/thumb/${j.results[0].id}`);
    const page = await (await fetch(base)).text();
    expect(page).toContain('<input id="q"');
    const bad = await fetch(`${base}api/search?q=x&k=0`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/k must be an integer/);
    const thumb = await fetch(base + j.results[0].thumb.slice(1));
    expect(thumb.headers.get('content-type')).toBe('image/webp');
    expect(thumb.headers.get('cache-control')).toMatch(/max-age=\d+/);
    const etag = thumb.headers.get('etag')!;
    expect((await fetch(base + j.results[0].thumb.slice(1), { headers: { 'if-none-match': etag } })).status).toBe(304);
    const info = await (await fetch(`${base}api/info`)).text();
    expect(info).not.toContain(tmp);
  }, 120_000);

  it.skipIf(!BROWSER)(
    `a browser (${CHROMIUM}, headless): query -> detail -> more like this -> an uploaded image, at desktop and phone sizes`,
    async () => {
      expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (bash .ci/chromium)`).toBe(true);
      expect(base, 'the serve test starts the server').not.toBe('');
      const shots = process.env.DISTILL_TEST_ARTIFACTS ?? join(repoRoot(), 'test-artifacts');
      mkdirSync(shots, { recursive: true });
      const { chromium } = await import('playwright-core');
      const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
      try {
        for (const [size, viewport] of [
          ['desktop', { width: 1280, height: 900 }],
          ['phone', { width: 390, height: 844 }],
        ] as const) {
          const ctx = await browser.newContext({
            viewport,
            deviceScaleFactor: size === 'phone' ? 2 : 1,
            isMobile: size === 'phone',
            hasTouch: size === 'phone',
          });
          const page = await ctx.newPage();
          const errors: string[] = [];
          page.on('pageerror', (e) => errors.push(String(e)));
          // a query in the URL runs at once
          await page.goto(`${base}?q=${encodeURIComponent('red heart')}`);
          await page.waitForSelector('figure.hit img.thumb');
          // (page code as strings: this package's TypeScript has no DOM types)
          // the thumbnails in view are loaded (the rest load lazily on scroll)
          await page.waitForFunction(
            "[...document.querySelectorAll('figure.hit img.thumb')].filter((i) => i.getBoundingClientRect().top < innerHeight).every((i) => i.complete && i.naturalWidth > 0)",
          );
          const ids = (await page.evaluate(
            "[...document.querySelectorAll('figure.hit')].map((f) => f.dataset.id)",
          )) as string[];
          expect(ids.slice(0, 10)).toEqual(searched!.results.map((h) => h.id));
          expect(await page.textContent('#status')).toMatch(/20 results in [\d.]+ ms · score = cosine similarity/);
          expect(await page.inputValue('#q')).toBe('red heart');
          await page.screenshot({ path: join(shots, `serve-${size}-1-query.png`) });
          // type another query: the URL follows
          await page.fill('#q', 'cat face');
          await page.press('#q', 'Enter');
          await page.waitForURL(/\?q=cat%20face$/);
          await page.waitForFunction(
            "!document.querySelector('#results').classList.contains('stale') && document.querySelectorAll('figure.hit').length > 0",
          );
          // detail view: keyboard (desktop) or a tap (phone)
          if (size === 'desktop') {
            await page.focus('#q');
            await page.keyboard.press('ArrowDown');
            await page.keyboard.press('ArrowRight');
            await page.keyboard.press('Enter');
          } else await page.locator('figure.hit').nth(1).click();
          await page.waitForSelector('#detail:not([hidden])');
          const second = (await page.evaluate("document.querySelectorAll('figure.hit')[1].dataset.id")) as string;
          expect(await page.textContent('#d-score')).toMatch(/score -?\d\.\d{4} · rank 2/);
          expect(await page.locator('#d-caps li').count()).toBeGreaterThan(0);
          expect(await page.getAttribute('#d-orig', 'href')).toBe(`/api/image/${second}`);
          await page.screenshot({ path: join(shots, `serve-${size}-2-detail.png`) });
          // more like this: ?image=<id>, the image itself left out
          await page.click('#more');
          await page.waitForURL(new RegExp(`\\?image=${second}$`));
          await page.waitForFunction(
            "!document.querySelector('#query').hidden && document.querySelectorAll('figure.hit').length > 0 && !document.querySelector('#results').classList.contains('stale')",
          );
          const similar = (await page.evaluate(
            "[...document.querySelectorAll('figure.hit')].map((f) => f.dataset.id)",
          )) as string[];
          expect(similar).not.toContain(second);
          expect(await page.textContent('#query-label')).toMatch(/^Images like /);
          await page.screenshot({ path: join(shots, `serve-${size}-3-more-like-this.png`) });
          // back: the previous query again
          await page.goBack();
          await page.waitForURL(/\?q=cat%20face$/);
          await page.waitForFunction(
            "document.querySelector('#q').value === 'cat face' && document.querySelectorAll('figure.hit').length > 0",
          );
          // an uploaded picture (the file picker): its own image comes first
          const emojiPng = readFileSync(join(index, 'index.json'), 'utf8');
          const first = (JSON.parse(emojiPng) as { images: { id: string; path: string }[] }).images[5];
          await page.setInputFiles('#file', first.path);
          await page.waitForFunction(
            "document.querySelector('#query-label').textContent.startsWith('Images like your picture') && !document.querySelector('#results').classList.contains('stale')",
          );
          expect(await page.evaluate("document.querySelector('figure.hit').dataset.id")).toBe(first.id);
          await page.screenshot({ path: join(shots, `serve-${size}-4-upload.png`) });
          // an empty result is said as such; an error is shown, not thrown
          await page.goto(`${base}?image=0000000000000000`);
          await page.waitForFunction("document.querySelector('#status').classList.contains('error')");
          expect(await page.textContent('#status')).toMatch(/no image '0000000000000000'/);
          expect(errors).toEqual([]);
          await ctx.close();
        }
      } finally {
        await browser.close();
      }
    },
    180_000,
  );
});
