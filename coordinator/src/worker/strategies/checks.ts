import { FlotillaError, f32At } from '@flotilla/protocol';
import type { WeightedUpdate } from './types.js';
import { groupOfFour } from './groups-of-four.js';
import { laneSquaredDistances } from './lane-sums-kernel.js';

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

type Pair = readonly [Float32Array, Float32Array];

/**
 * `squaredDistance(a, b)` of each pair, bit for bit. Two pairs per SIMD vector
 * (lane-sums-kernel.ts), twice as fast as the loop below, which runs without WebAssembly SIMD or
 * with `kernel: 'scalar'`: four independent sums, each still added in coordinate order, hide
 * each other's add latency (about twice as fast as one pair at a time on 100,000 values).
 */
export function squaredDistances(pairs: readonly Pair[], options: { kernel?: 'scalar' } = {}): number[] {
  const length = pairs[0]?.[0].length ?? 0;
  if (pairs.some(([a, b]) => a.length !== length || b.length !== length))
    throw new FlotillaError('SHAPE_MISMATCH', 'updates must have the same length');
  return (options.kernel === 'scalar' ? null : laneSquaredDistances(pairs)) ?? scalarSquaredDistances(pairs);
}

function scalarSquaredDistances(pairs: readonly Pair[]): number[] {
  const out: number[] = [];
  for (let g = 0; g < pairs.length; g += 4) {
    const { group, kept } = groupOfFour(pairs, g);
    const [[a0, b0], [a1, b1], [a2, b2], [a3, b3]] = group;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let i = 0; i < a0.length; i++) {
      const d0 = f32At(a0, i) - f32At(b0, i);
      s0 += d0 * d0;
      const d1 = f32At(a1, i) - f32At(b1, i);
      s1 += d1 * d1;
      const d2 = f32At(a2, i) - f32At(b2, i);
      s2 += d2 * d2;
      const d3 = f32At(a3, i) - f32At(b3, i);
      s3 += d3 * d3;
    }
    out.push(...[s0, s1, s2, s3].slice(0, kept));
  }
  return out;
}
