/** The safetensors dtypes Flotilla reads and writes (a subset of the reference's list). */
export const SAFETENSORS_DTYPES = ['F32', 'F16', 'BF16', 'I8', 'I32'] as const;
export type SafetensorsDtype = (typeof SAFETENSORS_DTYPES)[number];

/** Bytes per element. */
export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  I8: 1,
  I32: 4,
};

/**
 * Position of each dtype in the reference's `Dtype` enum (huggingface/safetensors,
 * safetensors/src/tensor.rs: BOOL, U8, I8, F8_*, I16, U16, F16, BF16, I32, U32, F32, ...). The
 * reference writer sorts tensors by this order, descending, so that wider (more aligned) dtypes
 * come first; only the relative order matters here.
 */
export const DTYPE_ENUM_RANK: Readonly<Record<SafetensorsDtype, number>> = {
  I8: 2,
  F16: 7,
  BF16: 8,
  I32: 9,
  F32: 11,
};

export function isSafetensorsDtype(value: string): value is SafetensorsDtype {
  return (SAFETENSORS_DTYPES as readonly string[]).includes(value);
}

/**
 * Number of elements of `shape` (1 for the scalar shape `[]`), or null when a dimension is not a
 * non-negative safe integer or a partial product passes `Number.MAX_SAFE_INTEGER`. Like the
 * reference's `checked_mul` fold, the product is checked in order, so huge dimensions before a 0
 * still count as an overflow.
 */
export function elementCount(shape: readonly number[]): number | null {
  let count = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) return null;
    count *= dim;
    if (count > Number.MAX_SAFE_INTEGER) return null;
  }
  return count;
}
