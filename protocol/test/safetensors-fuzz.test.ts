// Fuzzing the safetensors reader: every malformed input must end in FlotillaError('CORRUPT_FILE'),
// never a RangeError, a stack overflow or a partial read. "strict" cases are malformed by
// construction and must be refused; "lenient" cases (random byte flips, random token soup) may
// by chance still be a valid file, and then must decode consistently.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { FlotillaError } from '../src/errors.js';
import {
  decodeFloat32Tensors,
  decodeSafetensors,
  encodeSafetensors,
  SAFETENSORS_DTYPES,
  DTYPE_BYTES,
  type TensorEntry,
} from '../src/safetensors/index.js';

let strictCases = 0;

function expectCorrupt(bytes: Uint8Array, options?: { maxHeaderBytes?: number }): void {
  strictCases++;
  let caught: unknown = undefined;
  try {
    decodeSafetensors(bytes, options);
  } catch (error) {
    caught = error;
  }
  if (!(caught instanceof FlotillaError)) {
    const got =
      caught === undefined
        ? 'success'
        : caught instanceof Error
          ? `${caught.name}: ${caught.message}`
          : 'a non-Error';
    throw new Error(`expected FlotillaError CORRUPT_FILE, got ${got}`);
  }
  expect(caught.code).toBe('CORRUPT_FILE');
  expect(caught.message.length).toBeGreaterThan(10);
}

/** Decodes, or returns 'corrupt' for CORRUPT_FILE; any other failure fails the test. */
function decodeOrCorrupt(bytes: Uint8Array): 'ok' | 'corrupt' {
  try {
    const file = decodeSafetensors(bytes);
    decodeFloat32Tensors(bytes);
    // A file that decodes re-encodes to a file that decodes to the same tensors.
    expect(decodeSafetensors(encodeSafetensors(file)).tensors.size).toBe(file.tensors.size);
    return 'ok';
  } catch (error) {
    if (error instanceof FlotillaError && error.code === 'CORRUPT_FILE') return 'corrupt';
    throw error;
  }
}

function fileWith(header: string, dataLength: number): Uint8Array {
  const text = new TextEncoder().encode(header);
  const bytes = new Uint8Array(8 + text.length + dataLength);
  new DataView(bytes.buffer).setUint32(0, text.length, true);
  bytes.set(text, 8);
  return bytes;
}

const entryArb: fc.Arbitrary<TensorEntry> = fc
  .tuple(fc.constantFrom(...SAFETENSORS_DTYPES), fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }))
  .chain(([dtype, shape]) => {
    const length = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    return fc.uint8Array({ minLength: length, maxLength: length }).map((data) => ({ dtype, shape, data }));
  });
const validFileArb = fc
  .uniqueArray(
    fc.tuple(
      fc.string({ maxLength: 8 }).filter((n) => n !== '__metadata__'),
      entryArb,
    ),
    {
      selector: ([name]) => name,
      minLength: 1,
      maxLength: 4,
    },
  )
  .chain((pairs) =>
    fc
      .dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), {
        maxKeys: 2,
        noNullPrototype: true,
      })
      .map((metadata) => encodeSafetensors({ tensors: new Map(pairs), metadata })),
  );

