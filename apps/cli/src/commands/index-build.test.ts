/**
 * `distill index build` on a user's folder, through the CLI: progress, unreadable files (a one-line error,
 * or --skip-bad-images with a listed report), a killed build rerun to the same index without re-embedding,
 * the same file name in two folders, damaged index files, ENOSPC while adding (the old index still answers),
 * and the serve/search faults of issue 30 (a bad --port or --host, a 100,000-character query).
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initRuntime, repoRoot } from '@distill/core';
import { loadEmoji } from '@distill/data';
import { exportStudent, VectorIndex } from '@distill/serve';
import { createStudent, trainWordPieceTokenizer } from '@distill/student-architectures';
import { saveStudent } from '@distill/training';
import sharp from 'sharp';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { distillInProcess } from '../run-cli.test-util.js';

const distill = distillInProcess;

const BIN = join(repoRoot(), 'apps', 'cli', 'bin', 'distill.js');
/** The real program in a child process (what a user runs). */
function distillProcess(argv: string[]): {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
} {
  const r = spawnSync(process.execPath, [BIN, ...argv], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

const emoji = loadEmoji().splits.test;
const tmp = mkdtempSync(join(tmpdir(), 'distill-index-build-'));
const model = join(tmp, 'model');
const photos = join(tmp, 'photos');
const N_GOOD = 96;
const BAD = ['broken/truncated.png', 'zz-random.jpg', 'sub/deeper/not-an-image.webp'];

beforeAll(async () => {
  await initRuntime('auto', { quiet: true });
  const tokenizer = trainWordPieceTokenizer(
    emoji.captions.map((c) => c.text),
    { vocabSize: 300 },
  );
  const student = createStudent('vit-bert', { preset: 'tiny', embedDim: 16, seed: 5, tokenizer, maxLength: 12 });
  saveStudent(join(tmp, 'student'), student);
  student.dispose();
  await exportStudent(join(tmp, 'student'), model);
  // a user's folder: nested folders, PNG and JPEG (one rotated by EXIF), a GIF and an SVG, some captions, 3 unreadable files
  for (let i = 0; i < N_GOOD; i++) {
    const dir = join(photos, i % 3 === 0 ? 'a' : i % 3 === 1 ? 'b/c' : '');
    mkdirSync(dir, { recursive: true });
    const name = `img-${String(i).padStart(3, '0')}`;
    if (i % 4 === 0)
      await sharp(emoji.images[i].path)
        .flatten({ background: '#ffffff' })
        .jpeg()
        .toFile(join(dir, `${name}.jpg`));
    else copyFileSync(emoji.images[i].path, join(dir, `${name}.png`));
    if (i % 5 === 0)
      writeFileSync(
        join(dir, `${name}.txt`),
        emoji.captions
          .filter((c) => c.image === i)
          .map((c) => c.text)
          .join('\n'),
      );
  }
  await sharp(emoji.images[100].path)
    .flatten({ background: '#ffffff' })
    .rotate(270)
    .jpeg()
    .withMetadata({ orientation: 6 })
    .toFile(join(photos, 'rotated.jpg')); // shown upright
  await sharp(emoji.images[101].path).gif().toFile(join(photos, 'anim.gif'));
  writeFileSync(
    join(photos, 'drawing.svg'),
    '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><circle cx="32" cy="32" r="28" fill="red"/></svg>',
  );
  mkdirSync(join(photos, 'broken'), { recursive: true });
  mkdirSync(join(photos, 'sub/deeper'), { recursive: true });
  writeFileSync(join(photos, BAD[0]), readFileSync(emoji.images[0].path).subarray(0, 120));
  writeFileSync(join(photos, BAD[1]), Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 7919) % 256)));
  writeFileSync(join(photos, BAD[2]), 'hello');
}, 120_000);

const GOOD = N_GOOD + 3; // + rotated.jpg, anim.gif, drawing.svg

