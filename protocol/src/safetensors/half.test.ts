import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from './half.js';

const f32FromBits = (bits: number): number => new Float32Array(new Uint32Array([bits]).buffer)[0] ?? NaN;

describe('binary16 (F16)', () => {
  // Bit patterns from IEEE 754-2008 binary16 (exponent bias 15, 10 mantissa bits), derived by hand.
  it.each([
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite
    [65519.99, 0x7bff], // below the midpoint to the next (absent) value
    [65520, 0x7c00], // midpoint: ties to even, i.e. to infinity
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // half the smallest subnormal: ties to even (0)
    [3 * 2 ** -25, 0x0002], // 1.5 ulp: ties to even (2)
    [2 ** -14 - 2 ** -25, 0x0400], // rounds up out of the subnormal range
    [1 + 2 ** -11, 0x3c00], // tie, mantissa even: stays
    [1 + 3 * 2 ** -11, 0x3c02], // tie, mantissa odd: rounds up
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
    [2 ** -130, 0x0000], // binary32 subnormal
    [-0, 0x8000],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
  ])('%d -> 0x%s', (value, bits) => {
    expect(float32ToFloat16Bits(value)).toBe(bits);
  });

  it.each([
    [0x0001, 5.960464477539063e-8],
    [0x03ff, 6.097555160522461e-5],
    [0x0400, 6.103515625e-5],
    [0x3555, 0.333251953125],
    [0x7bff, 65504],
    [0xfc00, -Infinity],
    [0x8000, -0],
  ])('0x%s -> %d', (bits, value) => {
    expect(float16BitsToFloat32(bits)).toBe(value);
  });

  it('keeps NaN a NaN both ways', () => {
    expect(float16BitsToFloat32(0x7e00)).toBeNaN();
    expect(float16BitsToFloat32(0x7c01)).toBeNaN();
    const bits = float32ToFloat16Bits(NaN);
    expect(bits & 0x7c00).toBe(0x7c00);
    expect(bits & 0x3ff).not.toBe(0);
  });

  it('round-trips every one of the 65536 bit patterns (NaN stays NaN)', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = float16BitsToFloat32(bits);
      if (Number.isNaN(value))
        expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(value)))).toBe(true);
      else if (float32ToFloat16Bits(value) !== bits)
        expect.fail(`0x${bits.toString(16)} does not round-trip`);
    }
  });

  it('rounds every finite binary32 to the nearest binary16, ties to even', () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true, min: -65504, max: 65504 }), (x) => {
        const bits = float32ToFloat16Bits(x);
        const distance = Math.abs(float16BitsToFloat32(bits) - x);
        for (const neighbour of [bits - 1, bits + 1]) {
          if ((neighbour & 0x7fff) >= 0x7c00 || neighbour < 0 || neighbour > 0xffff) continue;
          if ((neighbour & 0x8000) !== (bits & 0x8000)) continue;
          const other = Math.abs(float16BitsToFloat32(neighbour) - x);
          if (other < distance) return false;
          if (other === distance && (bits & 1) === 1) return false;
        }
        return true;
      }),
      { numRuns: 2000 },
    );
  });
});

describe('bfloat16 (BF16)', () => {
  it.each([
    [1, 0x3f80],
    [-2, 0xc000],
    [Math.PI, 0x4049],
    [1 / 3, 0x3eab],
    [f32FromBits(0x3f808000), 0x3f80], // tie, even stays
    [f32FromBits(0x3f818000), 0x3f82], // tie, odd rounds up
    [f32FromBits(0x3f808001), 0x3f81], // above the tie
    [f32FromBits(0x7f7fffff), 0x7f80], // largest binary32 rounds to infinity
    [f32FromBits(0x00000001), 0x0000], // smallest binary32 subnormal
    [f32FromBits(0x00018000), 0x0002], // subnormal tie, odd rounds up
    [Infinity, 0x7f80],
    [-Infinity, 0xff80],
    [-0, 0x8000],
  ])('%d -> 0x%s', (value, bits) => {
    expect(float32ToBfloat16Bits(value)).toBe(bits);
  });

  it('keeps a NaN whose payload lies in the dropped bits a NaN', () => {
    const bits = float32ToBfloat16Bits(f32FromBits(0x7f800001));
    expect(Number.isNaN(bfloat16BitsToFloat32(bits))).toBe(true);
  });

  it('round-trips every one of the 65536 bit patterns (NaN stays NaN)', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = bfloat16BitsToFloat32(bits);
      if (Number.isNaN(value))
        expect(Number.isNaN(bfloat16BitsToFloat32(float32ToBfloat16Bits(value)))).toBe(true);
      else if (float32ToBfloat16Bits(value) !== bits)
        expect.fail(`0x${bits.toString(16)} does not round-trip`);
    }
  });
});
