// File formats, read and written in one place: NumPy .npy and safetensors.
export * from './npy.js';
export * from './safetensors.js';
