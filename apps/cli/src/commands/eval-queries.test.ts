/** `distill eval queries` on a tiny index, and `distill data tokenizer-report`. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initRuntime, repoRoot } from '@distill/core';
import { loadEmoji } from '@distill/data';
import { OnnxModel, VectorIndex, exportStudent } from '@distill/serve';
import { createStudent, trainWholeWordTokenizer } from '@distill/student-architectures';
import { saveStudent } from '@distill/training';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { distillInProcess } from '../run-cli.test-util.js';

const distill = distillInProcess;

const tmp = mkdtempSync(join(tmpdir(), 'distill-eval-queries-'));
const index = join(tmp, 'index');

beforeAll(async () => {
  // an untrained student over 8 emoji test images (rows 8-15: three hearts among them); with 8 images
  // every image is in the top 10, so the hit figures do not depend on the random weights
  await initRuntime('auto', { quiet: true });
  const test = loadEmoji().splits.test;
  const student = createStudent('vit-bert', {
    preset: 'tiny',
    embedDim: 16,
    seed: 1,
    tokenizer: trainWholeWordTokenizer(
      test.captions.map((c) => c.text),
      { vocabSize: 500 },
    ),
    maxLength: 12,
  });
  saveStudent(join(tmp, 'student'), student);
  student.dispose();
  await exportStudent(join(tmp, 'student'), join(tmp, 'model'));
  const model = await OnnxModel.load(join(tmp, 'model'), { threads: 1 });
  const idx = VectorIndex.create(index, model);
  await idx.add(model, {
    source: 'emoji:test[8:16]',
    images: test.images.slice(8, 16),
    captions: test.captions
      .filter((c) => c.image >= 8 && c.image < 16)
      .map((c) => ({ text: c.text, image: c.image - 8 })),
  });
  idx.save();
  await model.dispose();
}, 300_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('distill eval queries', () => {
  it('prints hit@1/5/10 and the misses, warns about a pattern no caption matches', async () => {
    const q = join(tmp, 'q.tsv');
    writeFileSync(q, '# test\nanything\t.\nred heart\theart\nairship\tzeppelin\n');
    const r = await distill(['eval', 'queries', '--index', index, '--queries', q, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('1 of 3 patterns match no caption');
    expect(r.stderr).toContain('line 4 "airship"');
    const e = JSON.parse(r.stdout);
    expect(e.queries).toBe(3);
    expect(e['hit@1']).toBeGreaterThanOrEqual(1 / 3); // '.' matches every caption
    expect(e['hit@10']).toBeCloseTo(2 / 3, 12); // heart is somewhere among the 8; zeppelin nowhere
    expect(e.unmatchable).toEqual(['airship']);
    expect(e.misses.map((m: { query: string }) => m.query)).toEqual(['airship']);
    expect(e.outcomes[1].top).toHaveLength(8);
    const human = await distill(['eval', 'queries', '--index', index, '--queries', q, '--k', '1']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^3 queries: hit@1 \d+\.\d%, hit@5 \d+\.\d%, hit@10 66\.7%, MRR/);
    expect(human.stdout).toContain('"airship" (pattern zeppelin)');
  });

  it('runs a shipped set by name, and explains a missing file', async () => {
    const r = await distill(['eval', 'queries', '--index', index, '--queries', 'emoji', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).queries).toBeGreaterThanOrEqual(40);
    const bad = await distill(['eval', 'queries', '--index', index, '--queries', join(tmp, 'none.tsv')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('Query file not found');
  });
});

describe('distill data tokenizer-report', () => {
  it('the student tokenizer keeps emoji words whole; the shipped emoji teacher (maxLength 30 from its student.json) does not', async () => {
    const r = await distill(['data', 'tokenizer-report', 'emoji', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const now = JSON.parse(r.stdout);
    expect(now.wholeWordShare).toBeGreaterThanOrEqual(0.95);
    expect(now.truncatedShare).toBeLessThanOrEqual(0.005);
    expect(now.commonSplit).toEqual([]);
    const teacher = join(repoRoot(), 'packages', 'teacher-adapters', 'assets', 'teachers', 'emoji-teacher-v1');
    const old = JSON.parse(
      (await distill(['data', 'tokenizer-report', 'emoji', '--tokenizer', teacher, '--split', 'test', '--json']))
        .stdout,
    );
    expect(old.maxLength).toBe(30);
    expect(old.vocabSize).toBe(2000);
    expect(old.wholeWordShare).toBeLessThan(0.5);
    expect(old.commonSplit.map((x: { word: string }) => x.word)).toContain('heart');
  });
});
