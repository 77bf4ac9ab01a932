// Training engines and speed-ups (see docs/benchmarks.md): the onnx engine (onnxruntime-node
// forward + backward graphs), and the opt-in tfjs-wasm fast kernels.
export * from './onnx/index.js';
export { installWasmFastKernels, type FastKernelStats } from './wasm-fast-kernels.js';
export { collapseTranspose, transposeInto } from './js-transpose.js';
