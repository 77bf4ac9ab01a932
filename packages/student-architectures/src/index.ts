import { registryOf, TOKENS, type Container } from '@distill/core';
import { PAIRS } from './presets.js';
import { createStudent, type CreateStudentOptions, type DualEncoderStudent } from './student.js';

export * from './safetensors.js';
export * from './ops.js';
export * from './params.js';
export type * from './encoder.js';
export * from './vit.js';
export * from './bert.js';
export * from './resnet.js';
export * from './mobilenet.js';
export * from './textcnn.js';
export * from './hf.js';
export * from './tokenizer.js';
export * from './glove.js';
export * from './glove-text.js';
export * from './tokenizer-report.js';
export * from './presets.js';
export * from './student.js';
export * from './parity.js';
export * from './onnx-engine.js';
export * from './dropout-graph.js';
export * from './saved-student.js';

/** Typed config of a student registry entry (the pair is the entry's name). */
export type StudentRegistryConfig = CreateStudentOptions;

/** Binds every student pair under TOKENS.StudentRegistry. */
export function register(container: Container): void {
  const reg = registryOf<StudentRegistryConfig, DualEncoderStudent>(container, TOKENS.StudentRegistry, 'student');
  for (const p of PAIRS) {
    if (reg.has(p.name)) continue;
    reg.add({
      name: p.name,
      description: p.description,
      defaults: { preset: 'tiny', embedDim: 768, seed: 0, maxLength: 30 },
      create: (cfg) => createStudent(p.name, cfg),
    });
  }
}
