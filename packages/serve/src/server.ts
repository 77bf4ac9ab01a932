/**
 * `distill serve`: a search page and a JSON API over an index. Results carry ids and server-relative URLs,
 * never paths of the server's disk.
 *   GET  /                       the page (?q=<words> or ?image=<id> in its URL)
 *   GET  /api/search?q=&k=       text -> images: what `distill search --json --text q -k k` prints, plus URLs
 *   GET  /api/similar?id=&k=     image -> images ("more like this"; the image itself left out)
 *   POST /api/search-image?k=&target=images|texts   body: an image file -> nearest images (or captions)
 *   GET  /api/image-info?id=     one image: id, name, captions, URLs
 *   GET  /api/thumb/<id>         its thumbnail (WebP, <= 256 px; ETag, cached for a year: ids are content hashes)
 *   GET  /api/image/<id>         the original file (only by this explicit link)
 *   GET  /api/info               the index: model, sizes
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { networkInterfaces } from 'node:os';
import { extname } from 'node:path';
import { atomicWriteFile, DistillError } from '@distill/core';
import { thumbnail } from './images.js';
import type { OnnxModel } from './model.js';
import { PAGE_HTML } from './page.js';
import type { SearchHit, SearchResult, VectorIndex } from './vector-index.js';

const MIME: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.avif': 'image/avif',
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
};
const MAX_UPLOAD = 20 * 1024 * 1024;
export const MAX_K = 100;

function send(
  res: ServerResponse,
  status: number,
  body: string | Buffer,
  type = 'application/json; charset=utf-8',
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
  res.end(body);
}

const json = (res: ServerResponse, status: number, v: unknown) => send(res, status, JSON.stringify(v));

function parseK(v: string | null): number {
  if (v === null || v === '') return 10;
  const k = Number(v);
  if (!Number.isInteger(k) || k < 1 || k > MAX_K)
    throw new DistillError(`k must be an integer from 1 to ${MAX_K}, got '${v}'.`, 2);
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

/** Server-relative URLs of an image. */
export const imageUrls = (id: string) => ({ thumb: `/api/thumb/${id}`, original: `/api/image/${id}` });

/** A result as the API sends it: the hit and its URLs. */
const withUrls = (h: SearchHit) => ({ ...h, ...imageUrls(h.id) });

