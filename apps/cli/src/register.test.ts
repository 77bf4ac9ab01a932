import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { register as registerBalancer } from '@distill/balancer';
import {
  createContainer,
  initRuntime,
  repoRoot,
  TOKENS,
  type Balancer,
  type Container,
  type Dataset,
  type Evaluator,
  type Registry,
  type Student,
  type Teacher,
} from '@distill/core';
import { register as registerData, type DatasetOptions } from '@distill/data';
import { register as registerEval } from '@distill/eval';
import { register as registerLosses, type LossMethod, type LossMethodOptions } from '@distill/losses';
import {
  register as registerStudents,
  type DualEncoderStudent,
  type StudentRegistryConfig,
} from '@distill/student-architectures';
import { register as registerTeachers, type TeacherConfig } from '@distill/teacher-adapters';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliCommand } from './command.js';
import { buildContainer } from './container.js';

/**
 * Each package's `register(container)` binds one registry under its TOKENS entry, with the entries it
 * documents, whose `create` builds a working object from the registry defaults merged under the
 * caller's config. The CLI's composition root binds them all plus every command.
 */

beforeAll(async () => {
  await initRuntime('cpu', { quiet: true });
});

const fresh = (register: (c: Container) => void): Container => {
  const c = createContainer();
  register(c);
  return c;
};
const registry = <C, V>(c: Container, token: symbol) => c.get<Registry<C, V>>(token);
const ctx = (c: Container) => ({ container: c });

