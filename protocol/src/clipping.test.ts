import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clipNamedToL2Norm, clipToL2Norm, globalL2Norm } from './clipping.js';
import { FlotillaError } from './errors.js';

// Published vector `global_l2_clip` of the project's DP vectors (shared/vectors/dp-published.json),
// copied here so the test runs on a fresh clone: four tensors of global norm 4.0, clip 1.5,
// scale 0.375 (sum of squares 7.5 + 0.5 + 7.5 + 0.5 = 16 by hand).
const vector = {
  tensors: [
    [
      [1.5, -0.5],
      [2, -1],
    ],
    [0.5, -0.5],
    [
      [-0.5, 1.5],
      [-1, 2],
    ],
    [-0.5, 0.5],
  ],
  clip: 1.5,
  global_norm: 4.0,
  scale: 0.375,
};

describe('global L2 clipping: published vector', () => {
  const tensors = vector.tensors.map((t) => Float32Array.from(t.flat()));

  it(`has global norm ${vector.global_norm} and scale ${vector.scale} at clip ${vector.clip}`, () => {
    expect(globalL2Norm(tensors)).toBe(vector.global_norm);
    const result = clipToL2Norm(tensors, vector.clip);
    expect(result.norm).toBe(vector.global_norm);
    expect(result.scale).toBe(vector.scale);
    expect(result.clipped).toBe(true);
    result.tensors.forEach((t, i) => {
      expect([...t]).toEqual([...(tensors[i] ?? [])].map((v) => v * vector.scale));
    });
    expect(globalL2Norm(result.tensors)).toBeCloseTo(vector.clip, 6);
    // The input is untouched.
    expect([...(tensors[0] ?? [])]).toEqual([1.5, -0.5, 2, -1]);
  });

  it('clips a 0-d scalar too: value 2.0 with clip 1.0 -> 1.0', () => {
    const result = clipNamedToL2Norm(new Map([['scalar', new Float32Array([2])]]), 1);
    expect(result.norm).toBe(2);
    expect(result.scale).toBe(0.5);
    expect([...(result.tensors.get('scalar') ?? [])]).toEqual([1]);
  });

  it('refuses a bad bound and non-finite updates', () => {
    for (const bound of [0, -1, NaN, Infinity]) {
      expect(() => clipToL2Norm([new Float32Array([1])], bound)).toThrow(FlotillaError);
    }
    try {
      clipToL2Norm([new Float32Array([1, NaN])], 1);
      expect.fail('expected NON_FINITE');
    } catch (error) {
      expect(FlotillaError.is(error, 'NON_FINITE')).toBe(true);
    }
  });
});

describe('global L2 clipping: properties', () => {
  const tensorsArb = fc.array(
    fc.float32Array({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6, maxLength: 20 }),
    {
      maxLength: 5,
    },
  );
  const boundArb = fc.double({ min: 1e-3, max: 1e4, noNaN: true });

  it('never increases the norm and ends within the bound (1e-6 relative)', () => {
    fc.assert(
      fc.property(tensorsArb, boundArb, (tensors, bound) => {
        const result = clipToL2Norm(tensors, bound);
        const after = globalL2Norm(result.tensors);
        expect(after).toBeLessThanOrEqual(result.norm * (1 + 1e-6));
        expect(after).toBeLessThanOrEqual(bound * (1 + 1e-6));
        expect(result.clipped).toBe(result.norm > bound);
      }),
      { numRuns: 300 },
    );
  });

  it('leaves updates within the bound bitwise untouched, in new buffers', () => {
    fc.assert(
      fc.property(tensorsArb, fc.double({ min: 1, max: 10, noNaN: true }), (tensors, factor) => {
        const bound = globalL2Norm(tensors) * factor + 1e-9;
        const result = clipToL2Norm(tensors, bound);
        expect(result.scale).toBe(1);
        expect(result.clipped).toBe(false);
        result.tensors.forEach((t, i) => {
          const input = tensors[i] ?? new Float32Array();
          expect(t).not.toBe(input);
          expect(new Uint8Array(t.buffer, t.byteOffset, t.byteLength)).toEqual(
            new Uint8Array(input.buffer, input.byteOffset, input.byteLength),
          );
        });
      }),
      { numRuns: 200 },
    );
  });

  it('named and positional variants agree', () => {
    fc.assert(
      fc.property(tensorsArb, boundArb, (tensors, bound) => {
        const named = clipNamedToL2Norm(new Map(tensors.map((t, i) => [`t${i}`, t])), bound);
        const plain = clipToL2Norm(tensors, bound);
        expect(named.scale).toBe(plain.scale);
        expect([...named.tensors.values()]).toEqual(plain.tensors);
      }),
      { numRuns: 100 },
    );
  });
});
