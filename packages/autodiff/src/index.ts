// @distill/autodiff: an ONNX graph builder with reverse-mode autodiff (standard ONNX ops only, static shapes).
export {
  Graph,
  Sym,
  OPSET,
  broadcastShape,
  sameShape,
  customGradient,
  noGradient,
  stopGradient,
  defineGradient,
  gradientRule,
  differentiableOps,
  type Grad,
  type GradContext,
  type GradRule,
  type TrainingGraphs,
  type CompiledModel,
} from './graph.js';
export { GRADIENT_RULES, sumTo } from './gradients.js';
export * as onnxOps from './ops.js';
export { buildingFor, graphDevice, gatherGradOneHot, type GraphDevice } from './gather-grad-webgpu.js';
export {
  encodeModel,
  type AttrValue,
  type ModelSpec,
  type NodeSpec,
  type TensorSpec,
  type ValueSpec,
  type OnnxDType,
} from './proto.js';