const tmp = mkdtempSync(join(tmpdir(), 'distill-register-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('package register functions', () => {
  it('student-architectures: the eight pairs; create applies the defaults (tiny, embedDim 768, maxLength 30) under the config', async () => {
    const c = fresh(registerStudents);
    const reg = registry<StudentRegistryConfig, Student>(c, TOKENS.StudentRegistry);
    expect(reg.kind).toBe('student');
    expect(reg.names()).toEqual([
      'vit-bert',
      'deit-albert',
      'resnet-bert',
      'vit-textcnn',
      'resnet-textcnn',
      'mobilenet-bert',
      'mobilenet-glove',
      'vit-glove',
    ]);
    for (const e of reg.list()) expect(e.description.length).toBeGreaterThan(10);
    const s = (await reg.create('resnet-textcnn', { vocabSize: 50 }, ctx(c))) as DualEncoderStudent;
    expect(s.name).toBe('resnet-textcnn');
    expect(s.embedDim).toBe(768);
    expect(s.config).toMatchObject({
      pair: 'resnet-textcnn',
      preset: 'tiny',
      maxLength: 30,
      image: { type: 'resnet' },
      text: { type: 'textcnn', config: { vocabSize: 50 } },
    });
    s.dispose();
    const t = (await reg.create(
      'vit-bert',
      { embedDim: 12, preset: 'tiny', vocabSize: 40, maxLength: 9 },
      ctx(c),
    )) as DualEncoderStudent;
    expect(t.config).toMatchObject({
      pair: 'vit-bert',
      embedDim: 12,
      maxLength: 9,
      image: { type: 'vit' },
      text: { type: 'bert' },
    });
    t.dispose();
    // registering again keeps the same entries (no duplicate error)
    registerStudents(c);
    expect(registry(c, TOKENS.StudentRegistry)).toBe(reg);
    expect(reg.names()).toHaveLength(8);
  });

  it('teacher-adapters: clip, beit3, features and the embedded teachers; create loads the ONNX folder named by `model` with the preset', async () => {
    const c = fresh(registerTeachers);
    const reg = registry<TeacherConfig, Teacher>(c, TOKENS.TeacherRegistry);
    expect(reg.kind).toBe('teacher');
    expect(reg.names()).toEqual(['clip', 'beit3', 'features', 'emoji', 'glyphs', 'glyphs-v2', 'glyphs-v3', 'student']);
    await expect(reg.create('beit3', {}, ctx(c))).rejects.toThrow(
      /^--teacher beit3 needs --teacher-model <dir>.*export_beit3\.py/,
    );
    await expect(reg.create('beit3', { model: join(tmp, 'none') }, ctx(c))).rejects.toThrow(
      /Teacher folder not found.*export_beit3\.py/,
    );
    // the tiny CLIP export, with a teacher.json giving its own image size (the presets are full-size)
    const fixture = join(repoRoot(), 'packages/teacher-adapters/src/fixtures/hf-tiny/clip');
    const clip = join(tmp, 'clip');
    mkdirSync(clip);
    for (const f of ['image.onnx', 'text.onnx']) copyFileSync(join(fixture, f), join(clip, f));
    writeFileSync(join(clip, 'teacher.json'), JSON.stringify({ imageSize: 16, maxTextLength: 12 }));
    const t = await reg.create('clip', { model: clip, requireTokenizer: false, threads: 1 }, ctx(c));
    expect(t.name).toBe('clip');
    expect(t.maxTextLength).toBe(12); // teacher.json wins over the preset
    expect(t.preprocess.mean).toEqual([0.48145466, 0.4578275, 0.40821073]); // the clip preset's normalisation
    await t.dispose?.();
    const b = await reg.create('beit3', { model: clip, requireTokenizer: false, threads: 1 }, ctx(c)); // same folder, beit3 preset
    expect([b.name, b.preprocess.mean, b.preprocess.std]).toEqual(['beit3', [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]);
    await b.dispose?.();
    registerTeachers(c);
    expect(reg.names()).toHaveLength(8);
  });

  it('losses: every method and the DSMD component lists; create merges temperature 0.05 and returns the named method', async () => {
    const c = fresh(registerLosses);
    const reg = registry<LossMethodOptions, LossMethod>(c, TOKENS.LossRegistry);
    expect(reg.kind).toBe('loss');
    expect(reg.names()).toEqual([
      'dsmd',
      'dsmd-official',
      'dcd',
      'kd',
      'fitnet',
      'rkd',
      'clip-kd',
      'none',
      'cd,fd,sd,hnd',
    ]);
    const ablation = await reg.create('cd,hnd', {}, ctx(c)); // chosen by the pattern entry
    expect(ablation).toMatchObject({ name: 'cd,hnd', components: ['con_loss', 'hnd_loss'] });
    expect(reg.get('kd').defaults).toEqual({ temperature: 0.05 });
    const none = await reg.create('none', {}, ctx(c));
    expect(none).toMatchObject({ name: 'contrastive', needsTeacher: false }); // the no-teacher baseline
    const dsmd = await reg.create('dsmd-official', {}, ctx(c));
    expect(dsmd).toMatchObject({ needsTeacher: true, defaultBalancer: 'dsmd-official' });
    const kd = await reg.create('kd', {}, ctx(c));
    expect(kd.needsTeacher).toBe(true);
    registerLosses(c);
    expect(reg.names()).toHaveLength(9);
  });

  it('balancer: dsmd-paper, dsmd-official, static, static-normalised; create passes the config through', async () => {
    const c = fresh(registerBalancer);
    const reg = registry<Record<string, unknown>, Balancer>(c, TOKENS.BalancerRegistry);
    expect(reg.kind).toBe('balancer');
    expect(reg.names()).toEqual(['dsmd-paper', 'dsmd-official', 'static', 'static-normalised']);
    const st = await reg.create('static', { weights: [0.25, 2] }, ctx(c));
    expect(st.weights([5, 7])).toEqual([0.25, 2]);
    const off = await reg.create('dsmd-official', {}, ctx(c));
    expect(off.name).toBe('dsmd-official');
    registerBalancer(c);
    expect(reg.names()).toHaveLength(4);
  });

  it('data: every dataset; create loads the dataset the config names', async () => {
    const c = fresh(registerData);
    const reg = registry<DatasetOptions, Dataset>(c, TOKENS.DatasetRegistry);
    expect(reg.kind).toBe('dataset');
    expect(reg.names()).toEqual(
      expect.arrayContaining(['emoji', 'emoji-xstyle', 'karpathy', 'flickr30k', 'coco', 'dsmd-list', 'jsonl']),
    );
    const file = join(tmp, 'train.jsonl');
    writeFileSync(
      file,
      ['{"image": "a.png", "captions": ["a red cat", "a cat"]}', '{"image": "b.png", "captions": ["a blue dog"]}'].join(
        '\n',
      ),
    );
    const d = await reg.create('jsonl', { annotations: file, quiet: true } as DatasetOptions, ctx(c));
    expect(d.imageRoot).toBe(tmp);
    expect(d.splits.train.images.map((i) => i.path)).toEqual(['a.png', 'b.png']);
    expect(d.splits.train.captions.map((x) => [x.image, x.text])).toEqual([
      [0, 'a red cat'],
      [0, 'a cat'],
      [1, 'a blue dog'],
    ]);
    await expect(
      reg.create('karpathy', { annotations: join(tmp, 'missing.json') } as DatasetOptions, ctx(c)),
    ).rejects.toThrow(/missing\.json/);
    const n = reg.names().length;
    registerData(c); // registering again keeps the same entries (no duplicate error)
    expect(reg.names()).toHaveLength(n);
  });

  it('eval: recall; create returns an evaluator of grouped Recall@K', async () => {
    const c = fresh(registerEval);
    const reg = registry<Record<string, unknown>, Evaluator>(c, TOKENS.EvaluatorRegistry);
    expect(reg.kind).toBe('evaluator');
    expect(reg.names()).toEqual(['recall']);
    expect(reg.get('recall').defaults).toEqual({ engine: 'auto', blockRows: 256 });
    const ev = await reg.create('recall', { engine: 'js' }, ctx(c));
    // 2 images, 3 texts: texts 0, 1 -> image 0, text 2 -> image 1; text 1 is nearer image 1
    const m = ev.evaluate(
      Float32Array.of(1, 0, 0, 1),
      Float32Array.of(1, 0, 0.2, 0.98, 0, 1),
      2,
      Int32Array.of(0, 0, 1),
    );
    expect(m.i2t_r1).toBe(100);
    expect(m.t2i_r1).toBeCloseTo((2 / 3) * 100, 10);
    registerEval(c); // idempotent
    expect(reg.names()).toEqual(['recall']);
  });
});

describe('buildContainer (the CLI composition root)', () => {
  it('binds the logger, all six registries (the built-ins, the embedded teachers of teacher-adapters) and every command', () => {
    const c = buildContainer();
    expect(c.isBound(TOKENS.Logger)).toBe(true);
    const sizes = Object.fromEntries(
      (
        [
          'StudentRegistry',
          'TeacherRegistry',
          'LossRegistry',
          'BalancerRegistry',
          'DatasetRegistry',
          'EvaluatorRegistry',
        ] as const
      ).map((k) => [k, c.get<Registry<unknown, unknown>>(TOKENS[k]).names().length]),
    );
    expect(sizes).toMatchObject({ StudentRegistry: 8, TeacherRegistry: 8, BalancerRegistry: 4, EvaluatorRegistry: 1 });
    expect(c.get<Registry<unknown, unknown>>(TOKENS.DatasetRegistry).names()).toEqual(
      expect.arrayContaining(['emoji', 'emoji-xstyle', 'karpathy', 'flickr30k', 'coco', 'dsmd-list', 'jsonl']),
    );
    expect(c.get<Registry<unknown, unknown>>(TOKENS.LossRegistry).names()).toEqual(
      expect.arrayContaining(['dsmd', 'dsmd-official', 'dcd', 'kd', 'fitnet', 'rkd', 'clip-kd', 'none']),
    );
    const commands = c
      .getAll<CliCommand>(TOKENS.Command)
      .map((x) => `${x.group ? `${x.group} ` : ''}${x.command.split(' ')[0]}`);
    expect(commands).toEqual(
      expect.arrayContaining([
        'data build',
        'data info',
        'doctor',
        'eval embeddings',
        'export',
        'index build',
        'models',
        'parity hf',
        'parity losses',
        'parity onnx-teacher',
        'search',
        'serve',
        'list',
        'teacher extract',
        'teacher pretrain',
        'train',
      ]),
    );
    expect(commands).not.toContain('train-one'); // the baseline runs through @distill/training's worker module
    expect(new Set(commands).size).toBe(commands.length);
  });
});
