// File formats, read and written in one place: NumPy .npy, safetensors, and verified checkpoint files (safetensors + checksum).
export * from './npy.js';
export * from './safetensors.js';
export * from './checkpoint.js';
