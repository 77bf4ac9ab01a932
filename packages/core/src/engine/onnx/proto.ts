// The ONNX protobuf writer moved to @distill/autodiff; this keeps webgpu.ts's import line working until it imports from there.
export { encodeModel } from '@distill/autodiff';
