// The drift audit's second pass over one shard: each update's norm, its cosine to the round's
// robust reference, its cosine to the median of the shard's other updates (the others of a
// one-shard round), and its relative distance to the closest other update of the shard. The same functions as
// the single-stage audit (audit/reference.ts), so a hierarchical round is screened as one stage
// would screen it; only near-duplicates in different shards go unseen (shards are cut by blob
// digest, so colluders do not land in one shard by design).
import { FlotillaError } from '@flotilla/protocol';
import { coordinateMedian, updateStats, type UpdateStats } from '../audit/reference.js';
import { flattenTensors, unflattenTensors } from '../strategies/flatten.js';
import type { TensorMap } from '../../shared/promotion/tensor-math.js';

/** Stats of a shard's flattened updates (the adapter's layout) against the flattened reference. */
export function shardStats(options: {
  updates: readonly Float32Array[];
  reference: Float32Array;
}): UpdateStats[] {
  const { reference } = options;
  for (const values of options.updates)
    if (values.length !== reference.length)
      throw new FlotillaError('SHAPE_MISMATCH', 'an update and the round reference differ in size');
  return updateStats(
    options.updates.map((values) => [values]),
    [reference],
  );
}

/**
 * The coordinate-wise median of same-named deltas, as a delta with the same names and shapes:
 * each shard's median, and then the median of the shard medians (the round's reference).
 */
export function medianDelta(deltas: readonly TensorMap[]): TensorMap {
  const first = deltas[0];
  if (first === undefined) throw new FlotillaError('INTERNAL', 'no deltas to take a median of');
  const { layout } = flattenTensors(first);
  const flat = deltas.map((d) => [flattenTensors(d, { expected: layout }).values]);
  const [median] = coordinateMedian(flat);
  return unflattenTensors(median ?? new Float32Array(), layout);
}
