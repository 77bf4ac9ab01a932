import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContainer, registryByKind, type Teacher } from '@distill/core';
import { register as registerTeacherAdapters } from '@distill/teacher-adapters';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveConfig } from './config.js';
import {
  createTrainingContainer,
  EMOJI_TEACHER_DIR,
  GLYPHS_TEACHER_DIR,
  GLYPHS_TEACHER_V3_DIR,
  loadPlugins,
  resolvePlugin,
} from './registries.js';
import { createTeacher } from './teacher-features.js';

/** This test's own registries (the built-ins; there is no global container). */
const builtins = createTrainingContainer();
const tmp = mkdtempSync(join(tmpdir(), 'distill-registries-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A plugin file with no imports (it reaches the registries through the container's tokens). */
function pluginFile(name: string, body: string): string {
  const f = join(tmp, name);
  writeFileSync(f, body);
  return f;
}
const DATASET_PLUGIN = `export function register(c) {
  const reg = c.get(Symbol.for('distill.DatasetRegistry'));
  if (!reg.has('my-set')) reg.add({ name: 'my-set', description: 'a plugin dataset', create: () => ({ name: 'my-set' }) });
}
`;

describe('createTrainingContainer', () => {
  it("holds every package's entries (the teachers all from teacher-adapters)", () => {
    const c = createTrainingContainer();
    expect(registryByKind(c, 'teacher').names()).toEqual([
      'clip',
      'beit3',
      'features',
      'emoji',
      'glyphs',
      'glyphs-v2',
      'glyphs-v3',
      'student',
    ]);
    expect(registryByKind(c, 'student').names()).toEqual([
      'vit-bert',
      'deit-albert',
      'resnet-bert',
      'vit-textcnn',
      'resnet-textcnn',
      'mobilenet-bert',
      'mobilenet-glove',
      'vit-glove',
    ]);
    expect(registryByKind(c, 'balancer').names()).toEqual([
      'dsmd-paper',
      'dsmd-official',
      'static',
      'static-normalised',
    ]);
    expect(registryByKind(c, 'evaluator').names()).toEqual(['recall']);
    expect(registryByKind(c, 'dataset').names()).toContain('emoji');
    expect(registryByKind(c, 'loss').accepts('cd,hnd')).toBe(true);
  });
});

describe('teachers by name', () => {
  it('every teacher comes from @distill/teacher-adapters: the built-ins add none beside its register()', () => {
    const only = createContainer();
    registerTeacherAdapters(only);
    expect(registryByKind(createTrainingContainer(), 'teacher').names()).toEqual(
      registryByKind(only, 'teacher').names(),
    );
  });

  it('emoji is the embedded saved student; a saved-student folder is accepted under any name; unknown names list the entries', async () => {
    const c = createTrainingContainer();
    const t = (await createTeacher({ name: 'emoji' }, { container: c })) as Teacher;
    expect([t.name, t.dim]).toEqual(['emoji', 256]);
    await t.dispose?.();
    const mine = (await createTeacher({ name: 'mine', model: EMOJI_TEACHER_DIR }, { container: c })) as Teacher;
    expect(mine.name).toBe('mine');
    await mine.dispose?.();
    await expect(createTeacher({ name: 'mine', model: tmp }, { container: c })).rejects.toThrow(
      "Unknown teacher 'mine'. Available: clip, beit3, features, emoji, glyphs, glyphs-v2, glyphs-v3, student (or any name with --teacher-model <a saved distill student folder>).",
    );
    await expect(createTeacher({ name: 'clip' }, { container: c })).rejects.toThrow(
      /^--teacher clip needs --teacher-model <dir>: .*export_clip\.py/,
    );
    await expect(createTeacher({ name: 'features' }, { container: c })).rejects.toThrow(
      /^--teacher features needs --teacher-model/,
    );
  });
});

describe('the embedded glyphs teacher', () => {
  it('loads from its folder, or from --teacher-model; a missing folder says how to make it', async () => {
    const c = createTrainingContainer();
    const t = (await createTeacher({ name: 'glyphs', model: EMOJI_TEACHER_DIR }, { container: c })) as Teacher; // a saved student folder
    expect([t.name, t.dim]).toEqual(['glyphs', 256]);
    await t.dispose?.();
    await expect(createTeacher({ name: 'glyphs', model: join(tmp, 'none') }, { container: c })).rejects.toThrow(
      /embedded glyphs teacher is missing at .*none.*distill teacher pretrain --kind heads --dataset glyphs/,
    );
    await expect(createTeacher({ name: 'glyphs-v2', model: join(tmp, 'none') }, { container: c })).rejects.toThrow(
      /embedded glyphs-v2 teacher is missing at .*none.*distill teacher pretrain --dataset glyphs/,
    );
    expect(GLYPHS_TEACHER_DIR).toMatch(/assets[\\/]teachers[\\/]glyphs-teacher-v2$/);
    expect(GLYPHS_TEACHER_V3_DIR).toMatch(/assets[\\/]teachers[\\/]glyphs-teacher-v3$/);
  });

  it('ships teacher v2 with the command, seed and time that made it', async () => {
    const meta = JSON.parse(readFileSync(join(GLYPHS_TEACHER_DIR, 'student.json'), 'utf8'));
    expect(meta.provenance).toMatchObject({
      command: 'distill teacher pretrain --dataset glyphs --seed 0',
      seed: 0,
      config: { dataset: { name: 'glyphs' }, losses: 'none' },
    });
    expect(meta.provenance.config.schedule).toEqual(
      resolveConfig({ container: builtins, preset: 'glyphs-teacher' }).schedule,
    ); // the preset is the recipe that made it
    expect(meta.provenance.trainSeconds).toBeGreaterThan(0);
    expect(meta.provenance.test.rsum).toBeGreaterThan(0);
    const t = (await createTeacher({ name: 'glyphs-v2' }, { container: createTrainingContainer() })) as Teacher;
    expect([t.name, t.dim]).toEqual(['glyphs-v2', 256]);
    await t.dispose?.();
  });

  it('glyphs is teacher v3 (an ONNX folder: frozen MobileNetV2 + GloVe under trained heads), with the command and figures that made it', async () => {
    const spec = JSON.parse(readFileSync(join(GLYPHS_TEACHER_V3_DIR, 'teacher.json'), 'utf8'));
    expect(spec).toMatchObject({
      imageSize: 96,
      maxTextLength: 16,
      dim: 256,
      provenance: {
        command: 'distill teacher pretrain --kind heads --dataset glyphs --epochs 12 --seed 1',
        config: { layer: 'block_12', epochs: 12 },
      },
    });
    expect(spec.provenance.test.rsum).toBeGreaterThan(61.6); // beats teacher v2
    for (const name of ['glyphs', 'glyphs-v3']) {
      const t = (await createTeacher({ name }, { container: createTrainingContainer() })) as Teacher;
      expect([t.name, t.dim]).toEqual([name, 256]);
      await t.dispose?.();
    }
  });

  it('the glyphs presets: teacher v2 trains without a teacher; the glyphs main job distils teacher v3 into mobilenet-glove with KD, with the baseline', () => {
    const t = resolveConfig({ container: builtins, preset: 'glyphs-teacher' });
    expect(t).toMatchObject({
      losses: 'none',
      dataset: { name: 'glyphs' },
      baseline: false,
      student: { pair: 'vit-bert', overrides: { image: { hiddenSize: 128 }, text: { hiddenSize: 128 } } },
    });
    const m = resolveConfig({ container: builtins, preset: 'glyphs' });
    expect(m).toMatchObject({
      losses: 'kd',
      dataset: { name: 'glyphs' },
      teacher: { name: 'glyphs' },
      baseline: true,
      student: { pair: 'mobilenet-glove', preset: 'small' },
      schedule: { epochs: 20, decayEpoch: 16 },
    });
  });
});

describe('plugins', () => {
  it('a plugin file adds entries; config validation accepts them in the container it was loaded into (not in another)', async () => {
    const file = pluginFile('dataset-plugin.mjs', DATASET_PLUGIN);
    expect(() => resolveConfig({ container: builtins, overrides: { dataset: { name: 'my-set' } } })).toThrow(
      /dataset\.name: expected one of emoji, .*jsonl, got the string "my-set"/,
    );
    const c = createTrainingContainer();
    expect(await loadPlugins(c, [file])).toEqual([file]);
    await loadPlugins(c, [file]); // loading twice keeps one entry
    expect(
      registryByKind(c, 'dataset')
        .names()
        .filter((n) => n === 'my-set'),
    ).toHaveLength(1);
    expect(resolveConfig({ container: c, overrides: { dataset: { name: 'my-set' } } }).dataset.name).toBe('my-set');
    // no global container: the built-ins' container still refuses the plugin's name
    expect(() => resolveConfig({ container: builtins, overrides: { dataset: { name: 'my-set' } } })).toThrow(
      /dataset\.name: expected one of/,
    );
  });

  it('a package folder resolves to its exports entry (the source entry under tsx/vitest), else main', () => {
    const pkg = join(tmp, 'pkg');
    mkdirSync(join(pkg, 'src'), { recursive: true });
    mkdirSync(join(pkg, 'dist'), { recursive: true });
    writeFileSync(join(pkg, 'src', 'index.ts'), DATASET_PLUGIN);
    writeFileSync(join(pkg, 'dist', 'index.js'), DATASET_PLUGIN);
    writeFileSync(
      join(pkg, 'package.json'),
      JSON.stringify({
        name: 'pkg',
        exports: { '.': { '@distill/source': './src/index.ts', default: './dist/index.js' } },
      }),
    );
    expect(resolvePlugin(pkg)).toBe(join(pkg, 'src', 'index.ts'));
    expect(resolvePlugin('./pkg', tmp)).toBe(join(pkg, 'src', 'index.ts'));
    const old = join(tmp, 'old');
    mkdirSync(old);
    writeFileSync(join(old, 'plugin.js'), DATASET_PLUGIN);
    writeFileSync(join(old, 'package.json'), JSON.stringify({ name: 'old', main: 'plugin.js' }));
    expect(resolvePlugin(old)).toBe(join(old, 'plugin.js'));
  });

  it('a missing plugin, an uninstalled package and a module without register() are one-line errors', async () => {
    const c = createTrainingContainer();
    await expect(loadPlugins(c, ['./nope'], tmp)).rejects.toThrow(
      `Plugin not found: ${join(tmp, 'nope')} (from --plugin ./nope). Give a package folder, a .js/.ts file, or an installed package name.`,
    );
    await expect(loadPlugins(c, ['distill-plugin-that-is-not-installed'], tmp)).rejects.toThrow(
      /^Plugin 'distill-plugin-that-is-not-installed' is not installed where .* can resolve it: npm install it, or give its folder as a path/,
    );
    const bad = pluginFile('no-register.mjs', 'export const x = 1;\n');
    await expect(loadPlugins(c, [bad])).rejects.toThrow(
      `Plugin '${bad}' (${bad}) exports no register(container) function: export one that adds its entries to the registries.`,
    );
    const clash = pluginFile(
      'clash.mjs',
      "export function register(c) { c.get(Symbol.for('distill.DatasetRegistry')).add({ name: 'emoji', description: '', create: () => null }); }\n",
    );
    await expect(loadPlugins(c, [clash])).rejects.toThrow(
      "dataset 'emoji' is registered twice (a plugin or package reuses a built-in name): rename one of them.",
    );
  });
});
