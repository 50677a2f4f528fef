// IEEE 754 binary16 (F16) and bfloat16 (BF16) conversions to and from binary32. Narrowing rounds
// to nearest, ties to even; subnormals, infinities and NaN are preserved (NaN stays a quiet NaN).

import { at, f32At } from '../checked-index.js';

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function float32Bits(value: number): number {
  scratchF32[0] = value;
  return at(scratchU32, 0);
}

function float32FromBits(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return f32At(scratchF32, 0);
}

/** binary32 value -> binary16 bit pattern (0..0xffff). */
export function float32ToFloat16Bits(value: number): number {
  const x = float32Bits(value);
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) {
    // Infinity, or NaN with its top payload bits kept and the quiet bit set so it stays a NaN.
    return mantissa === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mantissa >>> 13);
  }
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Result is a binary16 subnormal (or zero): value = m * 2^-24 with the full 24-bit significand
    // shifted right by 14 - halfExponent. Past 24 bits of shift the value is below half of the
    // smallest subnormal and rounds to zero (binary32 subnormals land here too).
    const shift = 14 - halfExponent;
    if (shift > 24) return sign;
    const significand = mantissa | 0x800000;
    const kept = significand >>> shift;
    const dropped = significand & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    const roundUp = dropped > half || (dropped === half && (kept & 1) === 1);
    // A carry out of the subnormal range yields 0x400, the smallest normal: still correct.
    return sign | (kept + (roundUp ? 1 : 0));
  }
  const kept = (halfExponent << 10) | (mantissa >>> 13);
  const dropped = mantissa & 0x1fff;
  const roundUp = dropped > 0x1000 || (dropped === 0x1000 && (kept & 1) === 1);
  // A carry may ripple into the exponent; reaching 0x7c00 is the correct overflow to infinity.
  return sign | (kept + (roundUp ? 1 : 0));
}

/** binary16 bit pattern -> binary32 value (exact: every binary16 value is a binary32 value). */
export function float16BitsToFloat32(bits: number): number {
  const sign = (bits & 0x8000) << 16;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) {
    const magnitude = mantissa * 2 ** -24;
    return sign === 0 ? magnitude : -magnitude;
  }
  if (exponent === 0x1f) return float32FromBits(sign | 0x7f800000 | (mantissa << 13));
  return float32FromBits(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

/** binary32 value -> bfloat16 bit pattern (the high half of binary32, rounded). */
export function float32ToBfloat16Bits(value: number): number {
  const x = float32Bits(value);
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) {
    // NaN: truncating could clear every payload bit and make an infinity; force the quiet bit.
    return (x >>> 16) | 0x0040;
  }
  const rounded = x + 0x7fff + ((x >>> 16) & 1);
  return Math.floor(rounded / 0x10000) & 0xffff;
}

/** bfloat16 bit pattern -> binary32 value (exact). */
export function bfloat16BitsToFloat32(bits: number): number {
  return float32FromBits((bits & 0xffff) << 16);
}
