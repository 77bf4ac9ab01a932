/**
 * @distill/base: what every distill package shares that needs no runtime (no tfjs, no onnxruntime):
 * DistillError and the files helpers, logging, progress, seeded RNG, run locks, checksums, the
 * registries and container tokens, the contracts (Dataset, Teacher, Balancer, Evaluator, the
 * `Ops<T>` interface every model and loss is written against), the file formats (npy, safetensors,
 * verified checkpoints). @distill/core re-exports all of it beside the runtimes.
 */
export * from './log.js';
export * from './rng.js';
export * from './fs.js';
export * from './progress.js';
export * from './container.js';
export * from './interfaces.js';
export * from './shared.js';
export * from './integrity.js';
export * from './formats/index.js';
export * from './run-lock.js';
export type { Ops, TensorParams } from './ops.js';
export * from './rows.js';
