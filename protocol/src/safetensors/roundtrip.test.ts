import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FlotillaError } from '../errors.js';
import { decodeSafetensors } from './decode.js';
import { DTYPE_BYTES, SAFETENSORS_DTYPES } from './dtypes.js';
import { encodeSafetensors } from './encode.js';
import {
  decodeFloat32Tensors,
  encodeFloat32Tensors,
  float32Tensor,
  readFloat32,
  tensorToFloat32,
} from './float32.js';
import { bfloat16BitsToFloat32, float16BitsToFloat32 } from './half.js';
import type { TensorEntry } from './types.js';

const shapeArb = fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 });
const entryArb: fc.Arbitrary<TensorEntry> = fc
  .tuple(fc.constantFrom(...SAFETENSORS_DTYPES), shapeArb)
  .chain(([dtype, shape]) => {
    const length = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    return fc.uint8Array({ minLength: length, maxLength: length }).map((data) => ({ dtype, shape, data }));
  });
const nameArb = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((name) => name !== '__metadata__');
const tensorsArb = fc
  .uniqueArray(fc.tuple(nameArb, entryArb), { selector: ([name]) => name, maxLength: 6 })
  .map((pairs) => new Map(pairs));
const metadataArb = fc.dictionary(
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.string({ unit: 'grapheme' }),
  {
    maxKeys: 4,
    noNullPrototype: true,
  },
);

