import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64, fromHex, toBase64, toHex, utf8 } from './encoding.js';

// Node's Buffer is the independent reference: same bytes, same text, for every input.
const CODECS = [
  {
    name: 'hex',
    encode: toHex,
    decode: fromHex,
    digits: '0123456789abcdefABCDEF',
    accepts: (text: string) => text.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(text),
    error: new TypeError('invalid hex string'),
  },
  {
    name: 'base64',
    encode: toBase64,
    decode: fromBase64,
    digits: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/',
    accepts: (text: string) => text.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text),
    error: new TypeError('invalid base64 string'),
  },
] as const;

describe.each(CODECS)('$name', ({ name, encode, decode, digits, accepts, error }) => {
  it('encodes any bytes as Buffer does, and decodes them back', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const text = encode(bytes);
        expect(text).toBe(Buffer.from(bytes).toString(name));
        expect(decode(text)).toEqual(bytes);
        if (name === 'hex') expect(decode(text.toUpperCase())).toEqual(bytes);
      }),
    );
  });

  it('decodes exactly the well-formed strings, to the bytes Buffer reads', () => {
    // Mostly digits, with now and then a char that is not one (non-ASCII included).
    const unit = fc.oneof(
      { weight: 20, arbitrary: fc.constantFrom(...digits) },
      { weight: 1, arbitrary: fc.constantFrom('=', 'g', ' ', '\n', '-', '_', 'é', '\u0660', '\uffff') },
    );
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 40 }), (text) => {
        if (accepts(text)) expect(decode(text)).toEqual(new Uint8Array(Buffer.from(text, name)));
        else expect(() => decode(text)).toThrow(error);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('utf8', () => {
  it('encodes as Buffer does, call after call', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (text) => {
        expect(utf8(text)).toEqual(new Uint8Array(Buffer.from(text, 'utf8')));
        expect(utf8(text)).toEqual(new Uint8Array(Buffer.from(text, 'utf8')));
      }),
    );
  });
});
