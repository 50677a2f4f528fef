import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.js';

describe('canonicalJson (RFC 8785)', () => {
  it('matches the example of RFC 8785 section 3.2.2', () => {
    const input: unknown = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    );
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts keys by UTF-16 code units (RFC 8785 section 3.2.3)', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // Integer-like keys would be reordered by JS objects, so read the order off the text itself.
    const order = [...canonicalJson(input).matchAll(/"[^"]*":"([^"]*)"/g)].map((m) => m[1]);
    expect(order).toEqual([
      'Carriage Return',
      'One',
      'Control',
      'Latin Small Letter O With Diaeresis',
      'Euro Sign',
      'Emoji: Grinning Face',
      'Hebrew Letter Dalet With Dagesh',
    ]);
  });

  it('refuses values JSON cannot carry', () => {
    expect(() => canonicalJson({ a: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ a: 1n })).toThrow(TypeError);
  });
});

/**
 * How canonicalJson built arrays and objects before it was rewritten as loops (map, filter, sort
 * with a comparator, join): the reference it must match. Scalars did not change and go to it.
 */
function canonicalJsonByArrays(value: unknown): string {
  if (value === null || typeof value !== 'object') return canonicalJson(value);
  if (Array.isArray(value))
    return `[${value.map((item: unknown) => canonicalJsonByArrays(item ?? null)).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((key) => record[key] !== undefined)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJsonByArrays(record[key])}`).join(',')}}`;
}

describe('canonicalJson against the array-building implementation it replaced', () => {
  const outcome = (encode: (v: unknown) => string, value: unknown) => {
    try {
      return { text: encode(value) };
    } catch (error) {
      return { error: String(error) };
    }
  };

  it('gives the same text, or the same error, for any JSON-like value', () => {
    const key = fc.oneof(
      fc.string(),
      fc.string({ unit: 'grapheme' }),
      fc.constantFrom('1', '10', '2', '', '__proto__'),
    );
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.constant(undefined),
        fc.boolean(),
        fc.double(),
        fc.integer(),
        fc.string({ unit: 'grapheme' }),
        fc.array(tie('value'), { maxLength: 5 }),
        fc.sparseArray(tie('value'), { maxLength: 5 }),
        fc.dictionary(key, tie('value'), { maxKeys: 6 }),
        fc.constant(() => 1),
        fc.bigInt(),
      ),
    }));
    fc.assert(
      fc.property(value, (v) => {
        expect(outcome(canonicalJson, v)).toEqual(outcome(canonicalJsonByArrays, v));
      }),
      { numRuns: 3000 },
    );
  });
});