describe('safetensors round trip (property)', () => {
  it('decode(encode(x)) returns every tensor and the metadata unchanged, for every dtype', () => {
    fc.assert(
      fc.property(tensorsArb, metadataArb, (tensors, metadata) => {
        const bytes = encodeSafetensors({ tensors, metadata });
        expect(new DataView(bytes.buffer).getUint32(0, true) % 8).toBe(0);
        const file = decodeSafetensors(bytes);
        expect(file.tensors.size).toBe(tensors.size);
        for (const [name, entry] of tensors) {
          const back = file.tensors.get(name);
          expect(back?.dtype).toBe(entry.dtype);
          expect(back?.shape).toEqual(entry.shape);
          expect(back?.data).toEqual(entry.data);
        }
        expect(file.metadata).toEqual(metadata);
        // The encoding is canonical: re-encoding the decoded file gives the same bytes.
        expect(encodeSafetensors(file)).toEqual(bytes);
      }),
      { numRuns: 300 },
    );
  });

  it('F32 values survive bit for bit (including -0 and NaN payloads)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 40 }), (bitsList) => {
        const values = new Float32Array(new Uint32Array(bitsList).buffer);
        const bytes = encodeFloat32Tensors(new Map([['w', { shape: [values.length], values }]]), { k: 'v' });
        const back = decodeFloat32Tensors(bytes);
        const got = back.tensors.get('w');
        expect(got?.shape).toEqual([values.length]);
        expect(new Uint8Array((got?.values ?? new Float32Array()).buffer)).toEqual(
          new Uint8Array(values.buffer),
        );
        expect(back.metadata).toEqual({ k: 'v' });
      }),
      { numRuns: 200 },
    );
  });

  it.each([
    ['F16', float16BitsToFloat32],
    ['BF16', bfloat16BitsToFloat32],
  ] as const)('%s stores values it can represent exactly', (dtype, fromBits) => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 }), (bitsList) => {
        const values = Float32Array.from(bitsList.map(fromBits)).map((v) => (Number.isNaN(v) ? 0 : v));
        const entry = float32Tensor(values, [values.length], dtype);
        expect(entry.data.length).toBe(values.length * 2);
        expect(tensorToFloat32(entry)).toEqual(values);
      }),
      { numRuns: 200 },
    );
  });

  it('I8 and I32 convert to their exact values', () => {
    const i8: TensorEntry = { dtype: 'I8', shape: [3], data: new Uint8Array([0x80, 0xff, 0x7f]) };
    expect([...tensorToFloat32(i8)]).toEqual([-128, -1, 127]);
    const i32: TensorEntry = {
      dtype: 'I32',
      shape: [2],
      data: new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x80]),
    };
    expect([...tensorToFloat32(i32)]).toEqual([-1, -(2 ** 31)]);
  });

  it('reads F32 data at unaligned offsets (unpadded header, buffer at an odd byte offset)', () => {
    // A 61-byte header (not a multiple of 4) as older writers produced: data starts at byte 69.
    const header = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}       ';
    const file = new Uint8Array(1 + 8 + header.length + 8);
    const bytes = file.subarray(1);
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(0, header.length, true);
    bytes.set(new TextEncoder().encode(header), 8);
    new DataView(bytes.buffer, bytes.byteOffset + 8 + header.length).setFloat32(0, 1.5, true);
    new DataView(bytes.buffer, bytes.byteOffset + 8 + header.length).setFloat32(4, -2.25, true);
    const entry = decodeSafetensors(bytes).tensors.get('w');
    expect(entry && [...tensorToFloat32(entry)]).toEqual([1.5, -2.25]);
  });

  it('handles a scalar and a zero-size tensor', () => {
    const bytes = encodeFloat32Tensors(
      new Map([
        ['scalar', { shape: [], values: new Float32Array([2]) }],
        ['empty', { shape: [3, 0], values: new Float32Array(0) }],
      ]),
    );
    const back = decodeFloat32Tensors(bytes).tensors;
    expect(back.get('scalar')).toEqual({ shape: [], values: new Float32Array([2]) });
    expect(back.get('empty')).toEqual({ shape: [3, 0], values: new Float32Array(0) });
  });

  it('refuses to encode inconsistent tensors', () => {
    const code = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (error) {
        return error instanceof FlotillaError ? error.code : 'not a FlotillaError';
      }
      return undefined;
    };
    expect(code(() => float32Tensor(new Float32Array(3), [2, 2]))).toBe('SHAPE_MISMATCH');
    const bad = (entry: TensorEntry, name = 'x'): string | undefined =>
      code(() => encodeSafetensors({ tensors: new Map([[name, entry]]) }));
    expect(bad({ dtype: 'F32', shape: [2], data: new Uint8Array(4) })).toBe('SHAPE_MISMATCH');
    expect(bad({ dtype: 'F32', shape: [-1], data: new Uint8Array(0) })).toBe('BAD_REQUEST');
    expect(bad({ dtype: 'F32', shape: [0.5], data: new Uint8Array(0) })).toBe('BAD_REQUEST');
    expect(bad({ dtype: 'F32', shape: [0], data: new Uint8Array(0) }, '__metadata__')).toBe('BAD_REQUEST');
    expect(bad({ dtype: 'F64' as 'F32', shape: [0], data: new Uint8Array(0) })).toBe('BAD_REQUEST');
    const metadata = { k: 1 } as unknown as Record<string, string>;
    expect(code(() => encodeSafetensors({ tensors: new Map(), metadata }))).toBe('BAD_REQUEST');
  });
});

describe('readFloat32', () => {
  it('views aligned F32 data in place and copies what it cannot view, with the same values', () => {
    const values = new Float32Array([1.5, -2.25, Number.NaN, 3e-40]);
    const file = decodeSafetensors(encodeFloat32Tensors(new Map([['w', { shape: [4], values }]])));
    const entry = file.tensors.get('w') as TensorEntry;
    const view = readFloat32(entry);
    // The encoder pads its header to 8 bytes, so the data is aligned: a view of the same bytes.
    expect(view.buffer).toBe(entry.data.buffer);
    expect(Object.is(view[2], Number.NaN)).toBe(true);
    expect([...view]).toEqual([...tensorToFloat32(entry)]);
    // The same bytes one byte off alignment: a copy, equal value for value.
    const shifted = new Uint8Array(entry.data.length + 1);
    shifted.set(entry.data, 1);
    const unaligned = { ...entry, data: shifted.subarray(1) };
    const copy = readFloat32(unaligned);
    expect(copy.buffer).not.toBe(shifted.buffer);
    expect([...copy]).toEqual([...view]);
    // Other dtypes convert.
    const half = float32Tensor(new Float32Array([0.5, -1]), [2], 'F16');
    expect([...readFloat32(half)]).toEqual([0.5, -1]);
  });
});
