import { afterAll, describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repoRoot } from '@distill/core';

const fx = (f: string) => fileURLToPath(new URL(`./fixtures/${f}`, import.meta.url));
const distill = (...args: string[]) =>
  spawnSync(process.execPath, ['apps/cli/bin/distill.js', ...args], { cwd: repoRoot(), encoding: 'utf8' });

/** A minimal float32 .npy (v1.0) writer, so the fixture below is built where it can be read. */
function npy(data: Float32Array, shape: number[]): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([
    pre,
    Buffer.from(header, 'latin1'),
    Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  ]);
}

/**
 * 12 images x 13 captions; caption j < 12 belongs to image j, caption 12 to image 0. Texts are the
 * identity, so each image's embedding is its row of scores. Own pairs (o) score 0.5, '+' 0.75, '=' 0.5
 * (a tie with the own pair: counts as ahead), '-' 0.25. Below the diagonal every entry is ahead, so
 * image i's rank is i (0-based) and caption j's rank is 11 - j: ranks 1, 5, 10 and 11 (1-based) both ways.
 * Ties sit exactly at the cut-offs: rows 1, 5, 10 and columns 1, 6, 10 would each move inside a cut-off
 * if ties were ranked optimistically. Caption 12 scores 0.1 with image 0 and 0.25 with the others:
 * 11 images ahead (rank 11), and behind every image's own caption.
 */
const TRIANGLE = [
  'o----------- ',
  '=o---------- ',
  '++o--------- ',
  '+++o-------- ',
  '++++o------- ',
  '=++++o------ ',
  '++++++o----- ',
  '++++++=o---- ',
  '++++++++o--- ',
  '+++++++++o-- ',
  '+=++++++++o- ',
  '++++++++++=o ',
];

describe('distill eval embeddings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'distill-eval-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const score: Record<string, number> = { o: 0.5, '+': 0.75, '=': 0.5, '-': 0.25 };
  const S = TRIANGLE.map((row, i) => [...row.slice(0, 12)].map((c) => score[c]).concat(i === 0 ? 0.1 : 0.25));
  const images = join(dir, 'images.npy');
  const texts = join(dir, 'texts.npy');
  const textImage = join(dir, 'text-image.json');
  writeFileSync(images, npy(Float32Array.from(S.flat()), [12, 13]));
  writeFileSync(
    texts,
    npy(
      Float32Array.from({ length: 13 * 13 }, (_, k) => (k % 14 === 0 ? 1 : 0)),
      [13, 13],
    ),
  );
  writeFileSync(textImage, JSON.stringify([...Array(12).keys(), 0]));

  for (const engine of ['js', 'onnx']) {
    it(`counts ties as misses exactly at the R@1/5/10 cut-offs (--engine ${engine})`, () => {
      const r = distill(
        'eval',
        'embeddings',
        '--images',
        images,
        '--texts',
        texts,
        '--text-image',
        textImage,
        '--ranks',
        '--engine',
        engine,
      );
      expect(r.status, r.stderr).toBe(0);
      // i2t ranks 0..11 over 12 images: 1, 5 and 10 of them inside the top 1, 5, 10.
      // t2i ranks 11..0 for captions 0..11 plus 11 for caption 12: 1, 5, 10 of 13.
      const i2t = [100 / 12, 500 / 12, 1000 / 12];
      const t2i = [100 / 13, 500 / 13, 1000 / 13];
      const out = JSON.parse(r.stdout);
      expect(out).toEqual({
        i2t_r1: expect.closeTo(i2t[0], 10),
        i2t_r5: expect.closeTo(i2t[1], 10),
        i2t_r10: expect.closeTo(i2t[2], 10),
        t2i_r1: expect.closeTo(t2i[0], 10),
        t2i_r5: expect.closeTo(t2i[1], 10),
        t2i_r10: expect.closeTo(t2i[2], 10),
        rsum: expect.closeTo(i2t[0] + i2t[1] + i2t[2] + t2i[0] + t2i[1] + t2i[2], 9),
        // medians: i2t (5 + 6) / 2 -> floor 5 -> 6; t2i the 7th of 0..11, 11 -> 6 -> 7. Means + 1.
        i2t_medr: 6,
        i2t_meanr: expect.closeTo(66 / 12 + 1, 10),
        t2i_medr: 7,
        t2i_meanr: expect.closeTo(77 / 13 + 1, 10),
      });
    });
  }

  it('prints the seven recall numbers as JSON on stdout', () => {
    // 50 unit images, 5 noisy captions each (numpy, seed 0): every caption is closest to its own image.
    const r = distill(
      'eval',
      'embeddings',
      '--images',
      fx('images.npy'),
      '--texts',
      fx('texts.npy'),
      '--text-image',
      fx('text-image.json'),
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      i2t_r1: 100,
      i2t_r5: 100,
      i2t_r10: 100,
      t2i_r1: 100,
      t2i_r5: 100,
      t2i_r10: 100,
      rsum: 600,
    });
  });

  it('explains a text-image list of the wrong length without a stack trace', () => {
    const r = distill(
      'eval',
      'embeddings',
      '--images',
      fx('images.npy'),
      '--texts',
      fx('texts.npy'),
      '--text-image',
      fx('images.npy'),
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/expected a 1-D array of indices/);
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
  });
});
