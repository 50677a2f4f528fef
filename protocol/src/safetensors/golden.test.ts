// Golden bytes published by the reference implementation, huggingface/safetensors:
//  - Rust: safetensors/src/tensor.rs, `mod tests` (test_serialization, test_empty,
//    test_serialization_forced_alignement, test_deserialization, test_empty_shapes_allowed,
//    test_whitespace_padded_header, test_zero_sized_tensor and the error tests).
//  - Python: bindings/python/tests/test_simple.py (test_serialization,
//    test_serialization_forces_alignment, test_serialization_metadata,
//    test_deserialization_metadata).
import { describe, expect, it } from 'vitest';
import { FlotillaError } from '../errors.js';
import { decodeSafetensors } from './decode.js';
import { encodeSafetensors } from './encode.js';
import { float32Tensor, tensorToFloat32 } from './float32.js';
import type { TensorEntry } from './types.js';

/** Bytes of a string whose characters are all below 256, i.e. a Python bytes literal. */
function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

const zeros = (n: number): string => '\x00'.repeat(n);

function i32Zeros(shape: number[]): TensorEntry {
  const count = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'I32', shape, data: new Uint8Array(count * 4) };
}

function expectCorrupt(bytes: Uint8Array, pattern: RegExp): void {
  let caught: unknown;
  try {
    decodeSafetensors(bytes);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(FlotillaError);
  expect((caught as FlotillaError).code).toBe('CORRUPT_FILE');
  expect((caught as FlotillaError).message).toMatch(pattern);
}

describe('encodeSafetensors reproduces the reference bytes', () => {
  it('Rust test_serialization: F32 [1,2,3] named attn.0', () => {
    const values = new Float32Array([0, 1, 2, 3, 4, 5]);
    const out = encodeSafetensors({ tensors: new Map([['attn.0', float32Tensor(values, [1, 2, 3])]]) });
    expect([...out]).toEqual([
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101,
      34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34,
      100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0,
      0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ]);
  });

  it('Rust test_serialization_forced_alignement: header padded with spaces', () => {
    const values = new Float32Array([0, 1, 2, 3, 4, 5]);
    const out = encodeSafetensors({ tensors: new Map([['attn0', float32Tensor(values, [1, 1, 2, 3])]]) });
    expect([...out]).toEqual([
      72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34,
      58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 49, 44, 50, 44, 51, 93, 44,
      34, 100, 97, 116, 97, 95, 111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125,
      32, 32, 32, 32, 32, 32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
      160, 64,
    ]);
  });

  it('Rust test_empty: no tensors, with and without metadata', () => {
    expect([...encodeSafetensors({ tensors: new Map() })]).toEqual([
      8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32,
    ]);
    expect([...encodeSafetensors({ tensors: new Map(), metadata: { framework: 'pt' } })]).toEqual([
      40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95, 95, 34, 58, 123, 34,
      102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32,
    ]);
  });

  it('Python test_serialization: I32 zeros, then with data[1,1] = 1', () => {
    const head = '@' + zeros(7) + '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}    ';
    const entry = i32Zeros([2, 2]);
    expect(encodeSafetensors({ tensors: new Map([['test', entry]]) })).toEqual(latin1(head + zeros(16)));
    entry.data[12] = 1;
    expect(encodeSafetensors({ tensors: new Map([['test', entry]]) })).toEqual(
      latin1(head + zeros(12) + '\x01' + zeros(3)),
    );
  });

  it('Python test_serialization_forces_alignment: I32 before F16 whatever the insertion order', () => {
    const expected = latin1(
      '\x80' +
        zeros(7) +
        '{"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]},"test2":{"dtype":"F16","shape":[2,2],"data_offsets":[16,24]}}' +
        '      ' +
        zeros(24),
    );
    const f16: TensorEntry = { dtype: 'F16', shape: [2, 2], data: new Uint8Array(8) };
    const a = encodeSafetensors({
      tensors: new Map([
        ['test2', f16],
        ['test1', i32Zeros([2, 2])],
      ]),
    });
    const b = encodeSafetensors({
      tensors: new Map([
        ['test1', i32Zeros([2, 2])],
        ['test2', f16],
      ]),
    });
    expect(a).toEqual(expected);
    expect(b).toEqual(expected);
  });

  it('Python test_serialization_metadata', () => {
    const out = encodeSafetensors({
      tensors: new Map([['test1', i32Zeros([2, 2])]]),
      metadata: { framework: 'pt' },
    });
    expect(out).toEqual(
      latin1(
        '`' +
          zeros(7) +
          '{"__metadata__":{"framework":"pt"},"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}} ' +
          zeros(16),
      ),
    );
  });

  it('orders by the reference dtype enum descending, then by name', () => {
    const t = (dtype: TensorEntry['dtype'], bytes: number): TensorEntry => ({
      dtype,
      shape: [1],
      data: new Uint8Array(bytes),
    });
    const out = encodeSafetensors({
      tensors: new Map([
        ['a', t('I8', 1)],
        ['b', t('F16', 2)],
        ['c', t('BF16', 2)],
        ['d', t('I32', 4)],
        ['e', t('F32', 4)],
        ['d0', t('F32', 4)],
      ]),
    });
    const headerLength = new DataView(out.buffer).getUint32(0, true);
    const header = new TextDecoder().decode(out.subarray(8, 8 + headerLength));
    const order = [...header.matchAll(/"([a-z0-9]+)":\{"dtype"/g)].map((m) => m[1]);
    expect(order).toEqual(['d0', 'e', 'd', 'c', 'b', 'a']);
  });
});

describe('decodeSafetensors reads the reference files', () => {
  it('Rust test_deserialization: unpadded header', () => {
    const bytes = latin1(
      '<' + zeros(7) + '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}' + zeros(16),
    );
    const file = decodeSafetensors(bytes);
    expect([...file.tensors.keys()]).toEqual(['test']);
    const entry = file.tensors.get('test');
    expect(entry?.dtype).toBe('I32');
    expect(entry?.shape).toEqual([2, 2]);
    expect(entry && [...tensorToFloat32(entry)]).toEqual([0, 0, 0, 0]);
    expect(file.metadata).toEqual({});
  });

  it('Python test_deserialization_metadata', () => {
    const bytes = latin1(
      'f' +
        zeros(7) +
        '{"__metadata__":{"framework":"pt"},"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}       ' +
        zeros(16),
    );
    expect(decodeSafetensors(bytes).metadata).toEqual({ framework: 'pt' });
  });

  it('Rust test_empty_shapes_allowed: shape [] is a scalar of one element', () => {
    const bytes = latin1(
      '8' + zeros(7) + '{"test":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}' + zeros(4),
    );
    const entry = decodeSafetensors(bytes).tensors.get('test');
    expect(entry?.shape).toEqual([]);
    expect(entry?.data.length).toBe(4);
  });

  it('Rust test_whitespace_padded_header', () => {
    expect(decodeSafetensors(latin1('\x06' + zeros(7) + '{}\x0d\x20\x09\x0a')).tensors.size).toBe(0);
  });

  it('Rust test_zero_sized_tensor', () => {
    const bytes = latin1('<' + zeros(7) + '{"test":{"dtype":"I32","shape":[2,0],"data_offsets":[0, 0]}}');
    const entry = decodeSafetensors(bytes).tensors.get('test');
    expect(entry?.shape).toEqual([2, 0]);
    expect(entry?.data.length).toBe(0);
  });
});

describe('decodeSafetensors refuses the reference bad files with CORRUPT_FILE', () => {
  const good = '<' + zeros(7) + '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}';
  it.each([
    [
      'trailing bytes (MetadataIncompleteBuffer)',
      good + zeros(16) + 'extra_bogus_data_for_polyglot_file',
      /cover 16 bytes/,
    ],
    ['2 missing data bytes (MetadataIncompleteBuffer)', good + zeros(14), /past the 14-byte data section/],
    [
      'header too large',
      '<' + zeros(4) + '\xff\xff\xff' + good.slice(8) + zeros(16),
      /exceeds the 100000000-byte cap/,
    ],
    ['header too small', '', /shorter than the 8-byte/],
    ['invalid header length', '<' + zeros(7), /runs past the end/],
    ['non-UTF-8 header', '\x01' + zeros(7) + '\xff', /not valid UTF-8/],
    ['header not JSON', '\x01' + zeros(7) + '{', /not valid JSON/],
    [
      'invalid info',
      '<' + zeros(7) + '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0, 4]}}',
      /holds 4 bytes but I32\[2, 2\] needs 16/,
    ],
    [
      'shape overflow',
      'O' +
        zeros(7) +
        '{"test":{"dtype":"I32","shape":[2,18446744073709551614],"data_offsets":[0,16]}}' +
        zeros(16),
      /shape entry/,
    ],
    [
      'shape * size overflow',
      'N' +
        zeros(7) +
        '{"test":{"dtype":"I32","shape":[2,9223372036854775807],"data_offsets":[0,16]}}' +
        zeros(16),
      /shape entry/,
    ],
  ])('%s', (_name, text, pattern) => {
    expectCorrupt(latin1(text), pattern);
  });

  it('Rust test_json_attack: ten tensors all claiming offsets [0, 16]', () => {
    const fields = Array.from(
      { length: 10 },
      (_, i) => `"weight_${i}":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}`,
    );
    const header = `{${fields.join(',')}}`;
    const bytes = new Uint8Array(8 + header.length + 16);
    new DataView(bytes.buffer).setUint32(0, header.length, true);
    bytes.set(latin1(header), 8);
    expectCorrupt(bytes, /overlaps the previous tensor/);
  });
});
