import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initRuntime } from '@distill/core';
import { loadEmoji } from '@distill/data';
import { createStudent, trainWordPieceTokenizer, saveStudent } from '@distill/student-architectures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportStudent } from './export.js';
import { OnnxModel } from './model.js';
import { startSearchServer, type RunningServer } from './server.js';
import { VectorIndex } from './vector-index.js';

const emoji = loadEmoji().splits.test;
let model: OnnxModel;
let index: VectorIndex;
let srv: RunningServer;

beforeAll(async () => {
  await initRuntime('auto', { quiet: true });
  const root = mkdtempSync(join(tmpdir(), 'distill-server-'));
  const tokenizer = trainWordPieceTokenizer(
    emoji.captions.map((c) => c.text),
    { vocabSize: 300 },
  );
  const student = createStudent('vit-bert', { preset: 'tiny', embedDim: 16, seed: 3, tokenizer, maxLength: 12 });
  saveStudent(join(root, 'student'), student);
  student.dispose();
  await exportStudent(join(root, 'student'), join(root, 'model'));
  model = await OnnxModel.load(join(root, 'model'), { threads: 1 });
  index = VectorIndex.create(join(root, 'index'), model);
  await index.add(model, {
    source: 'emoji:test[0:12]',
    images: emoji.images.slice(0, 12),
    captions: emoji.captions.filter((c) => c.image < 12),
  });
  srv = await startSearchServer(index, model, 0);
});
afterAll(async () => {
  await srv?.close();
  await model?.dispose();
});

describe('the search server', () => {
  it('GET /api/search ranks images as VectorIndex.search does', async () => {
    const r = await fetch(`${srv.url}api/search?q=heart&k=4`);
    expect(r.status).toBe(200);
    const j = (await r.json()) as {
      results: { id: string; score: number; thumb?: string; original?: string }[];
      k: number;
    };
    const direct = await index.search(model, { text: 'heart' }, 4);
    expect(j.k).toBe(4);
    expect(j.results.map((h) => ({ ...h, thumb: undefined, original: undefined }))).toEqual(
      direct.results.map((h) => ({ ...h, thumb: undefined, original: undefined })),
    );
    expect(j.results[0]).toMatchObject({
      thumb: `/api/thumb/${j.results[0].id}`,
      original: `/api/image/${j.results[0].id}`,
    });
  });

  it("POST /api/search-image returns the nearest captions; the image's own captions score like the index says", async () => {
    const r = await fetch(`${srv.url}api/search-image?k=3`, {
      method: 'POST',
      body: readFileSync(emoji.images[2].path),
    });
    expect(r.status).toBe(200);
    const j = (await r.json()) as { target: string; results: { text: string }[] };
    expect(j.target).toBe('texts');
    const direct = (await index.search(model, { image: emoji.images[2].path }, 3)).results;
    expect(j.results).toEqual(
      direct.map((h) => ({ ...h, thumb: `/api/thumb/${h.id}`, original: `/api/image/${h.id}` })),
    );
  });

  it('answers mistakes with 400 and one line, and serves only indexed files', async () => {
    const err = async (path: string, init?: RequestInit) => {
      const r = await fetch(srv.url + path, init);
      return [r.status, ((await r.json()) as { error: string }).error] as const;
    };
    expect(await err('api/search?q=&k=3')).toEqual([400, 'Give a query: /api/search?q=<words>&k=10.']);
    expect(await err('api/search?q=heart&k=1000')).toEqual([400, "k must be an integer from 1 to 100, got '1000'."]);
    expect(await err('api/search-image', { method: 'POST', body: 'not an image' })).toEqual([
      400,
      'The upload is not an image this server can read (JPEG, PNG, WebP, GIF, SVG, AVIF, TIFF).',
    ]);
    expect(await err('api/image/..%2F..%2Fetc%2Fpasswd')).toEqual([
      404,
      'not found: GET /api/image/..%2F..%2Fetc%2Fpasswd',
    ]);
    expect(await err('api/image/0123456789abcdef')).toEqual([404, 'no such image in the index']);
    expect(await err('api/similar?id=nope')).toEqual([404, "no image 'nope' in the index"]);
    const id = index.meta.images[0].id;
    const orig = await fetch(`${srv.url}api/image/${id}`);
    expect(Buffer.from(await orig.arrayBuffer()).equals(readFileSync(emoji.images[0].path))).toBe(true);
    // thumbnails: WebP, cached (ETag; a second request with it is a 304 without a body)
    const thumb = await fetch(`${srv.url}api/thumb/${id}`);
    expect(thumb.headers.get('content-type')).toBe('image/webp');
    expect(thumb.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const etag = thumb.headers.get('etag')!;
    expect(etag).toBe(`"${id}-t"`);
    const again = await fetch(`${srv.url}api/thumb/${id}`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    // more like this: the image itself left out, the rest by cosine similarity
    const sim = (await (await fetch(`${srv.url}api/similar?id=${id}&k=3`)).json()) as {
      results: { id: string; rank: number }[];
    };
    expect(sim.results.map((h) => h.rank)).toEqual([1, 2, 3]);
    expect(sim.results.map((h) => h.id)).not.toContain(id);
    expect((await fetch(srv.url)).headers.get('content-type')).toMatch(/^text\/html/);
  });
});
