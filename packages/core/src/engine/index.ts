// Training engines and speed-ups (see docs/benchmarks.md): the onnx engine (onnxruntime-node
// forward + backward graphs), and the tfjs-wasm fast kernels and data parallelism.
export * from './onnx/index.js';
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
