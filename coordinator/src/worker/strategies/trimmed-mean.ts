// Coordinate-wise trimmed mean (Yin et al. 2018), as Flower's FedTrimmedAvg / scipy trim_mean:
// cut floor(beta * n) values from each end of every coordinate, unweighted mean of the rest.
import { FlotillaError } from '@flotilla/protocol';
import { checkFinite, checkUpdates } from './checks.js';
import { columnRangeMeans } from './coordinate-wise.js';
import type { AggregationResult, WeightedUpdate } from './types.js';

export interface TrimmedMeanOptions {
  /** Fraction cut from each end per coordinate, in [0, 0.5). */
  beta: number;
}

export function aggregateTrimmedMean(
  updates: readonly WeightedUpdate[],
  options: TrimmedMeanOptions,
): AggregationResult {
  const length = checkUpdates(updates);
  const n = updates.length;
  const cut = Math.floor(options.beta * n);
  if (!(options.beta >= 0) || 2 * cut >= n) {
    throw new FlotillaError(
      'BAD_REQUEST',
      `trimmed mean with beta ${options.beta} leaves nothing of ${n} updates`,
    );
  }
  const values = columnRangeMeans(
    updates.map((u) => u.values),
    length,
    { from: cut, to: n - cut },
  );
  return {
    values: checkFinite(values, 'trimmed mean'),
    selected: updates.map((_, index) => index),
    details: { trimmedPerEnd: cut },
  };
}
