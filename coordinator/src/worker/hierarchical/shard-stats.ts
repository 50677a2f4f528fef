// The drift audit's second pass over one shard: each update's norm, its cosine to the round's
// robust reference, its cosine to the median of the shard's other updates (the others of a
// one-shard round), and its relative distance to the closest other update of the shard. The same functions as
// the single-stage audit (audit/reference.ts), so a hierarchical round is screened as one stage
// would screen it; only near-duplicates in different shards go unseen (shards are cut by blob
// digest, so colluders do not land in one shard by design).
import { FlotillaError } from '@flotilla/protocol';
import { updateStats, type UpdateStats } from '../audit/reference.js';
import { columnMedians } from '../strategies/coordinate-wise.js';
import { assertSameLayout, flattenTensors, tensorLayout } from '../strategies/flatten.js';
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
 * each shard's median, and then the median of the shard medians (the round's reference). Taken
 * tensor by tensor (each coordinate's column is its own), so no delta is copied into one vector.
 * Tensors named in `zeros` are all zeros in every delta (frozen ones, which loadUpdates refuses
 * otherwise): their median is zero without sorting.
 */
export function medianDelta(
  deltas: readonly TensorMap[],
  options: { zeros?: ReadonlySet<string> } = {},
): TensorMap {
  const first = deltas[0];
  if (first === undefined) throw new FlotillaError('INTERNAL', 'no deltas to take a median of');
  const layout = tensorLayout(first);
  for (const delta of deltas) assertSameLayout(tensorLayout(delta), layout);
  const median: TensorMap = new Map();
  for (const { name, shape, length } of layout) {
    const values = options.zeros?.has(name)
      ? new Float32Array(length)
      : columnMedians(
          deltas.map((d) => d.get(name)?.values ?? new Float32Array(0)),
          length,
        );
    median.set(name, { shape: [...shape], values });
  }
  return median;
}

/**
 * The delta's trained tensors as one vector, in {@link flattenTensors}' order. Frozen tensors are
 * all zeros (loadUpdates refuses anything else), and zero coordinates change none of the screen's
 * float64 sums, norms, medians or distances, bit for bit (a sum that starts at +0 never turns −0,
 * and x + 0 = x), so the screen skips them. A single trained tensor is used as it is, not copied.
 */
export function trainedVector(delta: TensorMap, frozen: ReadonlySet<string>): Float32Array {
  const trained = new Map([...delta].filter(([name]) => !frozen.has(name)));
  const [only, ...others] = trained.values();
  if (only !== undefined && others.length === 0) {
    tensorLayout(trained);
    return only.values;
  }
  return flattenTensors(trained).values;
}
