import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createContainer, registryOf, TOKENS } from '@distill/core';
import { EMOJI_TEACHER_DIR, GLYPHS_TEACHER_DIR, GLYPHS_TEACHER_V3_DIR, register } from './index.js';

const pkgDir = join(import.meta.dirname, '..');

describe('teachers are registered by this package only', () => {
  it('register() alone binds every built-in teacher: ONNX presets, features, the embedded ones and saved students', () => {
    const c = createContainer();
    register(c);
    expect(registryOf(c, TOKENS.TeacherRegistry, 'teacher').names()).toEqual([
      'clip',
      'beit3',
      'features',
      'emoji',
      'glyphs',
      'glyphs-v2',
      'glyphs-v3',
      'student',
    ]);
    register(c); // idempotent
    expect(registryOf(c, TOKENS.TeacherRegistry, 'teacher').names()).toHaveLength(8);
  });

  it('ships the embedded teachers in its own assets/ (found relative to the package, src/ and dist/ alike)', () => {
    expect(EMOJI_TEACHER_DIR).toBe(join(pkgDir, 'assets', 'teachers', 'emoji-teacher-v1'));
    expect(GLYPHS_TEACHER_DIR).toBe(join(pkgDir, 'assets', 'teachers', 'glyphs-teacher-v2'));
    expect(GLYPHS_TEACHER_V3_DIR).toBe(join(pkgDir, 'assets', 'teachers', 'glyphs-teacher-v3'));
    for (const f of ['student.json', 'model.safetensors', 'tokenizer.json'])
      expect(existsSync(join(EMOJI_TEACHER_DIR, f))).toBe(true);
    for (const f of ['student.json', 'model.safetensors']) expect(existsSync(join(GLYPHS_TEACHER_DIR, f))).toBe(true);
    for (const f of ['teacher.json', 'image.onnx']) expect(existsSync(join(GLYPHS_TEACHER_V3_DIR, f))).toBe(true);
    expect((JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { files: string[] }).files).toContain(
      'assets',
    );
  });
});
