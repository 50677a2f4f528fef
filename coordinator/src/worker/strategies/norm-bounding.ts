// Norm bounding (Sun et al. 2019, "Can You Really Backdoor Federated Learning?"), as TFF's robust
// aggregators: clip each update to the bound then weighted mean (clipping_factory), or zero any
// update over the bound (zeroing_factory) with its weight still in the denominator by default.
import { FlotillaError } from '@flotilla/protocol';
import { checkUpdates, l2Norm } from './checks.js';
import { weightedMean, type BatchEntry } from './streaming-fedavg.js';
import type { AggregationResult, WeightedUpdate } from './types.js';

export interface NormBoundingOptions {
  /** L2 bound. */
  normBound: number;
  /** `'clip'` (default) or `'zero'`. */
  mode?: 'clip' | 'zero';
  /** Zeroing only: keep a zeroed update's weight in the denominator. Default true (TFF). */
  zeroedStayInDenominator?: boolean;
}

export function aggregateNormBounded(
  updates: readonly WeightedUpdate[],
  options: NormBoundingOptions,
): AggregationResult {
  const length = checkUpdates(updates);
  const { normBound } = options;
  if (!(normBound > 0) || !Number.isFinite(normBound)) {
    throw new FlotillaError(
      'BAD_REQUEST',
      `norm bounding needs a positive finite normBound, got ${normBound}`,
    );
  }
  const mode = options.mode ?? 'clip';
  const keepWeight = options.zeroedStayInDenominator ?? true;
  const entries: BatchEntry[] = [];
  const selected: number[] = [];
  const zeroed: number[] = [];
  let clippedCount = 0;
  updates.forEach((update, index) => {
    const norm = l2Norm(update.values);
    if (mode === 'zero' && !(norm <= normBound)) {
      zeroed.push(index);
      if (keepWeight) entries.push({ values: update.values, weight: update.weight, scale: 0 });
      return;
    }
    const scale = mode === 'clip' && norm > normBound ? normBound / norm : 1;
    if (scale < 1) clippedCount++;
    selected.push(index);
    entries.push({ values: update.values, weight: update.weight, scale });
  });
  const mean = entries.length === 0 ? null : weightedMean(length, entries);
  const values = mean?.values ?? new Float32Array(length);
  return {
    values,
    selected,
    details: { mode, normBound, clippedCount, zeroed, totalWeight: mean?.totalWeight ?? 0 },
  };
}
