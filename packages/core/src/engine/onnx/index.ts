// The onnx training engine: models written as ONNX graphs with autodiff, run by onnxruntime-node.
// (the models themselves are written with @distill/autodiff: Graph, onnxOps, encodeModel, buildingFor, ...)
export {
  OnnxRunner,
  OnnxTrainingRunner,
  loadOrt,
  readToHost,
  disposeDeviceTensor,
  type OnnxSessionOptions,
  type OrtModule,
  type OrtTensor,
  type OutputLocation,
  type Feed,
  type FeedValue,
} from './session.js';
export {
  webgpuReport,
  probeWebGpuSession,
  findIcds,
  findLibvulkan,
  parseNodePlacements,
  parseLoaderLog,
  driverOf,
  fixFor,
  LAVAPIPE_INSTALL,
  type WebGpuReport,
  type VulkanIcd,
  type ProbeResult,
} from './webgpu.js';
