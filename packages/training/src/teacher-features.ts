import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DistillError, repoRoot, type Dataset, type Logger, type Teacher } from '@distill/core';
import { ImageLoader } from '@distill/data';
import type { TrainConfig } from './config.js';
import { SavedStudentTeacher } from './saved-student.js';

/** Teacher features of every split, rows aligned with split.images / split.captions. */
export interface TeacherFeatures {
  name: string;
  dim: number;
  fingerprint: string;
  train: { images: Float32Array; texts: Float32Array };
  splits: Record<string, { images: Float32Array; texts: Float32Array }>;
  /** Parameters of the teacher, when known (for the report). */
  parameters?: number;
}

/** The embedded default teacher: a larger dual encoder distill trained on the emoji train split. */
export const EMOJI_TEACHER_DIR = join(repoRoot(), 'assets', 'teachers', 'emoji-vit-bert-small-v1');

export function createTeacher(cfg: TrainConfig): Teacher {
  const name = cfg.teacher.name;
  if (name === 'emoji') {
    const dir = cfg.teacher.model ?? EMOJI_TEACHER_DIR;
    if (!existsSync(join(dir, 'student.json'))) {
      throw new DistillError(
        `The embedded emoji teacher is missing at ${dir}. Recreate it with the command in assets/teachers/README.md ` +
          '(distill teacher pretrain), or pass --teacher-model <dir>.',
      );
    }
    return SavedStudentTeacher.load(dir, 'emoji');
  }
  throw new DistillError(`Teacher '${name}' is not available to the trainer yet.`, 2);
}

/** Run the teacher over every split (images once each, captions once each). */
export async function obtainTeacherFeatures(cfg: TrainConfig, dataset: Dataset, log: Logger): Promise<TeacherFeatures> {
  const teacher = createTeacher(cfg);
  const loader = new ImageLoader(dataset, teacher.preprocess, { memoryCache: false, skipBadImages: cfg.dataset.skipBadImages, logger: log });
  const splits: TeacherFeatures['splits'] = {};
  const bs = cfg.teacher.batchSize;
  for (const [name, split] of Object.entries(dataset.splits)) {
    const images = new Float32Array(split.images.length * teacher.dim);
    for (let s = 0; s < split.images.length; s += bs) {
      const idx = Array.from({ length: Math.min(bs, split.images.length - s) }, (_, i) => s + i);
      images.set(await teacher.encodeImages(await loader.load(idx, name), idx.length), s * teacher.dim);
    }
    const texts = new Float32Array(split.captions.length * teacher.dim);
    for (let s = 0; s < split.captions.length; s += bs) {
      texts.set(await teacher.encodeTexts(split.captions.slice(s, s + bs).map((c) => c.text)), s * teacher.dim);
    }
    splits[name] = { images, texts };
  }
  log.info(`teacher ${teacher.name}: features for ${Object.keys(splits).join(', ')} (dim ${teacher.dim})`);
  const parameters = teacher instanceof SavedStudentTeacher ? teacher.student.parameterCount().total : undefined;
  await teacher.dispose?.();
  return { name: teacher.name, dim: teacher.dim, fingerprint: teacher.fingerprint(), train: splits.train, splits, parameters };
}
