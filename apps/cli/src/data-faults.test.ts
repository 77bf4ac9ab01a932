import { spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '@distill/core';
import { afterAll, describe, expect, it } from 'vitest';

// Dataset faults through the CLI: misspelled splits, a killed glyphs build whose kept files were damaged,
// a picture swapped in a finished build, a broken concepts.jsonl line. Sample builds keep it fast.
const root = repoRoot();
const tmp = mkdtempSync(join(tmpdir(), 'distill-data-faults-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const cache = join(tmp, 'cache');
const SAMPLE = '100';
const env = { ...process.env, DISTILL_CACHE_DIR: cache, DISTILL_GLYPHS_SAMPLE: SAMPLE };
const bin = join(root, 'apps/cli/bin/distill.js');
const distill = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: tmp, encoding: 'utf8', env });
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const pngsUnder = (d: string): string[] =>
  existsSync(d)
    ? readdirSync(d, { withFileTypes: true, recursive: true })
        .filter((e) => e.isFile() && e.name.endsWith('.png'))
        .map((e) => join(e.parentPath, e.name))
    : [];
const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at /);

describe('splits', () => {
  it('a Karpathy or JSONL split outside train/val/test/restval is refused with the file, the entry and the nearest name', () => {
    const k = join(tmp, 'karpathy.json');
    const sent = [{ raw: 'one' }];
    writeFileSync(
      k,
      JSON.stringify({
        images: [
          { filename: 'a.jpg', split: 'train', sentences: sent },
          { filename: 'b.jpg', split: 'tarin', sentences: sent },
          { filename: 'c.jpg', split: 'test', sentences: sent },
        ],
      }),
    );
    const r = distill('data', 'info', 'karpathy', '--annotations', k);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `${k}: images[1] (b.jpg).split: split "tarin" is not one of train, val, test, restval; did you mean "train"?`,
    );
    noStack(r.stderr);
    const j = join(tmp, 'data.jsonl');
    writeFileSync(
      j,
      '{"image": "a.png", "captions": ["a"], "split": "train"}\n{"image": "b.png", "captions": ["b"], "split": "tset"}\n',
    );
    const q = distill('data', 'info', 'jsonl', '--annotations', j);
    expect(q.status).toBe(1);
    expect(q.stderr).toContain(`${j}:2: split "tset" is not one of train, val, test, restval; did you mean "test"?`);
  });
});

describe('glyphs build', () => {
  it('SIGTERM stops a build at once; files kept from .partial are verified (truncated and swapped ones rasterised again); a swapped image in a finished build and a broken concepts line are named', async () => {
    // a build killed while writing images
    const child = spawn(
      process.execPath,
      [bin, 'data', 'build', 'glyphs', '--sample', SAMPLE, '--eval-size', String(Number(SAMPLE) / 2)],
      { cwd: tmp, env, stdio: 'ignore' },
    );
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const partialOf = () =>
      existsSync(join(cache, 'glyphs'))
        ? readdirSync(join(cache, 'glyphs')).find((f) => f.endsWith('.partial'))
        : undefined;
    let partial = '';
    try {
      for (const t0 = Date.now(); ;) {
        const p = partialOf();
        if (p && pngsUnder(join(cache, 'glyphs', p)).length >= 40) {
          partial = join(cache, 'glyphs', p);
          break;
        }
        if (Date.now() - t0 > 120_000) throw new Error('the build wrote no images');
        await new Promise((r) => setTimeout(r, 50));
      }
      const t0 = Date.now();
      child.kill('SIGTERM');
      await exited;
      const ms = Date.now() - t0;
      console.info(`glyphs build: ended ${ms} ms after SIGTERM`);
      expect(ms).toBeLessThan(5_000);
    } finally {
      child.kill('SIGKILL');
    }
    expect(existsSync(partial)).toBe(true); // resumable: the partial folder stays
    const kept = pngsUnder(partial).sort();
    expect(kept.length).toBeGreaterThanOrEqual(40);
    const [truncated, swapped, donor] = kept;
    const want = { truncated: sha(truncated), swapped: sha(swapped) };
    truncateSync(truncated, 100);
    copyFileSync(donor, swapped);
    const b = distill('data', 'build', 'glyphs', '--sample', SAMPLE, '--eval-size', String(Number(SAMPLE) / 2));
    expect(b.status, b.stderr).toBe(0);
    const dir = partial.replace(/\.partial$/, '');
    const rel = (p: string) => p.slice(partial.length + 1);
    expect(b.stderr).toContain(`${truncated} from the killed build differs from the file that build wrote`);
    expect(b.stderr).toContain(`${swapped} from the killed build differs from the file that build wrote`);
    expect(sha(join(dir, rel(truncated)))).toBe(want.truncated);
    expect(sha(join(dir, rel(swapped)))).toBe(want.swapped);
    const concepts = readFileSync(join(dir, 'concepts.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const recorded = new Map(
      concepts.flatMap((c: { images: { file: string; sha256: string }[] }) => c.images.map((i) => [i.file, i.sha256])),
    );
    expect(recorded.get(rel(truncated))).toBe(want.truncated);
    expect(existsSync(join(dir, '.written'))).toBe(false);

    // a finished build: the first test image replaced by another valid PNG is found when read for extraction
    const info = JSON.parse(distill('data', 'info', 'glyphs').stdout);
    expect(info.imageRoot).toBe(dir);
    const testConcept = concepts.find((c: { split: string }) => c.split === 'test');
    const testFile = join(
      dir,
      testConcept.images.find((i: { style: string }) => i.style === testConcept.eval.style).file,
    );
    copyFileSync(join(dir, rel(donor)), testFile);
    const x = distill(
      'teacher',
      'extract',
      '--teacher',
      'emoji',
      '--dataset',
      'glyphs',
      '--train-subset',
      '4',
      '--eval-subset',
      '4',
    );
    expect(x.status).toBe(1);
    expect(x.stderr).toContain(`differ from the sha256 its manifest recorded (${testFile})`);
    expect(x.stderr).toContain(`Remove ${dir} and build it again (distill data build glyphs)`);
    noStack(x.stderr);

    // a broken concepts.jsonl line: one line naming the file and the line
    const lines = readFileSync(join(dir, 'concepts.jsonl'), 'utf8').split('\n');
    lines[2] = lines[2].slice(0, 20);
    writeFileSync(join(dir, 'concepts.jsonl'), lines.join('\n'));
    const c = distill('data', 'info', 'glyphs');
    expect(c.status).toBe(1);
    expect(c.stderr).toContain(`distill: ${join(dir, 'concepts.jsonl')}:3: not valid JSON`);
    expect(c.stderr).toContain(`remove ${dir} and run distill data build glyphs`);
    noStack(c.stderr);
  }, 400_000);
});
