// Opt-in speed-ups for training on tfjs-wasm (see docs/benchmarks.md). Not re-exported by
// @distill/core's index yet: add `export * from './engine/index.js';` there to expose them.
export { installWasmFastKernels, type FastKernelStats } from './wasm-fast-kernels.js';
export { collapseTranspose, transposeInto } from './js-transpose.js';
export {
  startDataParallel,
  type DataParallel,
  type DataParallelOptions,
  type DataParallelTask,
  type DataParallelTaskFactory,
} from './data-parallel.js';
export { shardRange } from './reference-task.js';
