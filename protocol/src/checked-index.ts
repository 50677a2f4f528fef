import { FlotillaError } from './errors.js';

// Element reads that cannot turn an indexing bug into a number. Under `noUncheckedIndexedAccess`
// `values[i]` is `T | undefined`, and `values[i] ?? 0` would let an index past the end add a
// silent zero to an aggregate. These throw INTERNAL instead: every index the math code computes
// comes from lengths it has already checked, so a miss is a bug in Flotilla, never bad input.
//
// `f32At`, `f64At` and `i32At` each see one element kind, so V8 keeps their loads monomorphic and inlines
// them: a hot loop reads through them as fast as through `values[i] ?? 0` (the bench's
// aggregation section). `at` serves every other array; its loads see many kinds, so it is kept
// out of the loops the bench measures.

function outOfRange(index: number, length: number): FlotillaError {
  return new FlotillaError('INTERNAL', `index ${index} is outside an array of ${length}`);
}

/** `values[index]`; throws INTERNAL when the index is outside the array. */
export function at<T>(values: ArrayLike<T>, index: number): T {
  const value = values[index];
  if (value === undefined) throw outOfRange(index, values.length);
  return value;
}

/** `values[index]` of a Float32Array; throws INTERNAL when the index is outside it. */
export function f32At(values: Float32Array, index: number): number {
  const value = values[index];
  if (value === undefined) throw outOfRange(index, values.length);
  return value;
}

/** `values[index]` of a Float64Array; throws INTERNAL when the index is outside it. */
export function f64At(values: Float64Array, index: number): number {
  const value = values[index];
  if (value === undefined) throw outOfRange(index, values.length);
  return value;
}

/** `values[index]` of an Int32Array; throws INTERNAL when the index is outside it. */
export function i32At(values: Int32Array, index: number): number {
  const value = values[index];
  if (value === undefined) throw outOfRange(index, values.length);
  return value;
}
