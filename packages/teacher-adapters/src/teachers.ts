import { DistillError, registryOf, sha256, TOKENS, type Container, type Dataset, type Teacher } from '@distill/core';
import { loadFeatureStore, type SplitFeatures } from './feature-store.js';
import { OnnxTeacher, TEACHER_PRESETS, type OnnxTeacherOptions } from './onnx-teacher.js';

/** Config of a teacher registry entry: the folder (`--teacher-model`) and how to run it. */
export type TeacherConfig = OnnxTeacherOptions & { model?: string };

/**
 * Features computed elsewhere (the `features` teacher): nothing to run, only rows to read, aligned with
 * the dataset's splits.
 */
export interface PrecomputedTeacher {
  readonly name: string;
  readonly precomputed: true;
  fingerprint(): string;
  features(dataset: Dataset): { dim: number; splits: Record<string, SplitFeatures> };
}

/** What a teacher registry entry creates: a model to run over the data, or precomputed features. */
export type TeacherSource = Teacher | PrecomputedTeacher;

export function isPrecomputed(t: TeacherSource): t is PrecomputedTeacher {
  return (t as PrecomputedTeacher).precomputed === true;
}

/** An ONNX preset teacher (clip, beit3): its folder is required, and the error says how to make one. */
function onnxEntry(name: string) {
  return {
    name,
    description: `${name} exported to ONNX: --teacher-model <folder> with image.onnx, text.onnx, tokenizer.json, teacher.json (tools/export/export_${name}.py)`,
    create: (cfg: TeacherConfig) => {
      if (!cfg.model) {
        throw new DistillError(
          `--teacher ${name} needs --teacher-model <dir>: a folder with image.onnx, text.onnx, tokenizer.json and teacher.json. ` +
            `Export one with tools/export/export_${name}.py (see docs/teachers.md); without --teacher, distill uses the embedded emoji teacher.`,
          2,
        );
      }
      return OnnxTeacher.load(cfg.model, { ...cfg, preset: name });
    },
  };
}

const FEATURES = {
  name: 'features',
  description:
    'precomputed features: --teacher-model <folder of <split>.image.npy + <split>.text.npy, or a .safetensors feature file>',
  create: (cfg: TeacherConfig): PrecomputedTeacher => {
    const model = cfg.model;
    if (!model)
      throw new DistillError(
        '--teacher features needs --teacher-model <folder of <split>.image.npy + <split>.text.npy, or a .safetensors feature file>.',
        2,
      );
    return {
      name: 'features',
      precomputed: true,
      fingerprint: () => sha256(model),
      features: (dataset) => loadFeatureStore(model, dataset),
    };
  },
};

/** Binds the ONNX teacher presets (clip, beit3) and the `features` teacher under TOKENS.TeacherRegistry (idempotent). */
export function registerTeachers(container: Container): void {
  const reg = registryOf<TeacherConfig, TeacherSource>(container, TOKENS.TeacherRegistry, 'teacher');
  for (const name of Object.keys(TEACHER_PRESETS)) if (!reg.has(name)) reg.add(onnxEntry(name));
  if (!reg.has(FEATURES.name)) reg.add(FEATURES);
}
