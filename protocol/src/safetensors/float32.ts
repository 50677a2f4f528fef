import { FlotillaError } from '../errors.js';
import { decodeSafetensors } from './decode.js';
import { DTYPE_BYTES, elementCount } from './dtypes.js';
import { encodeSafetensors } from './encode.js';
import {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from './half.js';
import type { DecodeSafetensorsOptions, TensorEntry } from './types.js';
import { f32At } from '../checked-index.js';

/** Typed arrays use the host's byte order; safetensors is little-endian. */
const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Floating dtypes a Float32Array can be stored as. */
export type FloatStorageDtype = 'F32' | 'F16' | 'BF16';

/** Values and row-major shape of one float tensor. */
export interface Float32TensorValues {
  shape: number[];
  values: Float32Array;
}

/**
 * Converts a tensor's values to a new Float32Array (never a view of the file). F32 is copied
 * byte for byte, the others read through a DataView, so neither the byte offset's alignment nor
 * the host's endianness matters.
 * F16/BF16/I8 convert exactly; I32 values beyond 2^24 round to the nearest binary32.
 */
export function tensorToFloat32(entry: TensorEntry): Float32Array {
  const count = elementCount(entry.shape);
  const size = DTYPE_BYTES[entry.dtype];
  if (count === null || entry.data.length !== count * size) {
    throw new FlotillaError(
      'SHAPE_MISMATCH',
      `tensor data is ${entry.data.length} bytes, not ${entry.dtype}[${entry.shape.join(', ')}]`,
    );
  }
  const out = new Float32Array(count);
  const view = new DataView(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
  switch (entry.dtype) {
    case 'F32':
      // A byte copy keeps every bit (NaN payloads included) and sidesteps unaligned offsets.
      if (LITTLE_ENDIAN_HOST) new Uint8Array(out.buffer).set(entry.data);
      else for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'F16':
      for (let i = 0; i < count; i++) out[i] = float16BitsToFloat32(view.getUint16(i * 2, true));
      break;
    case 'BF16':
      for (let i = 0; i < count; i++) out[i] = bfloat16BitsToFloat32(view.getUint16(i * 2, true));
      break;
    case 'I8':
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i);
      break;
    case 'I32':
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true);
      break;
  }
  return out;
}

/**
 * A tensor's values as float32 for reading only: a view of the file's own bytes when they are F32,
 * the host is little-endian and the data starts 4-byte aligned (no copy: do not write to it, and
 * it lives as long as the file's bytes), else the converted copy of `tensorToFloat32`.
 */
export function readFloat32(entry: TensorEntry): Float32Array {
  const { data } = entry;
  const count = elementCount(entry.shape);
  if (
    entry.dtype === 'F32' &&
    LITTLE_ENDIAN_HOST &&
    data.byteOffset % 4 === 0 &&
    count !== null &&
    data.length === count * 4
  )
    return new Float32Array(data.buffer, data.byteOffset, count);
  return tensorToFloat32(entry);
}

/**
 * Stores `values` (row-major, `shape`) as a tensor of `dtype` (default F32). F16/BF16 round to
 * nearest, ties to even. Throws `SHAPE_MISMATCH` when the shape does not hold `values.length` elements.
 */
export function float32Tensor(
  values: Float32Array,
  shape: number[],
  dtype: FloatStorageDtype = 'F32',
): TensorEntry {
  const count = elementCount(shape);
  if (count !== values.length) {
    throw new FlotillaError(
      'SHAPE_MISMATCH',
      `shape [${shape.join(', ')}] does not hold ${values.length} values`,
    );
  }
  const data = new Uint8Array(count * DTYPE_BYTES[dtype]);
  const view = new DataView(data.buffer);
  if (dtype === 'F32') {
    if (LITTLE_ENDIAN_HOST) data.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    else for (let i = 0; i < count; i++) view.setFloat32(i * 4, f32At(values, i), true);
  } else {
    const narrow = dtype === 'F16' ? float32ToFloat16Bits : float32ToBfloat16Bits;
    for (let i = 0; i < count; i++) view.setUint16(i * 2, narrow(f32At(values, i)), true);
  }
  return { dtype, shape: [...shape], data };
}

/** Encodes name -> { shape, values } as a safetensors file (for deltas and adapters). */
export function encodeFloat32Tensors(
  tensors: Map<string, Float32TensorValues>,
  metadata?: Record<string, string>,
  dtype: FloatStorageDtype = 'F32',
): Uint8Array {
  const entries = new Map<string, TensorEntry>();
  for (const [name, tensor] of tensors) entries.set(name, float32Tensor(tensor.values, tensor.shape, dtype));
  return encodeSafetensors(metadata === undefined ? { tensors: entries } : { tensors: entries, metadata });
}

/** Decodes a safetensors file into name -> { shape, values } (any supported dtype, as f32). */
export function decodeFloat32Tensors(
  bytes: Uint8Array,
  options?: DecodeSafetensorsOptions,
): { tensors: Map<string, Float32TensorValues>; metadata: Record<string, string> } {
  const file = decodeSafetensors(bytes, options);
  const tensors = new Map<string, Float32TensorValues>();
  for (const [name, entry] of file.tensors)
    tensors.set(name, { shape: entry.shape, values: tensorToFloat32(entry) });
  return { tensors, metadata: file.metadata };
}
