// Coordinate-wise median (Yin et al. 2018, "Byzantine-Robust Distributed Learning"), as Flower's
// FedMedian: weights are ignored; an even count takes the mean of the two middle values (numpy).
import { checkFinite, checkUpdates } from './checks.js';
import { columnMedians } from './coordinate-wise.js';
import type { AggregationResult, WeightedUpdate } from './types.js';

export function aggregateMedian(updates: readonly WeightedUpdate[]): AggregationResult {
  const length = checkUpdates(updates);
  const values = columnMedians(
    updates.map((u) => u.values),
    length,
  );
  return {
    values: checkFinite(values, 'coordinate median'),
    selected: updates.map((_, index) => index),
    details: {},
  };
}