describe('distill index build on a folder', () => {
  it('an unreadable image without --skip-bad-images: one line naming it and the flag, what was done is kept', async () => {
    const out = join(tmp, 'idx-strict');
    const r = await distill([
      'index',
      'build',
      '--model',
      model,
      '--images',
      photos,
      '--out',
      out,
      '--batch',
      '16',
      '--commit-every',
      '16',
    ]);
    expect(r.code).toBe(2);
    const line = r.stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('distill:'));
    expect(line).toHaveLength(1);
    expect(line[0]).toMatch(/Could not read image .*broken\/truncated\.png: .*--skip-bad-images/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack
    // what was embedded before the bad file is saved and opens
    expect(VectorIndex.open(out).meta.images.length).toBeGreaterThan(0);
  }, 120_000);

  it('--skip-bad-images indexes the rest with progress, counts and lists the skipped files; a rerun skips what is done', async () => {
    const out = join(tmp, 'idx');
    const r = await distill(
      ['index', 'build', '--model', model, '--images', photos, '--out', out, '--skip-bad-images', '--batch', '16'],
      { DISTILL_PROGRESS_INTERVAL_MS: '1' },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `built .*: \\+${GOOD} images, \\+\\d+ captions .*3 unreadable image\\(s\\) skipped: listed in .*skipped-images.txt`,
      ),
    );
    expect(r.stderr).toMatch(/embedding images \d+\/102 \(\d+%\) [\d.]+\/s elapsed \S+ eta \S+/);
    const listed = readFileSync(join(out, 'skipped-images.txt'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split('\t')[0]);
    expect(listed.sort()).toEqual(BAD.map((b) => join(photos, b)).sort());
    const idx = VectorIndex.open(out);
    expect(idx.meta.images.map((im) => im.name)).toContain('b/c/img-001.png');
    expect(idx.meta.images.map((im) => im.name)).toEqual(
      expect.arrayContaining(['rotated.jpg', 'anim.gif', 'drawing.svg']),
    );
    // thumbnails exist and are small
    for (const im of idx.meta.images.slice(0, 5)) expect(readFileSync(idx.thumbPath(im)!).length).toBeLessThan(100_000);
    // EXIF orientation honoured: the rotated JPEG is found by the upright picture
    const upright = join(tmp, 'upright.jpg');
    await sharp(emoji.images[100].path).flatten({ background: '#ffffff' }).jpeg().toFile(upright);
    const s = await distill(['search', '--index', out, '--image', upright, '--to', 'images', '-k', '1', '--json']);
    expect(JSON.parse(s.stdout).results[0].name).toBe('rotated.jpg');
    expect(JSON.parse(s.stdout).results[0].score).toBeGreaterThan(0.98);
    const again = await distill(['index', 'build', '--images', photos, '--out', out, '--skip-bad-images']);
    expect(again.stdout).toMatch(/\+0 images, \+0 captions .*\(102 already done; 3 unreadable image\(s\) skipped/);
  }, 180_000);

  it('killed half way (kill -9) and rerun: finishes without re-embedding, and equals an uninterrupted build', async () => {
    const whole = join(tmp, 'idx-whole');
    expect(
      (
        await distill([
          'index',
          'build',
          '--model',
          model,
          '--images',
          photos,
          '--out',
          whole,
          '--skip-bad-images',
          '--batch',
          '8',
          '--commit-every',
          '8',
        ])
      ).code,
    ).toBe(0);
    const killed = join(tmp, 'idx-killed');
    const child = spawn(
      process.execPath,
      [
        BIN,
        'index',
        'build',
        '--model',
        model,
        '--images',
        photos,
        '--out',
        killed,
        '--skip-bad-images',
        '--batch',
        '8',
        '--commit-every',
        '8',
      ],
      { stdio: 'ignore' },
    );
    // kill it once a few commits are on disk
    await new Promise<void>((ok, fail) => {
      const t0 = Date.now();
      const poll = setInterval(() => {
        const v = existsSync(join(killed, 'vectors'))
          ? readdirSync(join(killed, 'vectors')).filter((f) => f.startsWith('images-') && f.endsWith('.f32')).length
          : 0;
        if (v >= 4 || child.exitCode !== null) {
          clearInterval(poll);
          child.kill('SIGKILL');
          ok();
        } else if (Date.now() - t0 > 120_000) {
          clearInterval(poll);
          child.kill('SIGKILL');
          fail(new Error('the build made no commits in 120 s'));
        }
      }, 20);
    });
    await new Promise((ok) => child.once('exit', ok));
    const before = VectorIndex.open(killed).meta.images.length;
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(GOOD);
    const r = await distill([
      'index',
      'build',
      '--images',
      photos,
      '--out',
      killed,
      '--skip-bad-images',
      '--batch',
      '8',
      '--commit-every',
      '8',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`+${GOOD - before} images`); // only what was left
    const [a, b] = [VectorIndex.open(whole), VectorIndex.open(killed)];
    const rows = (x: VectorIndex) => x.meta.images.map((im) => [im.id, im.name, im.captions]);
    expect(rows(b)).toEqual(rows(a));
    expect(b.meta.texts).toEqual(a.meta.texts);
    expect(Buffer.from(b.vectors('images').buffer).equals(Buffer.from(a.vectors('images').buffer))).toBe(true);
    expect(Buffer.from(b.vectors('texts').buffer).equals(Buffer.from(a.vectors('texts').buffer))).toBe(true);
  }, 300_000);

  it('two folders holding pic.png (different pictures): both are indexed, the collision is named, both are found', async () => {
    const [f1, f2] = [join(tmp, 'f1'), join(tmp, 'f2')];
    mkdirSync(f1);
    mkdirSync(f2);
    copyFileSync(emoji.images[150].path, join(f1, 'pic.png'));
    copyFileSync(emoji.images[151].path, join(f2, 'pic.png'));
    const out = join(tmp, 'idx-two');
    expect((await distill(['index', 'build', '--model', model, '--images', f1, '--out', out])).code).toBe(0);
    const r = await distill(['index', 'build', '--images', f2, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /\+1 images.*1 name\(s\) also in another source with a different picture \(pic\.png in images:.*f1\): both kept/,
    );
    for (const i of [150, 151]) {
      const s = await distill([
        'search',
        '--index',
        out,
        '--image',
        emoji.images[i].path,
        '--to',
        'images',
        '-k',
        '1',
        '--json',
      ]);
      expect(JSON.parse(s.stdout).results[0].score).toBeCloseTo(1, 4);
    }
    expect(VectorIndex.open(out).meta.images).toHaveLength(2);
  }, 120_000);

  it('a flipped byte or a truncated index file: one line naming the file, no stack', async () => {
    const src = join(tmp, 'idx');
    const meta = JSON.parse(readFileSync(join(src, 'index.json'), 'utf8'));
    const cases: [string, (dir: string) => void, RegExp][] = [
      [
        'vector byte flipped',
        (d) => flip(join(d, meta.vectors.images[0].file), 100),
        /vectors\/images-.*\.f32 does not match its sha256/,
      ],
      [
        'graph truncated',
        (d) =>
          writeFileSync(
            join(d, meta.graphs.images.file),
            readFileSync(join(d, meta.graphs.images.file)).subarray(0, 500),
          ),
        /images-\d+\.usearch does not match its sha256/,
      ],
      [
        'graph byte flipped',
        (d) => flip(join(d, meta.graphs.images.file), 2000),
        /images-\d+\.usearch does not match its sha256/,
      ],
      [
        'index.json edited',
        (d) =>
          writeFileSync(
            join(d, 'index.json'),
            readFileSync(join(d, 'index.json'), 'utf8').replace('"rotated.jpg"', '"rotated.jpeg"'),
          ),
        /index\.json does not match its checksum/,
      ],
      [
        'index.json truncated',
        (d) => writeFileSync(join(d, 'index.json'), readFileSync(join(d, 'index.json')).subarray(0, 300)),
        /index\.json is not valid JSON/,
      ],
    ];
    for (const [what, damage, re] of cases) {
      const d = join(tmp, `damaged-${what.replace(/\W+/g, '-')}`);
      spawnSync('cp', ['-r', src, d]);
      damage(d);
      const r = await distill(['search', '--index', d, '--text', 'red heart']);
      expect(r.code, what).toBe(2);
      expect(r.stderr.trim().split('\n')[0], what).toMatch(re);
      expect(r.stderr, what).toMatch(/Rebuild it/);
      expect(r.stderr, what).not.toMatch(/\n\s+at /);
    }
  }, 120_000);

  it('ENOSPC while adding to an index (a full tmpfs): a one-line error, and the old index still answers as before', async () => {
    const probe = spawnSync('unshare', [
      '--user',
      '--map-root-user',
      '--mount',
      'sh',
      '-c',
      `mkdir -p ${tmp}/probe && mount -t tmpfs -o size=1m tmpfs ${tmp}/probe`,
    ]);
    if (probe.status !== 0) {
      // a full disk needs a small tmpfs: a user namespace (unshare) where the kernel allows one
      process.stderr.write(
        `SKIPPED: the ENOSPC test needs \`unshare --user --map-root-user --mount\` (${String(probe.stderr).trim()})\n`,
      );
      return;
    }
    const small = join(tmp, 'small');
    mkdirSync(join(small, 'x'), { recursive: true });
    for (let i = 0; i < 4; i++) copyFileSync(emoji.images[120 + i].path, join(small, 'x', `s${i}.png`));
    const base = join(tmp, 'idx-small');
    expect((await distill(['index', 'build', '--model', model, '--images', small, '--out', base])).code).toBe(0);
    const q = (dir: string) => `${process.execPath} ${BIN} search --index ${dir} --text "red heart" -k 3 --json`;
    const before = distillProcess(['search', '--index', base, '--text', 'red heart', '-k', '3', '--json']);
    expect(before.code, before.stderr).toBe(0);
    const used = Number(spawnSync('du', ['-sk', base], { encoding: 'utf8' }).stdout.split('\t')[0]);
    const mnt = join(tmp, 'full');
    mkdirSync(mnt, { recursive: true });
    // a tmpfs just larger than the index: adding 96 images (vectors, thumbnails, graphs) runs out of space
    const script = [
      `mount -t tmpfs -o size=${used + 48}k tmpfs ${mnt}`,
      `cp -r ${base} ${mnt}/idx`,
      `${process.execPath} ${BIN} index build --images ${photos} --out ${mnt}/idx --skip-bad-images --batch 16 > ${tmp}/enospc.out 2> ${tmp}/enospc.err; echo $? > ${tmp}/enospc.code`,
      `${q(`${mnt}/idx`)} > ${tmp}/after.json 2> ${tmp}/after.err`,
    ].join(' && ');
    const r = spawnSync('unshare', ['--user', '--map-root-user', '--mount', 'sh', '-c', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(join(tmp, 'enospc.code'), 'utf8').trim()).not.toBe('0');
    const err = readFileSync(join(tmp, 'enospc.err'), 'utf8');
    expect(err).toMatch(/no space left on the device/);
    expect(err).not.toMatch(/unexpected error|\n\s+at /);
    const after = JSON.parse(readFileSync(join(tmp, 'after.json'), 'utf8'));
    const strip = (x: { ms?: unknown }) => ({ ...x, ms: undefined });
    expect(strip(after)).toEqual(strip(JSON.parse(before.stdout)));
  }, 300_000);
});

function flip(file: string, at: number): void {
  const b = readFileSync(file);
  b[Math.min(at, b.length - 1)] ^= 0xff;
  writeFileSync(file, b);
}

describe('distill serve and search: the faults of issue 30', () => {
  it('serve --port 99999 and --host on an address this machine lacks: one line each', async () => {
    const idx = join(tmp, 'idx-serve');
    const small = join(tmp, 'serve-src');
    mkdirSync(small, { recursive: true });
    copyFileSync(emoji.images[0].path, join(small, 'one.png'));
    expect((await distill(['index', 'build', '--model', model, '--images', small, '--out', idx])).code).toBe(0);
    const port = await distill(['serve', '--index', idx, '--port', '99999']);
    expect(port.code).toBe(2);
    expect(port.stderr.split('\n')[0]).toBe(
      'distill: --port must be an integer from 0 to 65535 (0: any free port), got 99999.',
    );
    const host = await distill(['serve', '--index', idx, '--port', '0', '--host', '203.0.113.77']);
    expect(host.code).toBe(2);
    expect(host.stderr.split('\n')[0]).toMatch(
      /^distill: --host 203\.0\.113\.77 is not an address of this machine \(it has .*127\.0\.0\.1.*\): use 127\.0\.0\.1, 0\.0\.0\.0/,
    );
  }, 120_000);

  it('a 100,000-character query (the real program): answered, exit 0', () => {
    const q = 'red heart '.repeat(10_000);
    const r = distillProcess(['search', '--index', join(tmp, 'idx-serve'), '--text', q, '-k', '1', '--json']);
    expect(r.signal).toBeNull();
    expect(r.code, r.stderr.slice(0, 500)).toBe(0);
    expect(JSON.parse(r.stdout).results).toHaveLength(1);
  }, 120_000);
});
