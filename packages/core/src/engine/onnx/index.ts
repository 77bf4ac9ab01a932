// The onnx training engine: models written as ONNX graphs with autodiff, run by onnxruntime-node.
export { Graph, Sym, OPSET, broadcastShape, type TrainingGraphs, type CompiledModel } from './graph.js';
export * as onnxOps from './ops.js';
export { OnnxRunner, OnnxTrainingRunner, loadOrt, adamwInPlace, type AdamWOptions, type OnnxSessionOptions, type OrtModule } from './session.js';
export { encodeModel, type ModelSpec, type NodeSpec, type TensorSpec, type ValueSpec, type OnnxDType } from './proto.js';
export { webgpuReport, probeWebGpuSession, findIcds, findLibvulkan, parseNodePlacements, parseLoaderLog, driverOf, fixFor, LAVAPIPE_INSTALL, type WebGpuReport, type VulkanIcd, type ProbeResult } from './webgpu.js';
