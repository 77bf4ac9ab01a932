// The onnx training engine: models written as ONNX graphs with autodiff, run by onnxruntime-node.
// Phase 1 of the move to @distill/autodiff: the graph builder's names, re-exported for code that still imports them from core.
export { Graph, Sym, OPSET, broadcastShape, onnxOps, encodeModel, type TrainingGraphs, type CompiledModel } from '@distill/autodiff';
export type { ModelSpec, NodeSpec, TensorSpec, ValueSpec, OnnxDType } from '@distill/autodiff';
export { buildingFor, graphDevice, type GraphDevice } from '@distill/autodiff';
export { OnnxRunner, OnnxTrainingRunner, loadOrt, adamwInPlace, readToHost, disposeDeviceTensor, type AdamWOptions, type OnnxSessionOptions, type OrtModule, type OrtTensor, type OutputLocation, type Feed, type FeedValue } from './session.js';
export { webgpuReport, probeWebGpuSession, findIcds, findLibvulkan, parseNodePlacements, parseLoaderLog, driverOf, fixFor, LAVAPIPE_INSTALL, type WebGpuReport, type VulkanIcd, type ProbeResult } from './webgpu.js';
