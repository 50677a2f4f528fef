// Krum and Multi-Krum (Blanchard et al. 2017, "Machine Learning with Adversaries: Byzantine
// Tolerant Gradient Descent"), with Flower's neighbour count max(1, n - f - 2) so small rounds work.
import { FlotillaError } from '@flotilla/protocol';
import { checkFinite, checkUpdates, squaredDistance } from './checks.js';
import { weightedMean } from './streaming-fedavg.js';
import type { AggregationResult, WeightedUpdate } from './types.js';

/** Symmetric n×n matrix of squared L2 distances, row-major, float64. */
export function pairwiseSquaredDistances(vectors: readonly Float32Array[]): Float64Array {
  const n = vectors.length;
  const dist = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const a = vectors[i];
      const b = vectors[j];
      const d = a === undefined || b === undefined ? 0 : squaredDistance(a, b);
      dist[i * n + j] = d;
      dist[j * n + i] = d;
    }
  }
  return dist;
}

/**
 * Krum score of each candidate within the candidate set: the sum of squared distances to its
 * max(1, c - f - 2) nearest other candidates (fewer if fewer exist), c = number of candidates.
 */
export function krumScores(
  dist: Float64Array,
  n: number,
  candidates: readonly number[],
  f: number,
): number[] {
  const neighbours = Math.max(1, candidates.length - f - 2);
  return candidates.map((i) => {
    const row = candidates.filter((j) => j !== i).map((j) => dist[i * n + j] ?? 0);
    row.sort((a, b) => a - b);
    let score = 0;
    for (let k = 0; k < Math.min(neighbours, row.length); k++) score += row[k] ?? 0;
    return score;
  });
}

/** Candidate indices ordered by score, ties to the lower index (Flower's argmin). */
export function rankByScore(candidates: readonly number[], scores: readonly number[]): number[] {
  return candidates
    .map((index, position) => ({ index, score: scores[position] ?? 0 }))
    .sort((a, b) => a.score - b.score || a.index - b.index)
    .map((entry) => entry.index);
}

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
  const scores = krumScores(pairwiseSquaredDistances(vectors), n, all, f);
  const kept = rankByScore(all, scores).slice(0, keep);
  const weighting = options.weighting ?? 'weighted';
  const values =
    keep === 1 ? new Float32Array(vectors[kept[0] ?? 0] ?? []) : meanOf(updates, kept, weighting, length);
  return {
    values: checkFinite(values, 'krum'),
    selected: [...kept].sort((a, b) => a - b),
    details: { scores, keep, neighbours: Math.max(1, n - f - 2), weighting },
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
