/**
 * `distill serve`: a search page and a JSON API over an index.
 *   GET  /                      the page (type a query, see thumbnails; drop an image, see captions)
 *   GET  /api/search?q=&k=      text -> images: what `distill search --json --text q -k k` prints
 *   POST /api/search-image?k=&target=texts|images   body: an image file -> nearest captions (or images)
 *   GET  /api/thumb?id=<image id>   the indexed image file
 *   GET  /api/info              the index: model, sizes
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { DistillError } from '@distill/core';
import type { OnnxModel } from './model.js';
import { PAGE_HTML } from './page.js';
import type { VectorIndex } from './vector-index.js';

const MIME: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.gif': 'image/gif', '.bmp': 'image/bmp', '.tif': 'image/tiff', '.tiff': 'image/tiff' };
const MAX_UPLOAD = 20 * 1024 * 1024;
export const MAX_K = 100;

function send(res: ServerResponse, status: number, body: string | Buffer, type = 'application/json; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

const json = (res: ServerResponse, status: number, v: unknown) => send(res, status, JSON.stringify(v));

function parseK(v: string | null): number {
  if (v === null || v === '') return 10;
  const k = Number(v);
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw new DistillError(`k must be an integer from 1 to ${MAX_K}, got '${v}'.`, 2);
  return k;
}

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_UPLOAD) throw new DistillError(`The upload is over ${MAX_UPLOAD / 1024 / 1024} MB.`, 2);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

export interface RunningServer {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

export function createSearchServer(index: VectorIndex, model: OnnxModel): Server {
  index.checkModel(model);
  const byId = new Map(index.meta.images.map((im) => [im.id, im]));
  const tmp = mkdtempSync(join(tmpdir(), 'distill-serve-'));
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      if (req.method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) return send(res, 200, PAGE_HTML, 'text/html; charset=utf-8');
      if (req.method === 'GET' && url.pathname === '/api/info') {
        const m = index.meta;
        return json(res, 200, { model: m.model, images: m.images.length, texts: m.texts.length, sources: m.sources });
      }
      if (req.method === 'GET' && url.pathname === '/api/search') {
        const q = (url.searchParams.get('q') ?? '').trim();
        if (!q) throw new DistillError('Give a query: /api/search?q=<words>&k=10.', 2);
        const target = url.searchParams.get('target') === 'texts' ? 'texts' : 'images';
        return json(res, 200, await index.search(model, { text: q }, parseK(url.searchParams.get('k')), target));
      }
      if (req.method === 'POST' && url.pathname === '/api/search-image') {
        const data = await body(req);
        if (data.length === 0) throw new DistillError('POST an image file as the request body.', 2);
        const file = join(tmp, `query-${process.hrtime.bigint()}`);
        writeFileSync(file, data);
        try {
          const target = url.searchParams.get('target') === 'images' ? 'images' : 'texts';
          const r = await index.search(model, { image: file }, parseK(url.searchParams.get('k')), target);
          return json(res, 200, { ...r, query: { image: '(upload)' } });
        } catch (e) {
          if (e instanceof DistillError && /^k must/.test(e.message)) throw e;
          throw new DistillError('The upload is not an image this server can read (PNG, JPEG, WebP, GIF, TIFF).', 2);
        } finally {
          rmSync(file, { force: true });
        }
      }
      if (req.method === 'GET' && url.pathname === '/api/thumb') {
        const im = byId.get(url.searchParams.get('id') ?? '');
        if (!im) return json(res, 404, { error: 'no such image in the index' });
        return send(res, 200, readFileSync(im.path), MIME[extname(im.path).toLowerCase()] ?? 'application/octet-stream');
      }
      return json(res, 404, { error: `not found: ${req.method} ${url.pathname}` });
    } catch (e) {
      if (e instanceof DistillError) return json(res, 400, { error: e.message });
      return json(res, 500, { error: String((e as Error).message ?? e).split('\n')[0] });
    }
  });
  server.on('close', () => rmSync(tmp, { recursive: true, force: true }));
  return server;
}

/** Listen on `port` (0: any free port) at `host`. */
export async function startSearchServer(index: VectorIndex, model: OnnxModel, port = 8080, host = '127.0.0.1'): Promise<RunningServer> {
  const server = createSearchServer(index, model);
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      fail(e.code === 'EADDRINUSE' ? new DistillError(`Port ${port} is in use: pick another with --port.`, 2) : e),
    );
    server.listen(port, host, () => ok());
  });
  const addr = server.address();
  const p = typeof addr === 'object' && addr ? addr.port : port;
  return {
    server,
    port: p,
    url: `http://${host}:${p}/`,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections(); // keep-alive clients do not hold the process
      }),
  };
}
