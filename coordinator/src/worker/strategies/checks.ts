import { FlotillaError, f32At } from '@flotilla/protocol';
import type { WeightedUpdate } from './types.js';

/** Throws unless there is at least one update, all of one length, with finite weights >= 0. */
export function checkUpdates(
  updates: readonly WeightedUpdate[],
  options: { minCount?: number } = {},
): number {
  const minCount = options.minCount ?? 1;
  const first = updates[0];
  if (first === undefined || updates.length < minCount) {
    throw new FlotillaError(
      'BAD_REQUEST',
      `aggregation needs at least ${minCount} update(s), got ${updates.length}`,
    );
  }
  const length = first.values.length;
  updates.forEach((update, index) => {
    if (update.values.length !== length) {
      throw new FlotillaError(
        'SHAPE_MISMATCH',
        `update ${index} has ${update.values.length} values, update 0 has ${length}`,
      );
    }
    checkWeight(update.weight, index);
  });
  return length;
}

export function checkWeight(weight: number, index?: number): void {
  if (!Number.isFinite(weight) || weight < 0) {
    const who = index === undefined ? 'weight' : `weight of update ${index}`;
    throw new FlotillaError('BAD_REQUEST', `${who} must be finite and >= 0, got ${weight}`);
  }
}

/**
 * Checked on the output rather than on every input: one pass over the model instead of one per
 * update, and any NaN/Inf in an input that influenced the result shows up here.
 */
export function checkFinite(values: Float32Array, what: string): Float32Array {
  const i = firstNonFinite(values);
  if (i >= 0) throw new FlotillaError('NON_FINITE', `${what} has a non-finite value at index ${i}`);
  return values;
}

/**
 * Index of the first NaN or ±Inf, or -1. A plain loop: `every(Number.isFinite)` calls back per
 * element and costs several times the check on a model-sized vector.
 */
export function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}

/** L2 norm with float64 accumulation. */
export function l2Norm(values: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const v = f32At(values, i);
    sum += v * v;
  }
  return Math.sqrt(sum);
}

/** Squared Euclidean distance with float64 accumulation. */
export function squaredDistance(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = f32At(a, i) - f32At(b, i);
    sum += d * d;
  }
  return sum;
}
