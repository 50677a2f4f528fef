// Krum and Multi-Krum (Blanchard et al. 2017, "Machine Learning with Adversaries: Byzantine
// Tolerant Gradient Descent"), with Flower's neighbour count max(1, n - f - 2) so small rounds work.
// The scores are sums of squared distances from a Gram matrix, with every decision certified to be
// the one the pairwise definition takes (krum-distances.ts), so the selection and the aggregate are
// the definition's bit for bit. `details.scores` are the definition's where it had to be computed,
// else the Gram estimate, which differs from it in the last bits: by at most (2γ + 4u)(‖x_i‖² +
// ‖x_j‖²) per distance plus the definition's own rounding (γ_L relative), about 10⁻¹⁰ of a score
// for 100 updates of 10⁶ values.
import { FlotillaError, at } from '@flotilla/protocol';
import { checkFinite, checkUpdates } from './checks.js';
import { PairDistances } from './krum-distances.js';
import { neighbourCount, rankCandidates } from './krum-ranking.js';
import { weightedMean } from './streaming-fedavg.js';
import type { AggregationResult, WeightedUpdate } from './types.js';

export interface KrumOptions {
  /** Byzantine updates tolerated, f. */
  byzantine: number;
  /** Updates kept and averaged; 1 is Krum. Default n - f (Multi-Krum); clamped to [1, n]. */
  keep?: number;
  /** How the kept updates are averaged (see `StrategyExtensions.multiKrumWeighting`). */
  weighting?: 'weighted' | 'uniform';
}

export function aggregateKrum(updates: readonly WeightedUpdate[], options: KrumOptions): AggregationResult {
  const length = checkUpdates(updates);
  const n = updates.length;
  const f = options.byzantine;
  if (!Number.isInteger(f) || f < 0)
    throw new FlotillaError('BAD_REQUEST', `byzantine must be an integer >= 0`);
  const keep = Math.min(n, Math.max(1, options.keep ?? n - f));
  const vectors = updates.map((u) => u.values);
  const all = updates.map((_, index) => index);
  const { order, scores } = rankCandidates(new PairDistances(vectors), all, { f, keep, withScores: true });
  const kept = order.slice(0, keep);
  const weighting = options.weighting ?? 'weighted';
  const values =
    keep === 1 ? new Float32Array(at(vectors, at(kept, 0))) : meanOf(updates, kept, weighting, length);
  return {
    values: checkFinite(values, 'krum'),
    selected: [...kept].sort((a, b) => a - b),
    details: { scores, keep, neighbours: neighbourCount(n, f), weighting },
  };
}

function meanOf(
  updates: readonly WeightedUpdate[],
  kept: readonly number[],
  weighting: 'weighted' | 'uniform',
  length: number,
): Float32Array {
  const entries = kept.flatMap((index) => {
    const update = updates[index];
    return update === undefined
      ? []
      : [{ values: update.values, weight: weighting === 'weighted' ? update.weight : 1 }];
  });
  return weightedMean(length, entries).values;
}
