import { describe, expect, it } from 'vitest';
import { FlotillaError } from './errors.js';
import { decodeDeltaFile, encodeInt8Delta, int8ScaleKey } from './delta-file.js';
import { encodeFloat32Tensors, encodeSafetensors } from './safetensors/index.js';

describe('delta files', () => {
  it('dequantises int8 tensors with their scale', () => {
    const bytes = encodeInt8Delta(
      new Map([['t', { shape: [3], quantized: Int8Array.from([-127, 0, 64]), scale: 0.5 }]]),
    );
    const decoded = decodeDeltaFile(bytes);
    expect(decoded.quantization).toBe('int8');
    expect(Array.from(decoded.tensors.get('t')?.values ?? [])).toEqual([-63.5, 0, 32]);
  });

  it('reads F32 tensors in place when asked, and still scales int8 ones into a copy', () => {
    const values = Float32Array.from([1.5, -2.25, 3e-8, 7]);
    const f32 = encodeFloat32Tensors(new Map([['w', { shape: [2, 2], values }]]));
    const copied = decodeDeltaFile(f32).tensors.get('w')?.values;
    const viewed = decodeDeltaFile(f32, { inPlace: true }).tensors.get('w')?.values;
    expect(viewed).toEqual(values);
    expect(copied).toEqual(values);
    expect(viewed?.buffer).toBe(f32.buffer);
    expect(copied?.buffer).not.toBe(f32.buffer);

    const int8 = encodeInt8Delta(
      new Map([['t', { shape: [2], quantized: Int8Array.from([-2, 4]), scale: 0.25 }]]),
    );
    const scaled = decodeDeltaFile(int8, { inPlace: true }).tensors.get('t')?.values;
    expect(Array.from(scaled ?? [])).toEqual([-0.5, 1]);
    expect(scaled?.buffer).not.toBe(int8.buffer);
    expect(Array.from(decodeDeltaFile(int8).tensors.get('t')?.values ?? [])).toEqual([-0.5, 1]);
  });

  it('refuses an int8 tensor without a scale, with the codec error', () => {
    const bytes = encodeSafetensors({
      tensors: new Map([['t', { dtype: 'I8', shape: [1], data: Uint8Array.from([1]) }]]),
    });
    expect(() => decodeDeltaFile(bytes)).toThrow(FlotillaError);
    expect(() => decodeDeltaFile(bytes)).toThrow(int8ScaleKey('t'));
  });
});
