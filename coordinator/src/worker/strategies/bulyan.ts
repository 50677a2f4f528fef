// Bulyan (El Mhamdi et al. 2018, "The Hidden Vulnerability of Distributed Learning in Byzantium"):
// pick θ = n - 2f updates by repeated Krum on the remaining set (as the paper and Flower), then per
// coordinate average the β = θ - 2f values closest to the median (unweighted, as both).
import { FlotillaError } from '@flotilla/protocol';
import { checkFinite, checkUpdates } from './checks.js';
import { reduceSortedColumns, sortedMedian } from './coordinate-wise.js';
import { krumScores, pairwiseSquaredDistances, rankByScore } from './krum.js';
import type { AggregationResult, WeightedUpdate } from './types.js';

export interface BulyanOptions {
  /** Byzantine updates tolerated, f; Bulyan needs n >= 4f + 3. */
  byzantine: number;
}

export function aggregateBulyan(
  updates: readonly WeightedUpdate[],
  options: BulyanOptions,
): AggregationResult {
  const length = checkUpdates(updates);
  const n = updates.length;
  const f = options.byzantine;
  if (!Number.isInteger(f) || f < 0 || n < 4 * f + 3) {
    throw new FlotillaError(
      'BAD_REQUEST',
      `Bulyan with f = ${f} needs at least ${4 * f + 3} updates, got ${n}`,
    );
  }
  const theta = n - 2 * f;
  const beta = theta - 2 * f;
  const dist = pairwiseSquaredDistances(updates.map((u) => u.values));
  let remaining = updates.map((_, index) => index);
  const selected: number[] = [];
  while (selected.length < theta) {
    const best = rankByScore(remaining, krumScores(dist, n, remaining, f))[0];
    if (best === undefined) break;
    selected.push(best);
    remaining = remaining.filter((index) => index !== best);
  }
  const vectors = selected.map((index) => updates[index]?.values ?? new Float32Array(length));
  const values = reduceSortedColumns(vectors, length, (sorted) => meanClosestToMedian(sorted, beta));
  return {
    values: checkFinite(values, 'bulyan'),
    selected: [...selected].sort((a, b) => a - b),
    details: { theta, beta, selectionOrder: selected },
  };
}

/**
 * Mean of the `count` values of a sorted column closest to its median. They form a contiguous run
 * around the median, grown one side at a time; on equal distance the lower value is taken.
 */
export function meanClosestToMedian(sorted: Float64Array, count: number): number {
  const median = sortedMedian(sorted);
  let right = 0;
  while (right < sorted.length && (sorted[right] ?? 0) < median) right++;
  let left = right - 1;
  let sum = 0;
  for (let taken = 0; taken < count; taken++) {
    const lower = left >= 0 ? median - (sorted[left] ?? 0) : Infinity;
    const upper = right < sorted.length ? (sorted[right] ?? 0) - median : Infinity;
    if (lower <= upper) sum += sorted[left--] ?? 0;
    else sum += sorted[right++] ?? 0;
  }
  return sum / count;
}
