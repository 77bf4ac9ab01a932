// The .npy reader/writer lives with distill's other file formats in @distill/base (formats/npy.ts);
// re-exported here as part of @distill/data's public API.
export {
  encodeNpy,
  parseNpy,
  readNpy,
  readNpyIndices,
  readNpyMatrixF32,
  writeNpy,
  type NpyArray,
  type NpyData,
} from '@distill/base';