describe('safetensors reader under fuzzing', () => {
  it('refuses random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        fc.pre(!(bytes.length >= 10 && bytes[8] === 0x7b)); // leave well-formed-looking cases to the lenient runs
        expectCorrupt(bytes);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses random bytes behind a consistent header length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 128 }), fc.nat(32), (header, dataLength) => {
        fc.pre(
          header[0] !== 0x7b &&
            header[0] !== 0x20 &&
            header[0] !== 0x0a &&
            header[0] !== 0x09 &&
            header[0] !== 0x0d,
        );
        const bytes = new Uint8Array(8 + header.length + dataLength);
        new DataView(bytes.buffer).setUint32(0, header.length, true);
        bytes.set(header, 8);
        expectCorrupt(bytes);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses every truncation of a valid file', () => {
    fc.assert(
      fc.property(validFileArb, fc.nat(), (file, cut) => {
        expectCorrupt(file.subarray(0, cut % file.length));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a valid file with bytes appended', () => {
    fc.assert(
      fc.property(validFileArb, fc.uint8Array({ minLength: 1, maxLength: 16 }), (file, extra) => {
        const bytes = new Uint8Array(file.length + extra.length);
        bytes.set(file);
        bytes.set(extra, file.length);
        expectCorrupt(bytes);
      }),
      { numRuns: 200 },
    );
  });

  it('survives byte flips in the header region: valid or CORRUPT_FILE, nothing else', () => {
    let corrupt = 0;
    fc.assert(
      fc.property(validFileArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (file, at, mask) => {
        const headerEnd = 8 + new DataView(file.buffer).getUint32(0, true);
        const bytes = file.slice();
        const index = at % headerEnd;
        bytes[index] = (bytes[index] ?? 0) ^ mask;
        if (decodeOrCorrupt(bytes) === 'corrupt') corrupt++;
      }),
      { numRuns: 400 },
    );
    // Most flips break the header (the length prefix, JSON syntax, names of keys, offsets).
    expect(corrupt).toBeGreaterThan(200);
  });

  it('survives random JSON-like token soup: valid or CORRUPT_FILE, nothing else', () => {
    const token = fc.constantFrom(
      '{',
      '}',
      '[',
      ']',
      '"',
      ':',
      ',',
      ' ',
      '0',
      '4',
      '-1',
      '1e3',
      '0.5',
      'null',
      'true',
      '"dtype"',
      '"shape"',
      '"data_offsets"',
      '"F32"',
      '"I8"',
      '"__metadata__"',
      '"a"',
      '\\u0000',
      '\\ud800',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 40 }), fc.nat(8), (tokens, dataLength) => {
        decodeOrCorrupt(fileWith(tokens.join(''), dataLength));
      }),
      { numRuns: 300 },
    );
  });

  const tensor = (
    name: string,
    begin: number,
    end: number,
    dtype = 'I8',
    shape = `[${end - begin}]`,
  ): string => `"${name}":{"dtype":"${dtype}","shape":${shape},"data_offsets":[${begin},${end}]}`;
  const handBuilt: [string, string, number][] = [
    ['array header', '[]', 0],
    ['string header', '"x"', 0],
    ['number header', '1', 0],
    ['null header', 'null', 0],
    ['empty header', '', 0],
    ['BOM before the header', '\ufeff{}', 0],
    ['tensor not an object', '{"a":1}', 0],
    ['unsupported dtype F64', `{${tensor('a', 0, 8, 'F64', '[1]')}}`, 8],
    ['lowercase dtype', `{${tensor('a', 0, 4, 'f32', '[1]')}}`, 4],
    ['numeric dtype', '{"a":{"dtype":3,"shape":[1],"data_offsets":[0,1]}}', 1],
    ['missing dtype', '{"a":{"shape":[1],"data_offsets":[0,1]}}', 1],
    ['missing shape', '{"a":{"dtype":"I8","data_offsets":[0,1]}}', 1],
    ['missing data_offsets', '{"a":{"dtype":"I8","shape":[1]}}', 1],
    ['negative dim', `{${tensor('a', 0, 1, 'I8', '[-1]')}}`, 1],
    ['fractional dim', `{${tensor('a', 0, 1, 'I8', '[1.5]')}}`, 1],
    ['exponent dim', `{${tensor('a', 0, 100, 'I8', '[1e2]')}}`, 100],
    ['string dim', `{${tensor('a', 0, 1, 'I8', '["1"]')}}`, 1],
    ['null dim', `{${tensor('a', 0, 1, 'I8', '[null]')}}`, 1],
    ['shape not an array', `{${tensor('a', 0, 2, 'I8', '2')}}`, 2],
    ['dim past 2^53', `{${tensor('a', 0, 1, 'I8', '[9007199254740993]')}}`, 1],
    ['shape product overflow', `{${tensor('a', 0, 4, 'I8', '[4294967296,4294967296,0]')}}`, 4],
    ['byte length != shape', `{${tensor('a', 0, 4, 'F32', '[2]')}}`, 4],
    ['one offset', '{"a":{"dtype":"I8","shape":[1],"data_offsets":[0]}}', 1],
    ['three offsets', '{"a":{"dtype":"I8","shape":[1],"data_offsets":[0,1,1]}}', 1],
    ['reversed offsets', '{"a":{"dtype":"I8","shape":[0],"data_offsets":[4,0]}}', 4],
    ['negative offset', '{"a":{"dtype":"I8","shape":[1],"data_offsets":[-1,0]}}', 1],
    ['float offset', '{"a":{"dtype":"I8","shape":[1],"data_offsets":[0,1.0]}}', 1],
    ['string offsets', '{"a":{"dtype":"I8","shape":[1],"data_offsets":["0","1"]}}', 1],
    ['null offsets', '{"a":{"dtype":"I8","shape":[1],"data_offsets":null}}', 1],
    ['offsets past the data', `{${tensor('a', 0, 8)}}`, 4],
    [
      'offset past 2^53',
      '{"a":{"dtype":"I8","shape":[0],"data_offsets":[18446744073709551615,18446744073709551615]}}',
      0,
    ],
    ['overlapping tensors', `{${tensor('a', 0, 4)},${tensor('b', 2, 6)}}`, 6],
    ['gap between tensors', `{${tensor('a', 0, 4)},${tensor('b', 8, 12)}}`, 12],
    ['gap at the start', `{${tensor('a', 4, 8)}}`, 8],
    ['data not covered', `{${tensor('a', 0, 4)}}`, 8],
    ['duplicate tensor names', `{${tensor('a', 0, 4)},${tensor('a', 4, 8)}}`, 8],
    ['duplicate metadata keys', '{"__metadata__":{"k":"1","k":"2"}}', 0],
    ['duplicate metadata', '{"__metadata__":{},"__metadata__":{}}', 0],
    ['numeric metadata value', '{"__metadata__":{"k":1}}', 0],
    ['null metadata value', '{"__metadata__":{"k":null}}', 0],
    ['metadata array', '{"__metadata__":[]}', 0],
    ['metadata string', '{"__metadata__":"x"}', 0],
    ['trailing comma', `{${tensor('a', 0, 1)},}`, 1],
    ['single quotes', "{'a':1}", 0],
    ['NaN literal', `{${tensor('a', 0, 1, 'I8', '[NaN]')}}`, 1],
    ['unterminated string', '{"a', 0],
    ['bad escape', '{"\\x41":{}}', 0],
    ['short unicode escape', '{"\\u00":{}}', 0],
    ['lone high surrogate', '{"\\ud800":{}}', 0],
    ['lone low surrogate', '{"\\udc00":{}}', 0],
    ['raw control character', '{"a\nb":{}}', 0],
    ['two values', '{}{}', 0],
    ['deep nesting', '{"a":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}', 0],
  ];
  it.each(handBuilt)('refuses a hand-built bad header: %s', (_name, header, dataLength) => {
    expectCorrupt(fileWith(header, dataLength));
  });

  it('refuses headers over the cap, huge 64-bit lengths and non-UTF-8 headers', () => {
    const valid = fileWith(`{${tensor('a', 0, 1)}}     `, 1);
    expect(decodeSafetensors(valid).tensors.size).toBe(1);
    expectCorrupt(valid, { maxHeaderBytes: 8 });
    const huge = valid.slice();
    huge[7] = 0x80; // 2^63 + n
    expectCorrupt(huge);
    const invalidUtf8 = fileWith('{"\u00e9":{}}', 0);
    invalidUtf8[11] = 0xff;
    expectCorrupt(invalidUtf8);
  });
});

afterAll(() => {
  // The brief for this codec: at least 1,000 malformed inputs, each refused with CORRUPT_FILE.
  expect(strictCases).toBeGreaterThanOrEqual(1000);
});
