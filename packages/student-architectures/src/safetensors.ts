// The safetensors reader/writer lives with distill's other file formats in @distill/core
// (formats/safetensors.ts); re-exported here as part of @distill/student-architectures' public API.
export { encodeSafetensors, readSafetensors, type SafeTensor } from '@distill/core';
