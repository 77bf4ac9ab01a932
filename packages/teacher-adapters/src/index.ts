import type { Container } from '@distill/core';
import { registerEmbeddedTeachers } from './embedded-teachers.js';
import { registerTeachers } from './teachers.js';

export * from './onnx-teacher.js';
export * from './parity.js';
export * from './feature-store.js';
export * from './teachers.js';
export * from './feature-cache.js';
export * from './feature-files.js';
export * from './shards.js';
export {
  EMOJI_TEACHER_DIR,
  GLYPHS_TEACHER_DIR,
  GLYPHS_TEACHER_V3_DIR,
  EMBEDDED_TEACHERS,
} from './embedded-teachers.js';

/**
 * Binds every built-in teacher under TOKENS.TeacherRegistry: the ONNX teacher presets (clip, beit3),
 * `features`, the embedded teachers (emoji, glyphs, glyphs-v2, glyphs-v3) and `student` (a saved
 * distill student folder). No other package registers teachers.
 */
export function register(container: Container): void {
  registerTeachers(container);
  registerEmbeddedTeachers(container);
}
