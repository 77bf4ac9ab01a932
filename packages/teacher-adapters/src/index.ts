import type { Container } from '@distill/core';
import { registerTeachers } from './teachers.js';

export * from './onnx-teacher.js';
export * from './parity.js';
export * from './feature-store.js';
export * from './teachers.js';
export * from './feature-cache.js';
export * from './shards.js';

/** Binds the ONNX teacher presets (clip, beit3) and `features` under TOKENS.TeacherRegistry. */
export function register(container: Container): void {
  registerTeachers(container);
}
