import { FlotillaError, decodeDeltaFile, encodeInt8Delta } from '@flotilla/protocol';
import type { NamedTensorMap } from '../adapters/adapter-tensors.js';
import type { QuantizedDelta } from './int8.js';

/**
 * Int8 delta as safetensors, in protocol's delta-file format: every tensor is I8 (q), and
 * `__metadata__` holds `scale:<name>` = the f32 scale as a decimal string. Every party
 * dequantizes as f32(q · scale), which is what `dequantizeTensor` computes.
 */
export function encodeQuantizedDelta(
  delta: QuantizedDelta,
  metadata: Record<string, string> = {},
): Uint8Array {
  return encodeInt8Delta(
    new Map(
      [...delta].map(([name, t]) => [
        name,
        { shape: [...t.shape], quantized: t.q, scale: Math.fround(t.scale) },
      ]),
    ),
    metadata,
  );
}

/** Parses an int8 delta file into dequantized f32 tensors (CORRUPT_FILE if it is not int8). */
export function decodeQuantizedDelta(bytes: Uint8Array): {
  tensors: NamedTensorMap;
  metadata: Record<string, string>;
} {
  const file = decodeDeltaFile(bytes);
  if (file.quantization !== 'int8') throw new FlotillaError('CORRUPT_FILE', 'not an int8 quantized delta');
  return { tensors: file.tensors, metadata: file.metadata };
}
