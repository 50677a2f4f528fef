import type { NamedTensor } from './adapter-init.js';
import { FlotillaError } from './errors.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  readFloat32,
  tensorToFloat32,
  type TensorEntry,
} from './safetensors/index.js';
import { f32At } from './checked-index.js';

/**
 * Delta files on the wire are safetensors. Float deltas are F32/F16/BF16. 8-bit deltas hold I8
 * tensors whose dequantised value is `q × scale`, with each tensor's scale in the metadata under
 * `scale:<tensor name>` as a decimal string (the shortest round-trip form of a float64).
 */
export function int8ScaleKey(tensorName: string): string {
  return `scale:${tensorName}`;
}

export interface Int8Tensor {
  shape: number[];
  quantized: Int8Array;
  /** Dequantisation step: value = quantized × scale. */
  scale: number;
}

export function encodeInt8Delta(
  tensors: Map<string, Int8Tensor>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const entries = new Map<string, TensorEntry>();
  const meta: Record<string, string> = { ...metadata, 'flotilla.quantization': 'int8' };
  for (const [name, tensor] of tensors) {
    if (!Number.isFinite(tensor.scale) || tensor.scale < 0)
      throw new RangeError(`${name}: scale must be finite and >= 0`);
    entries.set(name, {
      dtype: 'I8',
      shape: tensor.shape,
      data: new Uint8Array(tensor.quantized.buffer, tensor.quantized.byteOffset, tensor.quantized.byteLength),
    });
    meta[int8ScaleKey(name)] = String(tensor.scale);
  }
  return encodeSafetensors({ tensors: entries, metadata: meta });
}

/**
 * Decodes any delta file (float or int8) to float32 values. Throws CORRUPT_FILE for a malformed
 * file, an I8 tensor without a finite scale, or an I32 tensor (not a delta dtype). With `inPlace`,
 * F32 tensors are views of `bytes` where they are aligned (`readFloat32`): for a caller that only
 * reads them, while it holds the bytes.
 */
export function decodeDeltaFile(
  bytes: Uint8Array,
  options: { maxHeaderBytes?: number; inPlace?: boolean } = {},
): {
  tensors: Map<string, NamedTensor>;
  metadata: Record<string, string>;
  quantization: 'none' | 'int8';
} {
  const file = decodeSafetensors(bytes, options);
  const tensors = new Map<string, NamedTensor>();
  let quantization: 'none' | 'int8' = 'none';
  for (const [name, entry] of file.tensors) {
    if (entry.dtype === 'I32') throw new FlotillaError('CORRUPT_FILE', `${name}: I32 is not a delta dtype`);
    const values = options.inPlace === true ? readFloat32(entry) : tensorToFloat32(entry);
    if (entry.dtype === 'I8') {
      quantization = 'int8';
      const raw = file.metadata[int8ScaleKey(name)];
      const scale = raw === undefined ? Number.NaN : Number(raw);
      if (!Number.isFinite(scale))
        throw new FlotillaError('CORRUPT_FILE', `int8 tensor ${name} has no finite ${int8ScaleKey(name)}`);
      for (let i = 0; i < values.length; i++) values[i] = f32At(values, i) * scale;
    }
    tensors.set(name, { shape: entry.shape, values });
  }
  return { tensors, metadata: file.metadata, quantization };
}
