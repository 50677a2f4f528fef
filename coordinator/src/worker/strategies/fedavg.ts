// Weighted FedAvg (McMahan et al. 2017): the example-weighted mean of the deltas.
import { checkUpdates } from './checks.js';
import { weightedMean } from './streaming-fedavg.js';
import type { AggregationResult, WeightedUpdate } from './types.js';

/** Weighted mean of all updates (weights = example counts); see `StreamingFedAvg` for the kernel. */
export function aggregateFedAvg(updates: readonly WeightedUpdate[]): AggregationResult {
  const length = checkUpdates(updates);
  const mean = weightedMean(length, updates);
  return {
    values: mean.values,
    selected: updates.map((_, index) => index),
    details: {
      totalWeight: mean.totalWeight,
      kernel: mean.usesSimd ? 'wasm-simd' : 'scalar',
      readInPlace: mean.readInPlace,
    },
  };
}
