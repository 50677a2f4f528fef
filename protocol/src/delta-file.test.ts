import { describe, expect, it } from 'vitest';
import { FlotillaError } from './errors.js';
import { decodeDeltaFile, encodeInt8Delta, int8ScaleKey } from './delta-file.js';
import { encodeSafetensors } from './safetensors/index.js';

describe('delta files', () => {
  it('dequantises int8 tensors with their scale', () => {
    const bytes = encodeInt8Delta(
      new Map([['t', { shape: [3], quantized: Int8Array.from([-127, 0, 64]), scale: 0.5 }]]),
    );
    const decoded = decodeDeltaFile(bytes);
    expect(decoded.quantization).toBe('int8');
    expect(Array.from(decoded.tensors.get('t')?.values ?? [])).toEqual([-63.5, 0, 32]);
  });

  it('refuses an int8 tensor without a scale, with the codec error', () => {
    const bytes = encodeSafetensors({
      tensors: new Map([['t', { dtype: 'I8', shape: [1], data: Uint8Array.from([1]) }]]),
    });
    expect(() => decodeDeltaFile(bytes)).toThrow(FlotillaError);
    expect(() => decodeDeltaFile(bytes)).toThrow(int8ScaleKey('t'));
  });
});
