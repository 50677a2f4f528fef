// safetensors reader and writer (https://github.com/huggingface/safetensors), the file format of
// every tensor Flotilla moves: deltas, adapters.
export { SAFETENSORS_DTYPES, DTYPE_BYTES, type SafetensorsDtype } from './dtypes.js';
export type { TensorEntry, SafetensorsFile, DecodeSafetensorsOptions } from './types.js';
export { decodeSafetensors, DEFAULT_MAX_HEADER_BYTES } from './decode.js';
export { encodeSafetensors, type EncodeSafetensorsInput } from './encode.js';
export {
  tensorToFloat32,
  readFloat32,
  float32Tensor,
  encodeFloat32Tensors,
  decodeFloat32Tensors,
  type FloatStorageDtype,
  type Float32TensorValues,
} from './float32.js';
export {
  float32ToFloat16Bits,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  bfloat16BitsToFloat32,
} from './half.js';
