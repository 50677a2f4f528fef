// The drift audit's second pass over one shard: each update's cosine to the candidate aggregate
// and to the weighted mean of the other updates, given the round's Σ w_k·x_k summed by the shard
// jobs of the first pass. The same functions as the single-stage audit (audit/cosine.ts), so a
// hierarchical round is screened as if every update had been in one process.
import { FlotillaError } from '@flotilla/protocol';
import { cosineSimilarity, leaveOneOutCosine, type UpdateSimilarity } from '../audit/cosine.js';
import type { ShardSum } from './shard-sum.js';

/** The shard sum's tensors concatenated in code-unit order of their names, as `flattenTensors` does. */
export function flattenShardSum(sum: ShardSum): Float64Array {
  const names = [...sum.sums.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const length = names.reduce((n, name) => n + (sum.sums.get(name)?.values.length ?? 0), 0);
  const out = new Float64Array(length);
  let offset = 0;
  for (const name of names) {
    const values = sum.sums.get(name)?.values ?? new Float64Array();
    out.set(values, offset);
    offset += values.length;
  }
  return out;
}

/**
 * Similarities of a shard's updates. `updates[k].values` is the flattened delta (the adapter's
 * layout), `total` the round's Σ w_k·x_k and `aggregate` the candidate delta, both flattened the
 * same way. The audit weighs the leave-one-out means by the task's weights w_k (examples, equal or
 * capped), also when DP made the aggregate's weights uniform.
 */
export function shardSimilarities(options: {
  updates: ReadonlyArray<{ values: Float32Array; weight: number }>;
  total: Float64Array;
  aggregate: Float32Array;
  /** Updates in the whole round: with one, there are no others (null leave-one-out cosine). */
  roundCount: number;
}): UpdateSimilarity[] {
  const { total, aggregate } = options;
  return options.updates.map(({ values, weight }) => {
    if (values.length !== total.length || values.length !== aggregate.length)
      throw new FlotillaError('SHAPE_MISMATCH', 'an update, the round sum and the aggregate differ in size');
    return {
      cosine: cosineSimilarity([values], [aggregate]),
      leaveOneOutCosine: options.roundCount > 1 ? leaveOneOutCosine([values], [total], weight) : null,
    };
  });
}
