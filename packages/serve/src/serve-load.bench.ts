/**
 * Load test of `distill serve` (`npx nx run serve:load`, a benchmark, not a test): the real program in a
 * child process on loopback, then keep-alive clients at 1, 20 and 100 concurrent for 30 s each, every client
 * sending GET /api/search?q=<one of 40 queries>&k=10 as soon as the previous answer is read. Prints the
 * latency percentiles (p50/p95/p99, ms) and the requests per second per level, then stops the server.
 * Options: --index <dir> (default: an index of the emoji test split built with the exported emoji teacher in a
 *          temporary folder)  --levels 1,20,100  --seconds 30  --path thumb (GET a thumbnail instead)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const argv = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? def) : def;
};
const levels = arg('levels', '1,20,100').split(',').map(Number);
const seconds = Number(arg('seconds', '30'));
const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = join(root, 'apps', 'cli', 'bin', 'distill.js');
const QUERIES = [
  'red heart',
  'smiling face',
  'cat',
  'dog face',
  'a green tree',
  'pizza slice',
  'blue car',
  'sun behind cloud',
  'crying face',
  'rocket',
  'thumbs up',
  'fire',
  'musical note',
  'apple',
  'house with garden',
  'clock',
  'moon',
  'star',
  'flag',
  'ghost',
  'robot',
  'cake',
  'coffee',
  'bicycle',
  'airplane',
  'umbrella with rain',
  'snowman',
  'book',
  'light bulb',
  'money bag',
  'key',
  'lock',
  'bell',
  'gift',
  'balloon',
  'trophy',
  'soccer ball',
  'fish',
  'flower',
  'wine glass',
];

function distill(args: string[]): void {
  const r = spawnSync(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`distill ${args.join(' ')} failed (${r.status})`);
}

function serve(index: string): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, [bin, 'serve', '--index', index, '--port', '0', '--host', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((ok, fail) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += String(d);
      const m = out.match(/at (http:\/\/[^ ]+\/) /);
      if (m) ok({ child, base: m[1] });
    });
    child.once('exit', (c) => fail(new Error(`distill serve exited (${c}): ${out}`)));
  });
}

function get(agent: Agent, url: string): Promise<number> {
  return new Promise((ok, fail) => {
    const req = request(url, { agent }, (res) => {
      res.resume();
      res.on('end', () =>
        res.statusCode === 200 ? ok(res.statusCode) : fail(new Error(`HTTP ${res.statusCode} for ${url}`)),
      );
    });
    req.on('error', fail);
    req.end();
  });
}

const pct = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

async function level(base: string, paths: string[], clients: number): Promise<string> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const lat: number[] = [];
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const client = async () => {
    while (performance.now() < end) {
      const p = paths[n++ % paths.length];
      const t0 = performance.now();
      try {
        await get(agent, base + p);
        lat.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, client));
  const wall = (performance.now() - t0) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  const row = `| ${clients} | ${lat.length} | ${(lat.length / wall).toFixed(0)} | ${pct(lat, 0.5).toFixed(1)} | ${pct(lat, 0.95).toFixed(1)} | ${pct(lat, 0.99).toFixed(1)} | ${lat[lat.length - 1].toFixed(1)} | ${errors} |`;
  process.stderr.write(`${row}\n`);
  return row;
}

const tmp = mkdtempSync(join(tmpdir(), 'distill-load-'));
let server: ChildProcess | undefined;
try {
  let index = arg('index', '');
  if (!index) {
    const teacher = join(root, 'packages', 'teacher-adapters', 'assets', 'teachers', 'emoji-teacher-v1');
    distill(['export', teacher, '--out', join(tmp, 'model')]);
    index = join(tmp, 'index');
    distill(['index', 'build', '--model', join(tmp, 'model'), '--dataset', 'emoji', '--split', 'test', '--out', index]);
  }
  const s = await serve(index);
  server = s.child;
  const meta = JSON.parse(readFileSync(join(index, 'index.json'), 'utf8')) as { images: { id: string }[] };
  const paths =
    arg('path', 'search') === 'thumb'
      ? meta.images.map((im) => `api/thumb/${im.id}`)
      : QUERIES.map((q) => `api/search?q=${encodeURIComponent(q)}&k=10`);
  // warm-up
  for (const p of paths) await get(new Agent(), s.base + p);
  const rows = [
    `distill serve on loopback, ${meta.images.length} images; GET /${paths[0].split('?')[0]} (${paths.length} distinct requests in turn), keep-alive clients, ${seconds} s per level; ` +
      `client and server on the same ${cpus().length}-core machine (load average before: ${loadavg()[0].toFixed(1)}):`,
    '',
    '| clients | requests | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const c of levels) rows.push(await level(s.base, paths, c));
  process.stdout.write(rows.join('\n') + '\n');
} finally {
  server?.kill('SIGTERM');
  rmSync(tmp, { recursive: true, force: true });
}
