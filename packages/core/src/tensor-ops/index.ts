// One contract for models and losses (`Ops<T>`), implemented by the tfjs engine and the onnx graph engine.
export { tfOps, type TfOpsOptions } from './tf-ops.js';
export { graphOps, type GraphDropFn, type GraphOpsOptions } from './graph-ops.js';
export { conv2dSameNhwc, embeddingLookup, takeDistinct, samePad } from './tf-kernels.js';
