import { registryOf, TOKENS, type Container, type Teacher } from '@distill/core';
import { OnnxTeacher, TEACHER_PRESETS, type OnnxTeacherOptions } from './onnx-teacher.js';

export * from './onnx-teacher.js';
export * from './parity.js';
export * from './feature-store.js';

export type TeacherConfig = OnnxTeacherOptions & { model?: string };

/** Binds the ONNX teacher presets (clip, beit3) under TOKENS.TeacherRegistry. */
export function register(container: Container): void {
  const reg = registryOf<TeacherConfig, Teacher>(container, TOKENS.TeacherRegistry, 'teacher');
  for (const name of Object.keys(TEACHER_PRESETS)) {
    if (!reg.has(name)) {
      reg.add({
        name,
        description: `${name} exported to ONNX (image.onnx, text.onnx, tokenizer.json, teacher.json)`,
        create: (cfg) => OnnxTeacher.load(cfg.model ?? '', { ...cfg, preset: name }),
      });
    }
  }
}
