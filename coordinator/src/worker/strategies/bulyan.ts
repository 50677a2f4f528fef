// Bulyan (El Mhamdi et al. 2018, "The Hidden Vulnerability of Distributed Learning in Byzantium"):
// pick θ = n - 2f updates by repeated Krum on the remaining set (as the paper and Flower), then per
// coordinate average the β = θ - 2f values closest to the median (unweighted, as both).
import { FlotillaError } from '@flotilla/protocol';
import { checkFinite, checkUpdates } from './checks.js';
import { columnClosestMeans } from './coordinate-wise.js';
import { PairDistances } from './krum-distances.js';
import { rankCandidates } from './krum-ranking.js';
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
  const distances = new PairDistances(updates.map((u) => u.values));
  let remaining = updates.map((_, index) => index);
  const selected: number[] = [];
  while (selected.length < theta) {
    const best = rankCandidates(distances, remaining, { f, keep: 1 }).order[0];
    if (best === undefined) break;
    selected.push(best);
    remaining = remaining.filter((index) => index !== best);
  }
  const vectors = selected.map((index) => updates[index]?.values ?? new Float32Array(length));
  const values = columnClosestMeans(vectors, length, beta);
  return {
    values: checkFinite(values, 'bulyan'),
    selected: [...selected].sort((a, b) => a - b),
    details: { theta, beta, selectionOrder: selected },
  };
}
