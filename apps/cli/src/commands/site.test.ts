/**
 * `distill site`: the static folder answers queries in Chromium, served by a plain static file server
 * (node:http reading files; no distill code runs while the page is used).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { initRuntime, repoRoot } from '@distill/core';
import { loadEmoji } from '@distill/data';
import { exportStudent } from '@distill/serve';
import { createStudent, trainWordPieceTokenizer } from '@distill/student-architectures';
import { saveStudent } from '@distill/training';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { distillInProcess } from '../run-cli.test-util.js';

const distill = distillInProcess;

const CHROMIUM = process.env.DISTILL_CHROMIUM ?? '/usr/bin/chromium';
const BROWSER = existsSync(CHROMIUM) || process.env.DISTILL_REQUIRE_BROWSER === '1';
const emoji = loadEmoji().splits.test;
const tmp = mkdtempSync(join(tmpdir(), 'distill-site-'));
const site = join(tmp, 'site');
const index = join(tmp, 'index');
let server: Server | undefined;

const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.mjs': 'text/javascript',
  '.js': 'text/javascript',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.webp': 'image/webp',
  '.onnx': 'application/octet-stream',
  '.f32': 'application/octet-stream',
};

/** A plain static file server over `root` (what any web host does). */
function staticServer(root: string): Promise<string> {
  server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(
      /^(\.\.[/\\])+/,
      '',
    );
    const file = join(root, path.endsWith('/') ? `${path}index.html` : path);
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
  });
  return new Promise((ok) =>
    server!.listen(0, '127.0.0.1', () => ok(`http://127.0.0.1:${(server!.address() as { port: number }).port}/`)),
  );
}

beforeAll(async () => {
  await initRuntime('auto', { quiet: true });
  const tokenizer = trainWordPieceTokenizer(
    emoji.captions.map((c) => c.text),
    { vocabSize: 300 },
  );
  const student = createStudent('vit-bert', { preset: 'tiny', embedDim: 16, seed: 7, tokenizer, maxLength: 12 });
  saveStudent(join(tmp, 'student'), student);
  student.dispose();
  await exportStudent(join(tmp, 'student'), join(tmp, 'model'));
  const r = await distill([
    'index',
    'build',
    '--model',
    join(tmp, 'model'),
    '--dataset',
    'emoji',
    '--split',
    'test',
    '--out',
    index,
  ]);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);
afterAll(() => server?.close());

describe('distill site', () => {
  it('writes the page, onnxruntime-web, the encoders, vectors and thumbnails, with no path of this disk', async () => {
    const r = await distill(['site', '--index', index, '--out', site]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote .*: 200 images, [\d.]+ MiB/);
    for (const f of [
      'index.html',
      'site.json',
      'vectors.f32',
      'model/image.onnx',
      'model/text.onnx',
      'model/tokenizer.json',
      'ort/ort.wasm.min.mjs',
      'ort/ort-wasm-simd-threaded.wasm',
      'tokenizers.min.mjs',
    ])
      expect(existsSync(join(site, f)), f).toBe(true);
    const json = readFileSync(join(site, 'site.json'), 'utf8');
    expect(json).not.toContain(tmp);
    expect(json).not.toContain(repoRoot());
    expect(statSync(join(site, 'vectors.f32')).size).toBe(200 * 16 * 4);
    const again = await distill(['site', '--index', index, '--out', site]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/is not empty: give a new folder, or --force/);
  }, 60_000);

  it.skipIf(!BROWSER)(
    'answers a text query in Chromium from a static file server, as distill search does; detail, more like this and an upload work',
    async () => {
      expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (bash .ci/chromium)`).toBe(true);
      const base = await staticServer(site);
      const cli = JSON.parse(
        (await distill(['search', '--index', index, '--text', 'red heart', '-k', '10', '--json'])).stdout,
      ) as { results: { id: string; score: number }[] };
      const shots = process.env.DISTILL_TEST_ARTIFACTS ?? join(repoRoot(), 'test-artifacts');
      mkdirSync(shots, { recursive: true });
      const { chromium } = await import('playwright-core');
      // no network but loopback: everything the page needs is in the folder
      const browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
      });
      try {
        for (const [size, viewport] of [
          ['desktop', { width: 1280, height: 900 }],
          ['phone', { width: 390, height: 844 }],
        ] as const) {
          const page = await browser.newPage({ viewport });
          const errors: string[] = [];
          page.on('pageerror', (e) => errors.push(String(e)));
          const requests: string[] = [];
          page.on('request', (q) => requests.push(q.url()));
          await page.goto(`${base}?q=${encodeURIComponent('red heart')}`);
          await page.waitForFunction(
            "document.querySelectorAll('figure.hit').length > 0 || document.querySelector('#status').classList.contains('error')",
            null,
            { timeout: 60_000 },
          );
          expect(await page.getAttribute('#status', 'class'), (await page.textContent('#status')) ?? '').not.toBe(
            'error',
          );
          const got = (await page.evaluate(
            "[...document.querySelectorAll('figure.hit')].slice(0, 10).map((f) => [f.dataset.id, Number(f.querySelector('.score').textContent)])",
          )) as [string, number][];
          // exact dot product in the page vs HNSW in distill search: the same scores (3 decimals shown), the same top result
          got.forEach(([, s], i) => expect(s).toBeCloseTo(cli.results[i].score, 2));
          expect(got[0][0]).toBe(cli.results[0].id);
          await page.screenshot({ path: join(shots, `site-${size}-1-query.png`) });
          await page.locator('figure.hit').first().click();
          await page.waitForSelector('#detail:not([hidden])');
          await page.click('#more');
          await page.waitForURL(/\?image=[0-9a-f]{16}$/);
          await page.waitForFunction(
            "!document.querySelector('#query').hidden && document.querySelectorAll('figure.hit').length > 0 && !document.querySelector('#results').classList.contains('stale')",
          );
          await page.screenshot({ path: join(shots, `site-${size}-2-more-like-this.png`) });
          // an uploaded picture: encoded in the page; its own image comes first
          const meta = JSON.parse(readFileSync(join(index, 'index.json'), 'utf8')) as {
            images: { id: string; path: string }[];
          };
          await page.setInputFiles('#file', meta.images[9].path);
          await page.waitForFunction(
            "document.querySelector('#query-label').textContent.startsWith('Images like your picture') && !document.querySelector('#results').classList.contains('stale')",
          );
          expect(await page.evaluate("document.querySelector('figure.hit').dataset.id")).toBe(meta.images[9].id);
          expect(
            Number(await page.evaluate("document.querySelector('figure.hit .score').textContent")),
          ).toBeGreaterThan(0.99);
          expect(errors).toEqual([]);
          expect(requests.filter((u) => !u.startsWith(base) && !u.startsWith('blob:'))).toEqual([]);
          await page.close();
        }
      } finally {
        await browser.close();
      }
    },
    180_000,
  );
});
