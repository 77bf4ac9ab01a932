import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DistillError, registryOf, TOKENS, type Container, type RegistryContext } from '@distill/core';
import { SavedStudentTeacher } from '@distill/student-architectures';
import { OnnxTeacher } from './onnx-teacher.js';
import type { TeacherConfig, TeacherSource } from './teachers.js';

/**
 * The embedded teachers: larger dual encoders distill trained itself (`distill teacher pretrain`), one per
 * embedded benchmark. They ship in this package (`files`: assets/), so the paths are relative to this
 * module: src/ and dist/ alike.
 */
export const EMOJI_TEACHER_DIR = fileURLToPath(new URL('../assets/teachers/emoji-teacher-v1', import.meta.url));
export const GLYPHS_TEACHER_DIR = fileURLToPath(new URL('../assets/teachers/glyphs-teacher-v2', import.meta.url));

/** Teacher v3 of glyphs: frozen MobileNetV2 + GloVe under trained heads, an ONNX teacher folder (`distill teacher pretrain --kind heads`). */
export const GLYPHS_TEACHER_V3_DIR = fileURLToPath(new URL('../assets/teachers/glyphs-teacher-v3', import.meta.url));

const isSavedStudent = (dir?: string) => !!dir && existsSync(join(dir, 'student.json'));

/**
 * The registry entry of an embedded ONNX teacher folder (teacher v3): its folder unless --teacher-model
 * names another (an ONNX teacher folder, or a saved distill student such as teacher v2's).
 */
function embeddedOnnxTeacher(name: string, dir: string, dataset: string, description: string) {
  return {
    name,
    description,
    create: (cfg: TeacherConfig) => {
      const folder = cfg.model ?? dir;
      if (isSavedStudent(folder)) return SavedStudentTeacher.load(folder, name);
      if (!existsSync(join(folder, 'image.onnx'))) {
        throw new DistillError(
          `The embedded ${name} teacher is missing at ${folder}. Recreate it with the command in @distill/teacher-adapters' assets/teachers/README.md ` +
            `(distill teacher pretrain --kind heads --dataset ${dataset}), or pass --teacher-model <dir>.`,
        );
      }
      return OnnxTeacher.load(folder, {
        threads: cfg.threads,
        executionProviders: cfg.executionProviders,
        spec: { name },
      });
    },
  };
}

/** The registry entry of an embedded teacher: its folder unless --teacher-model names another. */
function embeddedTeacher(name: string, dir: string, dataset: string, description: string) {
  return {
    name,
    description,
    create: (cfg: TeacherConfig) => {
      const folder = cfg.model ?? dir;
      if (!isSavedStudent(folder)) {
        throw new DistillError(
          `The embedded ${name} teacher is missing at ${folder}. Recreate it with the command in @distill/teacher-adapters' assets/teachers/README.md ` +
            `(distill teacher pretrain --dataset ${dataset}), or pass --teacher-model <dir>.`,
        );
      }
      return SavedStudentTeacher.load(folder, name);
    },
  };
}

const EMOJI_TEACHER = embeddedTeacher(
  'emoji',
  EMOJI_TEACHER_DIR,
  'emoji',
  'the embedded emoji teacher (preset emoji, the default of resolveConfig): a 1.24M-parameter vit-bert shipped with @distill/teacher-adapters (--teacher-model overrides its folder)',
);
const GLYPHS_TEACHER_V3 = embeddedOnnxTeacher(
  'glyphs-v3',
  GLYPHS_TEACHER_V3_DIR,
  'glyphs',
  'teacher v3 of glyphs: frozen pretrained MobileNetV2 features + frozen GloVe word vectors under trained heads (an ONNX teacher folder shipped with @distill/teacher-adapters; its tokenizer keeps words whole)',
);
const GLYPHS_TEACHER_V2 = embeddedTeacher(
  'glyphs-v2',
  GLYPHS_TEACHER_DIR,
  'glyphs',
  'teacher v2 of glyphs: a 1.24M-parameter vit-bert distill trained from scratch on the glyphs train split (test RSUM 61.6), shipped with @distill/teacher-adapters',
);
/** `glyphs` is the winner of the glyphs teachers (teacher v3 since it scored 91.3 +- 4.1 test RSUM over 3 seeds against v2's 61.6). */
const GLYPHS_TEACHER = embeddedOnnxTeacher(
  'glyphs',
  GLYPHS_TEACHER_V3_DIR,
  'glyphs',
  'the embedded glyphs teacher (preset glyphs, the main job): teacher v3 (glyphs-v3), the better of the glyphs teachers; --teacher-model takes an ONNX teacher folder or a saved student (glyphs-v2 names teacher v2)',
);

const SAVED_STUDENT_TEACHER = {
  name: 'student',
  description:
    'a saved distill student as the teacher: --teacher-model <run-dir>/student/best (any --teacher name with such a folder picks it)',
  matches: (_name: string, cfg: Partial<TeacherConfig>) => isSavedStudent(cfg.model),
  create: (cfg: TeacherConfig, ctx: RegistryContext) => {
    if (!isSavedStudent(cfg.model))
      throw new DistillError(
        `--teacher ${ctx.name ?? 'student'} needs --teacher-model <folder of a saved distill student (student.json, model.safetensors)>, e.g. <run-dir>/student/best.`,
        2,
      );
    return SavedStudentTeacher.load(cfg.model!, ctx.name ?? 'student');
  },
};

/** The teachers distill made itself (embedded emoji and glyphs teachers) and any saved student folder, as registry entries. */
export const EMBEDDED_TEACHERS = [
  EMOJI_TEACHER,
  GLYPHS_TEACHER,
  GLYPHS_TEACHER_V2,
  GLYPHS_TEACHER_V3,
  SAVED_STUDENT_TEACHER,
];

/** Binds the embedded teachers and the saved-student teacher under TOKENS.TeacherRegistry (idempotent). */
export function registerEmbeddedTeachers(container: Container): void {
  const teachers = registryOf<TeacherConfig, TeacherSource>(container, TOKENS.TeacherRegistry, 'teacher');
  for (const e of EMBEDDED_TEACHERS) if (!teachers.has(e.name)) teachers.add(e);
}