export interface RunningServer {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';

export function createSearchServer(index: VectorIndex, model: OnnxModel): Server {
  index.checkModel(model);
  const api = (r: SearchResult) => ({ ...r, results: r.results.map(withUrls) });
  const server = createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const p = url.pathname;
      if (req.method === 'GET' && (p === '/' || p === '/index.html'))
        return send(res, 200, PAGE_HTML, 'text/html; charset=utf-8');
      if (req.method === 'GET' && p === '/api/info') {
        const m = index.meta;
        return json(res, 200, {
          model: { name: m.model.name, dim: m.model.dim, hash: m.model.hash },
          images: m.images.length,
          texts: m.texts.length,
          sources: m.sources.length,
        });
      }
      if (req.method === 'GET' && p === '/api/search') {
        const q = (url.searchParams.get('q') ?? '').trim();
        if (!q) throw new DistillError('Give a query: /api/search?q=<words>&k=10.', 2);
        const target = url.searchParams.get('target') === 'texts' ? 'texts' : 'images';
        return json(res, 200, api(await index.search(model, { text: q }, parseK(url.searchParams.get('k')), target)));
      }
      if (req.method === 'GET' && (p === '/api/similar' || p === '/api/image-info')) {
        const id = url.searchParams.get('id') ?? '';
        const im = index.image(id);
        if (!im) return json(res, 404, { error: `no image '${id}' in the index` });
        if (p === '/api/image-info')
          return json(res, 200, { id: im.id, name: im.name, captions: im.captions, ...imageUrls(im.id) });
        const k = parseK(url.searchParams.get('k'));
        const t0 = performance.now();
        const hits = index
          .searchVector(index.imageVector(id)!, k + 1, 'images')
          .filter((h) => h.id !== id)
          .slice(0, k)
          .map((h, i) => ({ ...h, rank: i + 1 }));
        const ms = +(performance.now() - t0).toFixed(3);
        return json(
          res,
          200,
          api({
            query: { image: id },
            target: 'images',
            k,
            model: index.meta.model.hash,
            results: hits,
            ms: { embed: 0, search: ms },
          }),
        );
      }
      if (req.method === 'POST' && p === '/api/search-image') {
        const data = await body(req);
        if (data.length === 0) throw new DistillError('POST an image file as the request body.', 2);
        const k = parseK(url.searchParams.get('k'));
        const target = url.searchParams.get('target') === 'images' ? 'images' : 'texts';
        try {
          return json(res, 200, api(await index.search(model, { imageBytes: data }, k, target)));
        } catch (e) {
          if (e instanceof DistillError)
            throw new DistillError(
              'The upload is not an image this server can read (JPEG, PNG, WebP, GIF, SVG, AVIF, TIFF).',
              2,
            );
          throw e;
        }
      }
      const file = p.match(/^\/api\/(thumb|image)\/([0-9a-f]{16})$/);
      if (req.method === 'GET' && file) {
        const im = index.image(file[2]);
        if (!im) return json(res, 404, { error: 'no such image in the index' });
        const etag = `"${im.id}${file[1] === 'thumb' ? '-t' : ''}"`;
        if (req.headers['if-none-match'] === etag) {
          res.writeHead(304, { etag, 'cache-control': IMMUTABLE });
          return res.end();
        }
        if (file[1] === 'image') {
          if (!existsSync(im.path)) return json(res, 404, { error: 'the original file is no longer on the server' });
          return send(
            res,
            200,
            readFileSync(im.path),
            MIME[extname(im.path).toLowerCase()] ?? 'application/octet-stream',
            { etag, 'cache-control': IMMUTABLE },
          );
        }
        let t = index.thumbPath(im);
        if (!t || !existsSync(t)) {
          // an index built with --no-thumbnails: make it once, keep it beside the others
          if (!existsSync(im.path)) return json(res, 404, { error: 'the original file is no longer on the server' });
          const buf = await thumbnail(readFileSync(im.path));
          t = `${index.dir}/thumbs/${im.id.slice(0, 2)}/${im.id}.webp`;
          try {
            atomicWriteFile(t, buf);
          } catch {
            return send(res, 200, buf, 'image/webp', { etag, 'cache-control': IMMUTABLE });
          }
        }
        return send(res, 200, readFileSync(t), 'image/webp', { etag, 'cache-control': IMMUTABLE });
      }
      return json(res, 404, { error: `not found: ${req.method} ${p}` });
    } catch (e) {
      if (e instanceof DistillError) return json(res, 400, { error: e.message });
      return json(res, 500, { error: String((e as Error).message ?? e).split('\n')[0] });
    }
  });
  return server;
}

/** Check a --port value: an integer 0..65535 (0: any free port). */
export function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new DistillError(`--port must be an integer from 0 to 65535 (0: any free port), got ${port}.`, 2);
}

/** This machine's addresses (for the --host error). */
function localAddresses(): string[] {
  return [...new Set(Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address)))];
}

/** Listen on `port` (0: any free port) at `host`. */
export async function startSearchServer(
  index: VectorIndex,
  model: OnnxModel,
  port = 8080,
  host = '127.0.0.1',
): Promise<RunningServer> {
  checkPort(port);
  const server = createSearchServer(index, model);
  await new Promise<void>((ok, fail) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE')
        return fail(new DistillError(`Port ${port} is in use: pick another with --port (0: any free port).`, 2));
      if (e.code === 'EACCES')
        return fail(
          new DistillError(`Port ${port} needs privileges on this machine: pick one from 1024 up with --port.`, 2),
        );
      if (e.code === 'EADDRNOTAVAIL')
        return fail(
          new DistillError(
            `--host ${host} is not an address of this machine (it has ${localAddresses().join(', ')}): use 127.0.0.1, 0.0.0.0 for every interface, or one of those.`,
            2,
          ),
        );
      if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN')
        return fail(
          new DistillError(
            `--host ${host} does not resolve to an address: give an IP address such as 127.0.0.1 or 0.0.0.0.`,
            2,
          ),
        );
      fail(e);
    });
    server.listen(port, host, () => ok());
  });
  const addr = server.address();
  const p = typeof addr === 'object' && addr ? addr.port : port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    server,
    port: p,
    url: `http://${shown}:${p}/`,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections(); // keep-alive clients do not hold the process
      }),
  };
}
