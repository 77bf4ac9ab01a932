// @distill/core: the runtimes (tfjs backend choice and kernels, onnxruntime runners on CPU / WebGPU,
// doctor) and the two engines of Ops<T> (tfOps, graphOps), over @distill/base (re-exported whole, so
// `@distill/core` still names everything; a package that needs no runtime depends on @distill/base).
export * from '@distill/base';
export * from './interfaces.js';
export * from './runtime.js';
export * from './wasm-matmul-fix.js';
export * from './doctor.js';
export * from './engine/index.js';
export * from './tensor-ops/index.js';
